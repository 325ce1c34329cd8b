// The sample op on the GPU: core's sampling pipeline (packages/core/src/exec/sampling.ts, the
// specification) in double precision, so no logits leave the device. Steps 1-3 (penalties, the
// row's maximum and softmax sum) run over slices of the row in parallel (fa_op_sample_slices); one
// CTA per row merges them and samples (fa_op_sample). Greedy needs nothing more. Ranking
// (penalized logit descending, then token id) never sorts: top-k and top-p each find their cut
// with a radix select over a 64-bit rank key (then over ids among tied keys), counting tokens for
// top-k and summing weights for top-p, 8 bits per pass.
#include "launch.cuh"
#include "numeric.cuh"
#include "op_error.cuh"
#include "op_params.h"

namespace {

constexpr int kThreads = kFaSampleThreads;
constexpr int kPerThread = kFaSampleSlice / kFaSampleThreads;
constexpr double kNegInf = -__builtin_huge_val();

__device__ uint32_t philoxFirstWord(uint32_t counter, uint32_t seed) {
  uint32_t c0 = counter, c1 = 0, c2 = 0, c3 = 0, k0 = seed, k1 = 0;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9e3779b9u;
      k1 += 0xbb67ae85u;
    }
    const uint32_t hi0 = __umulhi(0xd2511f53u, c0), lo0 = 0xd2511f53u * c0;
    const uint32_t hi1 = __umulhi(0xcd9e8d57u, c2), lo1 = 0xcd9e8d57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  return c0;
}

/** Ascending key = descending value (no NaN here: they were read as -Infinity). */
__device__ __forceinline__ uint64_t rankKey(double y) {
  const uint64_t b = static_cast<uint64_t>(__double_as_longlong(y));
  const uint64_t ascending = (b >> 63) ? ~b : (b | 0x8000000000000000ull);
  return ~ascending;
}

struct Shared {
  double mass[256];
  double partial[kThreads / 32];
  int index[kThreads / 32];
  uint64_t key;
  double below;
  int chosen;
};

__device__ double blockSum(double x, Shared& sh) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.partial[threadIdx.x / 32] = x;
  __syncthreads();
  double total = 0;
  for (int w = 0; w < kThreads / 32; ++w) total += sh.partial[w];
  return total;
}

__device__ double blockMax(double x, Shared& sh) {
  for (int o = 16; o > 0; o >>= 1) x = fmax(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.partial[threadIdx.x / 32] = x;
  __syncthreads();
  double m = kNegInf;
  for (int w = 0; w < kThreads / 32; ++w) m = fmax(m, sh.partial[w]);
  return m;
}

/** The smallest index i with pred(i), or `none` (a minimum over the CTA). */
__device__ int64_t blockFirst(int64_t i, Shared& sh, int64_t none) {
  int64_t v = i;
  for (int o = 16; o > 0; o >>= 1) v = min(v, static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, (long long)v, o)));
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.partial[threadIdx.x / 32] = static_cast<double>(v);
  __syncthreads();
  int64_t m = none;
  for (int w = 0; w < kThreads / 32; ++w) m = min(m, static_cast<int64_t>(sh.partial[w]));
  return m;
}

/**
 * Over the tokens `in` admits, the smallest key K (of `bits` bits, from keyOf) whose cumulative
 * mass (tokens with key <= K) reaches `target`; `below` gets the mass of the keys under K. When
 * rounding leaves `target` out of reach, the largest key with any mass.
 */
template <typename In, typename KeyOf, typename Mass>
__device__ uint64_t radixSelect(int64_t vocab, int bits, In in, KeyOf keyOf, Mass mass, double target, double& below,
                                Shared& sh) {
  uint64_t prefix = 0;
  double under = 0;
  for (int shift = bits - 8; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) sh.mass[b] = 0;
    __syncthreads();
    const uint64_t high = shift + 8 >= 64 ? 0 : (~0ull << (shift + 8));
    for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x) {
      if (!in(t)) continue;
      const uint64_t k = keyOf(t);
      if ((k & high) != (prefix & high)) continue;
      atomicAdd(&sh.mass[(k >> shift) & 255], mass(t));
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int chosen = -1, last = -1;
      double cum = under, lastBefore = under;
      for (int b = 0; b < 256; ++b) {
        if (sh.mass[b] <= 0) continue;
        if (cum + sh.mass[b] >= target) {
          chosen = b;
          break;
        }
        last = b;
        lastBefore = cum;
        cum += sh.mass[b];
      }
      if (chosen < 0) {
        chosen = last < 0 ? 0 : last;
        cum = lastBefore;
      }
      sh.chosen = chosen;
      sh.below = cum;
    }
    __syncthreads();
    prefix |= static_cast<uint64_t>(sh.chosen) << shift;
    under = sh.below;
    __syncthreads();
  }
  below = under;
  return prefix;
}

/** A row's sampling parameters, read once; `bad` when one is outside its range. */
struct RowParams {
  double temperature, topP, minP, rep, presence, frequency;
  int64_t topK;
  int32_t counter;
  bool bad;
};

__device__ RowParams rowParams(const FaSampleParams& p, int64_t r) {
  RowParams q{p.temperature[r], p.top_p[r], p.min_p[r], p.repetition_penalty[r], p.presence_penalty[r],
              p.frequency_penalty[r], p.top_k[r], p.counters[r], false};
  q.bad = !(isfinite(q.temperature) && q.temperature >= 0) || q.topK < 0 || !(q.topP > 0 && q.topP <= 1) ||
          !(q.minP >= 0 && q.minP <= 1) || !(isfinite(q.rep) && q.rep > 0) || !isfinite(q.presence) ||
          !isfinite(q.frequency) || q.counter < 0;
  return q;
}

}  // namespace

// Steps 1-3 over one slice (blockIdx.y) of row blockIdx.x: sanitize, the penalties of seen tokens
// (stored in work), then the slice's FaSampleSlice. A row with bad parameters is left to
// fa_op_sample to report.
extern "C" __global__ void __launch_bounds__(kThreads) fa_op_sample_slices(const FaSampleParams p) {
  fa::grid_dependency_wait();  // a programmatic dependent (sm_90+): see ops.cu
  fa::grid_launch_dependents();
  __shared__ Shared sh;
  const int64_t r = blockIdx.x, vocab = p.vocab;
  const RowParams q = rowParams(p, r);
  if (q.bad) return;
  double* y = p.work + r * vocab;
  const float* logits = p.logits + r * p.logits_row_stride;
  const int32_t* counts = p.counts ? p.counts + r * p.counts_row_stride : nullptr;
  const int64_t base = int64_t(blockIdx.y) * kFaSampleSlice + threadIdx.x;
  float raw[kPerThread];
  int32_t count[kPerThread];
#pragma unroll
  for (int u = 0; u < kPerThread; ++u) {
    const int64_t t = base + int64_t(u) * kThreads;
    raw[u] = t < vocab ? logits[t] : 0.0f;
    count[u] = t < vocab && counts ? counts[t] : 0;
  }
  double x[kPerThread];
  double mx = kNegInf;
  bool badCount = false;
#pragma unroll
  for (int u = 0; u < kPerThread; ++u) {
    x[u] = isnan(raw[u]) ? kNegInf : static_cast<double>(raw[u]);
    badCount |= count[u] < 0;
    if (count[u] > 0) {
      x[u] = x[u] > 0 ? x[u] / q.rep : x[u] * q.rep;
      x[u] = x[u] - q.frequency * count[u] - q.presence;
      if (isnan(x[u])) x[u] = kNegInf;
    }
    const int64_t t = base + int64_t(u) * kThreads;
    if (t < vocab) {
      y[t] = x[u];
      mx = fmax(mx, x[u]);
    }
  }
  badCount = __syncthreads_or(badCount);
  mx = blockMax(mx, sh);
  // the first token of the slice holding its maximum
  int64_t mine = vocab;
#pragma unroll
  for (int u = 0; u < kPerThread; ++u) {
    const int64_t t = base + int64_t(u) * kThreads;
    if (t < vocab && x[u] == mx) mine = min(mine, t);
  }
  const int64_t firstMax = blockFirst(mine, sh, vocab);
  const double scale = q.temperature == 0 ? 1.0 : q.temperature;
  const bool infinite = !isfinite(mx);
  double sum = 0;
#pragma unroll
  for (int u = 0; u < kPerThread; ++u) {
    const int64_t t = base + int64_t(u) * kThreads;
    if (t < vocab) sum += infinite ? (x[u] == mx ? 1.0 : 0.0) : exp((x[u] - mx) / scale);
  }
  sum = blockSum(sum, sh);
  if (threadIdx.x == 0) {
    FaSampleSlice* slices = reinterpret_cast<FaSampleSlice*>(p.work + p.rows * vocab);
    slices[r * p.slices + blockIdx.y] = FaSampleSlice{mx, sum, firstMax, badCount ? 1 : 0};
  }
}

extern "C" __global__ void __launch_bounds__(kThreads) fa_op_sample(const FaSampleParams p) {
  fa::grid_dependency_wait();  // a programmatic dependent (sm_90+): see ops.cu
  fa::grid_launch_dependents();
  __shared__ Shared sh;
  const int64_t r = blockIdx.x;
  const int64_t vocab = p.vocab;
  const RowParams q = rowParams(p, r);
  if (q.bad) {
    if (threadIdx.x == 0) fa::reportOpError(p.error, FA_ERR_SAMPLE_PARAMS, r);
    return;
  }
  const double temperature = q.temperature, topP = q.topP, minP = q.minP;
  const int64_t topK = q.topK;
  const int32_t counter = q.counter;
  const double* y = p.work + r * vocab;
  // Merge the slices: the row's maximum, its first token, a bad count anywhere.
  const FaSampleSlice* slices = reinterpret_cast<const FaSampleSlice*>(p.work + p.rows * vocab) + r * p.slices;
  double mx = kNegInf;
  bool badCount = false;
  for (int64_t s = threadIdx.x; s < p.slices; s += blockDim.x) {
    mx = fmax(mx, slices[s].max);
    badCount |= slices[s].bad != 0;
  }
  if (__syncthreads_or(badCount)) {
    if (threadIdx.x == 0) fa::reportOpError(p.error, FA_ERR_SAMPLE_PARAMS, r);
    return;
  }
  mx = blockMax(mx, sh);
  // 3. z = (y - max) / T (T = 1 for greedy), with the infinite-max rule; log of sum exp z, each
  // slice's sum rescaled from its own maximum to the row's.
  const double scale = temperature == 0 ? 1.0 : temperature;
  const bool infinite = !isfinite(mx);
  const auto z = [&](int64_t t) { return infinite ? (y[t] == mx ? 0.0 : kNegInf) : (y[t] - mx) / scale; };
  double sum = 0;
  int64_t firstMax = vocab;
  for (int64_t s = threadIdx.x; s < p.slices; s += blockDim.x) {
    const FaSampleSlice sl = slices[s];
    if (sl.max == mx) firstMax = min(firstMax, sl.first);
    if (infinite) {
      if (sl.max == mx) sum += sl.sum;
    } else if (sl.max != kNegInf) {
      sum += sl.sum * exp((sl.max - mx) / scale);
    }
  }
  const double logSum = log(blockSum(sum, sh));
  int64_t token;
  if (temperature == 0) {
    // Greedy: the first token holding the largest penalized logit.
    token = blockFirst(firstMax, sh, vocab);
  } else {
    const auto weight = [&](int64_t t) { return exp(z(t)); };
    const auto key = [&](int64_t t) { return rankKey(y[t]); };
    const auto id = [](int64_t t) { return static_cast<uint64_t>(t); };
    // 4. top-k: the k-th ranked token (key, then id) bounds the kept set.
    uint64_t keyK = ~0ull, idK = ~0ull;
    if (topK > 0 && topK < vocab) {
      double below = 0;
      keyK = radixSelect(vocab, 64, [](int64_t) { return true; }, key, [](int64_t) { return 1.0; }, double(topK), below, sh);
      double ignored = 0;
      idK = radixSelect(vocab, 32, [&](int64_t t) { return key(t) == keyK; }, id, [](int64_t) { return 1.0; },
                        double(topK) - below, ignored, sh);
    }
    const auto keptK = [&](int64_t t) {
      const uint64_t k = key(t);
      return k < keyK || (k == keyK && static_cast<uint64_t>(t) <= idK);
    };
    // top-p over what top-k kept: the smallest rank prefix whose weight reaches topP of the kept mass.
    uint64_t keyP = ~0ull, idP = ~0ull;
    if (topP < 1) {
      double kept = 0;
      for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x)
        if (keptK(t)) kept += weight(t);
      const double target = topP * blockSum(kept, sh);
      double below = 0;
      keyP = radixSelect(vocab, 64, keptK, key, weight, target, below, sh);
      double ignored = 0;
      idP = radixSelect(vocab, 32, [&](int64_t t) { return keptK(t) && key(t) == keyP; }, id, weight, target - below,
                        ignored, sh);
    }
    // min-p: p < minP * pMax is w < minP, the top token's weight being exactly 1.
    const auto kept = [&](int64_t t) {
      if (!keptK(t)) return false;
      const uint64_t k = key(t);
      if (!(k < keyP || (k == keyP && static_cast<uint64_t>(t) <= idP))) return false;
      return !(minP > 0 && weight(t) < minP);
    };
    double total = 0;
    for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x)
      if (kept(t)) total += weight(t);
    total = blockSum(total, sh);
    double probTotal = 0;
    for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x)
      if (kept(t)) probTotal += weight(t) / total;
    probTotal = blockSum(probTotal, sh);
    // Inverse CDF in token order: the first token whose running probability exceeds u * total.
    const double u = static_cast<double>(philoxFirstWord(static_cast<uint32_t>(counter), static_cast<uint32_t>(p.seed[r])) >> 8) /
                     16777216.0;
    const double target = u * probTotal;
    double running = 0;
    token = vocab;
    int64_t lastKept = -1;
    for (int64_t base = 0; base < vocab && token == vocab; base += blockDim.x) {
      const int64_t t = base + threadIdx.x;
      const double prob = t < vocab && kept(t) ? weight(t) / total : 0.0;
      // Inclusive scan of the chunk: warp shuffles, then the warps' totals.
      double incl = prob;
      for (int o = 1; o < 32; o <<= 1) {
        const double v = __shfl_up_sync(0xffffffffu, incl, o);
        if (threadIdx.x % 32 >= o) incl += v;
      }
      __syncthreads();
      if (threadIdx.x % 32 == 31) sh.partial[threadIdx.x / 32] = incl;
      __syncthreads();
      double before = 0, chunk = 0;
      for (int w = 0; w < kThreads / 32; ++w) {
        if (w < static_cast<int>(threadIdx.x / 32)) before += sh.partial[w];
        chunk += sh.partial[w];
      }
      const bool crosses = prob > 0 && running + before + incl > target;
      const int64_t found = blockFirst(crosses ? t : vocab, sh, vocab);
      const int64_t lastHere = blockFirst(prob > 0 ? -t : 1, sh, 1);  // -(largest kept index in the chunk)
      if (lastHere <= 0) lastKept = max(lastKept, -lastHere);
      if (found < vocab) token = found;
      running += chunk;
    }
    if (token == vocab) token = lastKept < 0 ? 0 : lastKept;
  }
  if (threadIdx.x == 0) {
    p.tokens[r] = static_cast<int32_t>(token);
    if (p.logprobs) {
      const double zt = infinite ? (y[token] == mx ? 0.0 : kNegInf) : (y[token] - mx) / scale;
      p.logprobs[r] = static_cast<float>(zt - logSum);
    }
  }
}

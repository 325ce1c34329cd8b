// The sample op: core's float64 sampling pipeline (packages/core/src/exec/sampling.ts, the
// specification) step for step in double precision, one row per work item, so the cpu picks the
// same token as the reference for the same logits, parameters, seed and counter.
#include "ops/sample.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "thread_pool.h"

namespace fastattn {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/** Philox-4x32-10 of counter (c, 0, 0, 0) and key (seed, 0): the first output word. */
uint32_t philoxFirstWord(uint32_t counter, uint32_t seed) {
  uint32_t c0 = counter, c1 = 0, c2 = 0, c3 = 0, k0 = seed, k1 = 0;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9e3779b9u;
      k1 += 0xbb67ae85u;
    }
    const uint64_t p0 = uint64_t(0xd2511f53u) * c0;
    const uint64_t p1 = uint64_t(0xcd9e8d57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = uint32_t(p1);
    c2 = n2;
    c3 = uint32_t(p0);
  }
  return c0;
}

struct RowParams {
  double temperature, topP, minP, rep, presence, frequency;
  int64_t topK;
  uint32_t seed;
};

[[noreturn]] void bad(const char* field, int64_t row, const std::string& expected, double got) {
  throw OpError("INVALID_INPUT", field,
                "row " + std::to_string(row) + ": expected " + expected + ", got " + std::to_string(got));
}

RowParams rowParams(const SampleParams& p, int64_t r) {
  RowParams q{double(p.temperature[r]), double(p.topP[r]),     double(p.minP[r]), double(p.repetitionPenalty[r]),
              double(p.presencePenalty[r]), double(p.frequencyPenalty[r]), p.topK[r], uint32_t(p.seed[r])};
  if (!(std::isfinite(q.temperature) && q.temperature >= 0)) bad("sample.params.temperature", r, "a finite number >= 0", q.temperature);
  if (q.topK < 0) bad("sample.params.topK", r, "an integer >= 0", double(q.topK));
  if (!(q.topP > 0 && q.topP <= 1)) bad("sample.params.topP", r, "a number in (0, 1]", q.topP);
  if (!(q.minP >= 0 && q.minP <= 1)) bad("sample.params.minP", r, "a number in [0, 1]", q.minP);
  if (!(std::isfinite(q.rep) && q.rep > 0)) bad("sample.params.repetitionPenalty", r, "a finite number > 0", q.rep);
  if (!std::isfinite(q.presence)) bad("sample.params.presencePenalty", r, "a finite number", q.presence);
  if (!std::isfinite(q.frequency)) bad("sample.params.frequencyPenalty", r, "a finite number", q.frequency);
  return q;
}

}  // namespace

static void sampleItem(const SampleParams& p, int64_t r, std::vector<double>& y, std::vector<double>& z,
                std::vector<uint32_t>& order) {
  const int64_t vocab = p.vocab;
  const RowParams q = rowParams(p, r);
  const int32_t counter = p.counters[r];
  if (counter < 0) bad("sample.counters", r, "an integer >= 0", double(counter));
  y.resize(size_t(vocab));
  z.resize(size_t(vocab));
  // 1-2. sanitize, then the penalties of seen tokens.
  const float* logits = p.logits + r * p.logitsRowStride;
  for (int64_t t = 0; t < vocab; ++t) y[t] = std::isnan(logits[t]) ? kNegInf : double(logits[t]);
  if (p.counts != nullptr) {
    const int32_t* counts = p.counts + r * p.countsRowStride;
    for (int64_t t = 0; t < vocab; ++t) {
      const int32_t count = counts[t];
      if (count < 0) bad("sample.counts", r, "counts >= 0", double(count));
      if (count == 0) continue;
      double x = y[t];
      x = x > 0 ? x / q.rep : x * q.rep;
      x = x - q.frequency * double(count) - q.presence;
      y[t] = std::isnan(x) ? kNegInf : x;
    }
  }
  // 3. temperature (1 for greedy) with the infinite-max rule, and log(sum exp z).
  const double temp = q.temperature == 0 ? 1.0 : q.temperature;
  double mx = kNegInf;
  for (int64_t t = 0; t < vocab; ++t) mx = std::max(mx, y[t]);
  const bool infinite = !std::isfinite(mx);
  double sum = 0;
  for (int64_t t = 0; t < vocab; ++t) {
    z[t] = infinite ? (y[t] == mx ? 0.0 : kNegInf) : (y[t] - mx) / temp;
    sum += std::exp(z[t]);
  }
  const double logSum = std::log(sum);
  int64_t token = 0;
  if (q.temperature == 0) {
    for (int64_t t = 1; t < vocab; ++t)
      if (y[t] > y[token]) token = t;
  } else {
    // 4. weights, then top-k, top-p and min-p, each on what the previous step kept. The ranking
    // (penalized logit descending, then id) reads y, so it comes first; then y holds the weights.
    const auto ranked = [&](uint32_t a, uint32_t b) { return y[a] == y[b] ? a < b : y[a] > y[b]; };
    const bool byK = q.topK > 0 && q.topK < vocab;
    int64_t kept = byK ? q.topK : vocab;
    if (byK || q.topP < 1) {
      order.resize(size_t(vocab));
      std::iota(order.begin(), order.end(), 0u);
      // Top-p runs over the first `kept` ranks only: a partial sort of them is enough.
      std::partial_sort(order.begin(), order.begin() + kept, order.end(), ranked);
    }
    std::vector<double>& w = y;
    for (int64_t t = 0; t < vocab; ++t) w[t] = std::exp(z[t]);
    std::vector<uint8_t> keep(size_t(vocab), 1);
    if (byK || q.topP < 1) {
      if (q.topP < 1) {
        double total = 0;
        for (int64_t i = 0; i < kept; ++i) total += w[order[i]];
        double run = 0;
        int64_t i = 0;
        while (i < kept) {
          run += w[order[i++]];
          if (run >= q.topP * total) break;
        }
        kept = i;
      }
      std::fill(keep.begin(), keep.end(), uint8_t(0));
      for (int64_t i = 0; i < kept; ++i) keep[order[i]] = 1;
    }
    // p < minP * pMax is w < minP: the top token's weight is exactly 1.
    if (q.minP > 0) {
      for (int64_t t = 0; t < vocab; ++t)
        if (w[t] < q.minP) keep[t] = 0;
    }
    double total = 0;
    for (int64_t t = 0; t < vocab; ++t)
      if (keep[t]) total += w[t];
    // Probabilities as the reference forms them (w / total), summed in token order.
    double probTotal = 0;
    for (int64_t t = 0; t < vocab; ++t)
      if (keep[t]) probTotal += w[t] / total;
    const uint32_t x = philoxFirstWord(uint32_t(counter), q.seed);
    const double u = double(x >> 8) / 16777216.0;
    const double target = u * probTotal;
    double run = 0;
    int64_t last = 0;
    token = -1;
    for (int64_t t = 0; t < vocab; ++t) {
      if (!keep[t]) continue;
      const double prob = w[t] / total;
      if (prob == 0) continue;
      run += prob;
      last = t;
      if (target < run) {
        token = t;
        break;
      }
    }
    if (token < 0) token = last;
  }
  p.tokens[r] = int32_t(token);
  if (p.logprobs != nullptr) p.logprobs[r] = float(z[token] - logSum);
}

void sampleRows(const SampleParams& p, int64_t item, Scratch&) {
  std::vector<double> y, z;
  std::vector<uint32_t> order;
  const int64_t r0 = item * p.rowsPerItem, r1 = std::min(p.rows, r0 + p.rowsPerItem);
  for (int64_t r = r0; r < r1; ++r) sampleItem(p, r, y, z, order);
}

}  // namespace fastattn

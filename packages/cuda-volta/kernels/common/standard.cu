// Standard attention, the baseline FlashAttention is measured against (src/exec/standard.ts): the
// scores are materialized in device memory between two batched cuBLAS products. These are its two
// memory-bound kernels: the K/V gather and the masked softmax. Path-independent, like ops.cu.
#include "op_elem.cuh"

namespace {

constexpr int kSoftmaxThreads = 256;

__device__ __forceinline__ float ninf() { return -__int_as_float(0x7f800000); }

// (max, sum of exp(x - max)) of two parts; an empty part has max -inf and sum 0.
__device__ __forceinline__ void mergeMaxSum(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == ninf()) return;
  s = (m == ninf() ? 0.0f : s * __expf(m - mx)) + (m2 == ninf() ? 0.0f : s2 * __expf(m2 - mx));
  m = mx;
}

}  // namespace

// grid (units of every head's rows / 256, 2: K then V).
extern "C" __global__ void fa_std_gather(const FaStdGatherParams p) {
  const int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (u >= p.heads_q * p.seq_k * p.units) return;
  const int64_t c = u % p.units, row = u / p.units;
  const int64_t j = row % p.seq_k, h = row / p.seq_k;
  const int64_t hk = h / (p.heads_q / p.heads_kv);
  const char* src = static_cast<const char*>(blockIdx.y == 0 ? p.k : p.v);
  char* dst = static_cast<char*>(blockIdx.y == 0 ? p.k_out : p.v_out) + u * p.unit_bytes;
  const bool valid = j < p.seqlens[p.b];
  int64_t keyRow = 0;  // the key's row in the cache ([..][heads_kv][head_dim] rows)
  if (valid) {
    keyRow = p.table == nullptr
                 ? p.b * p.seq_k + j
                 : int64_t(p.table[p.b * p.blocks_per_seq + j / p.block_size]) * p.block_size + j % p.block_size;
  }
  const int64_t at = ((keyRow * p.heads_kv + hk) * p.units + c) * p.unit_bytes;
  if (p.unit_bytes == 16) {
    *reinterpret_cast<uint4*>(dst) = valid ? *reinterpret_cast<const uint4*>(src + at) : make_uint4(0, 0, 0, 0);
  } else {
    *reinterpret_cast<uint16_t*>(dst) = valid ? *reinterpret_cast<const uint16_t*>(src + at) : uint16_t(0);
  }
}

// One CTA per (head, query row): one pass for the row's max and sum (online), one to write P.
extern "C" __global__ void __launch_bounds__(kSoftmaxThreads) fa_std_softmax(const FaStdSoftmaxParams p) {
  const int64_t r = blockIdx.x;  // h * seq_q + i
  const int64_t i = r % p.seq_q, h = r / p.seq_q;
  const int64_t len = p.seqlens[p.b];
  const int64_t diag = i + len - p.seq_q;
  const int64_t start = p.left < 0 ? 0 : max(int64_t(0), diag - p.left);
  const int64_t end = p.right < 0 ? len : min(len, diag + p.right + 1);
  const float* s = p.scores + r * p.seq_k;

  float m = ninf(), sum = 0.0f;
  for (int64_t j = start + threadIdx.x; j < end; j += blockDim.x) {
    const float x = s[j];
    if (x > m) {
      sum = sum * __expf(m - x) + 1.0f;
      m = x;
    } else {
      sum += __expf(x - m);  // NaN (from NaN in q or k) reaches the sum, and so the row's output
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    mergeMaxSum(m, sum, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, sum, o));
  }
  __shared__ float ms[kSoftmaxThreads / 32], ss[kSoftmaxThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    ms[warp] = m;
    ss[warp] = sum;
  }
  __syncthreads();
  m = ninf();
  sum = 0.0f;
  for (int w = 0; w < int(blockDim.x / 32); ++w) mergeMaxSum(m, sum, ms[w], ss[w]);

  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int64_t j = threadIdx.x; j < p.seq_k; j += blockDim.x) {
    const float v = j >= start && j < end ? __expf(s[j] - m) * inv : 0.0f;
    fa::st(p.probs, p.dtype, r * p.seq_k + j, v);
  }
  if (p.lse != nullptr && threadIdx.x == 0) {
    p.lse[(p.b * p.heads_q + h) * p.seq_q + i] = m == ninf() ? m : m + __logf(sum);
  }
}

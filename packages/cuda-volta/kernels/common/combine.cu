// Split-KV combine: each split wrote its normalized partial output and its LSE; the result is the
// LSE-weighted sum (split_merge.cuh). One CTA per (batch, head, query row), a thread per 4
// columns; path-independent (built for every architecture).
#include "numeric.cuh"
#include "params.h"
#include "split_merge.cuh"

template <typename T>
__device__ void combine(const FaCombineParams& p) {
  const int64_t row = blockIdx.x;  // (b * heads_q + h) * seq_q + i, the LSE layout
  const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
  const int i = (int)(row % p.seq_q);
  const int h = (int)((row / p.seq_q) % p.heads_q);
  const int b = (int)(row / ((int64_t)p.seq_q * p.heads_q));
  T* out = static_cast<T*>(p.out) + (int64_t)b * p.o_batch_stride + (int64_t)i * p.o_row_stride + (int64_t)h * p.head_dim;
  for (int d4 = threadIdx.x; d4 < p.head_dim / 4; d4 += blockDim.x) {
    const fa::LseMerge m = fa::merge_splits(p.part_lse, p.part_o, row, rows, p.head_dim, p.num_splits, d4);
    fa::store4(out + 4 * d4, m.out());
    if (d4 == 0) p.lse[row] = m.lse();
  }
}

extern "C" __global__ void fa_combine_f16(const FaCombineParams p) { combine<__half>(p); }
extern "C" __global__ void fa_combine_bf16(const FaCombineParams p) { combine<__nv_bfloat16>(p); }

// Deterministic pseudo-random fill in [-1, 1) (splitmix64 of the index): benchmarks and large
// device tensors get realistic, non-zero data without a host round trip.
__device__ __forceinline__ float uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}
extern "C" __global__ void fa_fill_f16(__half* x, uint64_t n, uint64_t seed) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
    x[i] = __float2half_rn(uniform(seed, i));
}
extern "C" __global__ void fa_fill_bf16(__nv_bfloat16* x, uint64_t n, uint64_t seed) {
  for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
    x[i] = __float2bfloat16_rn(uniform(seed, i));
}

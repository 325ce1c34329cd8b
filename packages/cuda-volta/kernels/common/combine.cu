// Split-KV combine: each split wrote its normalized partial output and its LSE; the result is the
// LSE-weighted sum (core's mergePartials). One CTA per (batch, head, query row); path-independent.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "params.h"

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T>
__device__ void combine(const FaCombineParams& p) {
  const int64_t row = blockIdx.x;  // (b * heads_q + h) * seq_q + i, the LSE layout
  const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
  const int i = (int)(row % p.seq_q);
  const int h = (int)((row / p.seq_q) % p.heads_q);
  const int b = (int)(row / ((int64_t)p.seq_q * p.heads_q));
  float mx = -INFINITY;
  bool nan = false;  // a NaN partial LSE (NaN in a visible q or k) makes the row NaN
  for (int s = 0; s < p.num_splits; ++s) {
    const float l = p.part_lse[s * rows + row];
    mx = fmaxf(mx, l);
    nan |= isnan(l);
  }
  float sum = 0.f;
  for (int s = 0; s < p.num_splits; ++s) {
    const float l = p.part_lse[s * rows + row];
    sum += l == -INFINITY ? 0.f : __expf(l - mx);
  }
  if (nan) sum = NAN;
  T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)h * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float acc = 0.f;
    if (sum != 0.f) {  // sum == 0: no split saw an allowed key
      for (int s = 0; s < p.num_splits; ++s) {
        const float l = p.part_lse[s * rows + row];
        if (l != -INFINITY) acc += __expf(l - mx) * p.part_o[(s * rows + row) * p.head_dim + d];
      }
      acc /= sum;
    }
    out[d] = from_f<T>(acc);
  }
  if (threadIdx.x == 0) p.lse[row] = sum != 0.f ? mx + logf(sum) : -INFINITY;
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

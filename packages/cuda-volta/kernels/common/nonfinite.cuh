// Keys a row may not see must not influence it, whatever they hold (a KV cache's unused slots hold
// garbage, Inf and NaN included). Masking sets such a key's probability to 0, but the tensor-core
// P V product still computes 0 * V, which is NaN for an Inf or NaN in V. So on tiles where some key
// is hidden from some row (PARTIAL tiles, the tile that runs past lk), each thread zeroes the Inf
// and NaN of the V chunks it copied into shared memory before the tile is used. Keys that some
// row of the CTA does see are then missing their non-finite part: when the CTA found one there
// (a rare, broken-model case), each thread adds the Inf/NaN values of the keys its rows see back
// into its O elements from global memory (nonfinite_sum), which is what p * v gives for any p > 0.
// Every path adds them once, after the store, over every key the CTA ran (counting again one that
// a FULL tile already propagated changes nothing: Inf + Inf = Inf; fwd_body.cuh, fixup_rows), so the
// main loop only carries a flag (a per-tile fix-up cost 4-11% of prefill speed on the H200). The
// hopper mainloop keeps the flag in shared memory and tests its chunks cheaply (nonfinite_any8)
// before clearing them, so that its FULL tiles run the pre-fix loop body.
// FULL tiles need none of this: every row sees every key there, so Inf/NaN propagate as they must.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa {

// 0xffff in each 16-bit half of w whose value is Inf or NaN (exponent all ones), else 0.
template <typename S> __device__ __forceinline__ uint32_t nonfinite_halves(uint32_t w);
template <> __device__ __forceinline__ uint32_t nonfinite_halves<__half>(uint32_t w) {
  return __vcmpeq2(w & 0x7c007c00u, 0x7c007c00u);
}
template <> __device__ __forceinline__ uint32_t nonfinite_halves<__nv_bfloat16>(uint32_t w) {
  return __vcmpeq2(w & 0x7f807f80u, 0x7f807f80u);
}

// Nonzero if one of the 8 values of storage type S in v is Inf or NaN: the exponent field plus its
// lowest bit carries into the sign position exactly when the field is all ones (no carry crosses
// into the other half). Two instructions a word: the cheap test before zero_nonfinite8.
template <typename S> __device__ __forceinline__ uint32_t nonfinite_any8(const uint4& v);
template <> __device__ __forceinline__ uint32_t nonfinite_any8<__half>(const uint4& v) {
  return (((v.x & 0x7c007c00u) + 0x04000400u) | ((v.y & 0x7c007c00u) + 0x04000400u) |
          ((v.z & 0x7c007c00u) + 0x04000400u) | ((v.w & 0x7c007c00u) + 0x04000400u)) &
         0x80008000u;
}
template <> __device__ __forceinline__ uint32_t nonfinite_any8<__nv_bfloat16>(const uint4& v) {
  return (((v.x & 0x7f807f80u) + 0x00800080u) | ((v.y & 0x7f807f80u) + 0x00800080u) |
          ((v.z & 0x7f807f80u) + 0x00800080u) | ((v.w & 0x7f807f80u) + 0x00800080u)) &
         0x80008000u;
}

// Zeroes the Inf/NaN elements of 8 values of storage type S; true if there were any.
template <typename S> __device__ __forceinline__ bool zero_nonfinite8(uint4& v) {
  const uint32_t m0 = nonfinite_halves<S>(v.x), m1 = nonfinite_halves<S>(v.y);
  const uint32_t m2 = nonfinite_halves<S>(v.z), m3 = nonfinite_halves<S>(v.w);
  v.x &= ~m0;
  v.y &= ~m1;
  v.z &= ~m2;
  v.w &= ~m3;
  return (m0 | m1 | m2 | m3) != 0u;
}

// The same on a 16-byte chunk in shared memory (written back only when it changed).
template <typename S> __device__ __forceinline__ bool zero_nonfinite_smem(void* p) {
  uint4 v = *reinterpret_cast<const uint4*>(p);
  if (!zero_nonfinite8<S>(v)) return false;
  *reinterpret_cast<uint4*>(p) = v;
  return true;
}

__device__ __forceinline__ float value_of(__half x) { return __half2float(x); }
__device__ __forceinline__ float value_of(__nv_bfloat16 x) { return __bfloat162float(x); }

// Keys query row i may see inside [j0, j1): [max(j0, d - left, 0), min(j1, lk, d + right + 1)) with
// d = i + lk - seq_q (bottom-right alignment, tile_mask.cuh).
__device__ __forceinline__ void visible_keys(int64_t i, int lk, int seq_q, int left, int right, int j0, int j1,
                                             int* lo, int* hi) {
  const int64_t d = i + lk - seq_q;
  int64_t a = d - left, b = d + right + 1;
  if (a < j0) a = j0;
  if (b > j1) b = j1;
  if (b > lk) b = lk;
  *lo = (int)a;
  *hi = (int)(b < a ? a : b);
}

// Sum of the Inf/NaN values of column `col` of V over keys [lo, hi) (global memory; 0 if none);
// key j is row rowOf(j) of vBase (a paged cache's rows come from its block table).
// Inlined: a call would make O live across an ABI call and cost the main loop its registers.
template <typename T, typename RowOf>
__device__ __forceinline__ float nonfinite_sum(const T* vBase, int64_t rowStride, int col, int lo, int hi,
                                               RowOf&& rowOf) {
  float acc = 0.f;
  for (int j = lo; j < hi; ++j) {
    const float x = value_of(vBase[rowOf(j) * rowStride + col]);
    if (!isfinite(x)) acc += x;
  }
  return acc;
}

}  // namespace fa

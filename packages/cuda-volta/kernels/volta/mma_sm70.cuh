// The volta path's tile primitives: mma.sync.aligned.m8n8k4 (sm_70; still valid PTX up to sm_90),
// 16-byte shared-memory fragment loads, and the f16 staging of the operands. No ldmatrix, no
// cp.async: sm_70 has neither.
//
// m8n8k4 runs as four independent 8x8x4 products, one per quad-pair (QP). QP q (q = 0..3) is lanes
// 4q..4q+3 (its "low quad", fragment index ai = lane % 4) and 4q+16..4q+19 ("high quad", ai = 4 +
// lane % 4). Register layouts (PTX ISA, "Matrix fragments for mma.m8n8k4 with .f16"):
//   A 8x4 .row : lane holds row ai, k = 0..3            (two .f16x2 registers)
//   B 4x8 .col : lane holds column n = ai, k = 0..3      (K^T: one key, 4 consecutive head-dim values)
//   B 4x8 .row : lane holds k = lane % 4, n = 4h..4h+3   (V: one key, 4 consecutive head-dim values)
//   C 8x8 f32  : c[i] at row (lane & 1) + 2 * ((i >> 1) & 1) + 4h, col (lane & 2) + (i & 1) + (i & 4)
// with h = lane >= 16. Every operand is therefore a run of 4 consecutive halves of one row-major
// row: Q, K and V are used as they are stored, with no transpose and no register shuffle, and a
// thread fetches two k4 steps at once with one 16-byte load (the k order inside a 16-byte chunk is
// the same for A and B, so any pairing of k values is valid as long as both sides use it).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa_volta {

// D += A * B, A row-major, B column-major (S = Q K^T).
__device__ __forceinline__ void mma_rc(float (&d)[8], uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m8n8k4.row.col.f32.f16.f16.f32 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9}, {%10,%11}, "
      "{%0,%1,%2,%3,%4,%5,%6,%7};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a0), "r"(a1), "r"(b0), "r"(b1));
}
// D += A * B, A and B row-major (O = P V).
__device__ __forceinline__ void mma_rr(float (&d)[8], uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m8n8k4.row.row.f32.f16.f16.f32 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9}, {%10,%11}, "
      "{%0,%1,%2,%3,%4,%5,%6,%7};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a0), "r"(a1), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// bf16 by hand (round to nearest even, NaN kept quiet): the same bits on every toolkit and arch.
__device__ __forceinline__ uint32_t f2bf_bits(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

// Storage types. The tensor cores of sm_70/sm_75 take f16 only, so shared memory always holds f16:
// bf16 inputs are converted while staged (exact for |x| in f16's normal range, see the docs).
template <typename T> struct Io;
template <> struct Io<__half> {
  static __device__ __forceinline__ uint4 to_h8(uint4 v) { return v; }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) { return pack_h2(lo, hi); }
};
template <> struct Io<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t cvt2(uint32_t w) {
    return pack_h2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
  static __device__ __forceinline__ uint4 to_h8(uint4 v) {
    return make_uint4(cvt2(v.x), cvt2(v.y), cvt2(v.z), cvt2(v.w));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) { return f2bf_bits(lo) | (f2bf_bits(hi) << 16); }
};

__device__ __forceinline__ uint4 lds128(const __half* p) { return *reinterpret_cast<const uint4*>(p); }

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace fa_volta

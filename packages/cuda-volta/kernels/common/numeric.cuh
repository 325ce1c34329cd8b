// Element types and the few numeric helpers every path uses: packing two floats into one 32-bit
// operand register, exp2 and the natural-log factor of the LSE.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa {

// ln(2): the kernels keep row maxima and sums in base 2 (exp2), the LSE contract is natural.
constexpr float kLn2 = 0.69314718055994531f;
// log2(e): a natural LSE back to base 2.
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t pack_h2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// bf16 by hand (round to nearest even, NaN kept quiet): the same bits on every toolkit and arch,
// sm_70 with CUDA 11 included.
__device__ __forceinline__ uint32_t f2bf_bits(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

// Storage types: two floats as one 32-bit register, one float as one element, and back.
template <typename T> struct Elem;
template <> struct Elem<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) { return pack_h2(lo, hi); }
  static __device__ __forceinline__ __half from_float(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
};
template <> struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // one cvt instruction
    return *reinterpret_cast<uint32_t*>(&h);
#else
    return f2bf_bits(lo) | (f2bf_bits(hi) << 16);
#endif
  }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) {
    const uint16_t b = (uint16_t)f2bf_bits(x);
    return *reinterpret_cast<const __nv_bfloat16*>(&b);
  }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) {
    return __uint_as_float((uint32_t)*reinterpret_cast<const uint16_t*>(&x) << 16);
  }
};

// Output stores: 2 or 4 neighbouring columns as the output type, or as f32 partials.
template <typename T>
__device__ __forceinline__ void store2(T* dst, float a, float b) {
  *reinterpret_cast<uint32_t*>(dst) = Elem<T>::pack(a, b);
}
__device__ __forceinline__ void store2(float* dst, float a, float b) { *reinterpret_cast<float2*>(dst) = make_float2(a, b); }
template <typename T>
__device__ __forceinline__ void store4(T* dst, float4 v) {
  *reinterpret_cast<uint2*>(dst) = make_uint2(Elem<T>::pack(v.x, v.y), Elem<T>::pack(v.z, v.w));
}
__device__ __forceinline__ void store4(float* dst, float4 v) { *reinterpret_cast<float4*>(dst) = v; }

// Reductions over the lanes that hold one accumulator row: lane, lane ^ A, lane ^ B, lane ^ A ^ B
// (the four lanes of a quad for m16n8 tiles; l1 and the quad-pair column for volta's m8n8k4).
template <int A, int B>
struct RowLanes {
  static __device__ __forceinline__ float row_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, A));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, B));
  }
  static __device__ __forceinline__ float row_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, A);
    return x + __shfl_xor_sync(0xffffffffu, x, B);
  }
};

// A compile-time bool as a value: the body passes BoolTag<true>{} / BoolTag<false>{} to one generic
// tile step, instantiating a masked (PARTIAL tiles) and an unmasked (FULL tiles) copy of it.
template <bool B> struct BoolTag { static constexpr bool value = B; };

}  // namespace fa

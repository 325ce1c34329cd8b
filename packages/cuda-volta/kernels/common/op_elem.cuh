// Element access of the op kernels: one element of an f32, f16 or bf16 tensor (FaOpDType) read
// as f32, or stored from f32 (round to nearest even); or kFaVec consecutive elements at once, from
// 16-byte-aligned memory (the host checks the alignment before it picks a vector kernel).
#pragma once
#include "numeric.cuh"
#include "op_params.h"

namespace fa {

__device__ __forceinline__ float ld(const void* p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case FA_F16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case FA_BF16:
      return __uint_as_float(uint32_t(static_cast<const uint16_t*>(p)[i]) << 16);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void st(void* p, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case FA_F16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    case FA_BF16:
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(fa::f2bf_bits(v));
      break;
    default:
      static_cast<float*>(p)[i] = v;
  }
}

/** Elements [i, i + kFaVec) as f32: one 16-byte load (two for f32). */
__device__ __forceinline__ void ldVec(const void* p, int32_t dtype, int64_t i, float (&out)[kFaVec]) {
  if (dtype == FA_F32) {
    const float4* f = reinterpret_cast<const float4*>(static_cast<const float*>(p) + i);
    const float4 a = f[0], b = f[1];
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    return;
  }
  const uint4 u = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p) + i);
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (dtype == FA_F16) {
      out[2 * k] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[k] & 0xffffu)));
      out[2 * k + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(w[k] >> 16)));
    } else {
      out[2 * k] = __uint_as_float(w[k] << 16);
      out[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
  }
}

/** Stores elements [i, i + kFaVec) from f32, rounded as `st` rounds. */
__device__ __forceinline__ void stVec(void* p, int32_t dtype, int64_t i, const float (&in)[kFaVec]) {
  if (dtype == FA_F32) {
    float4* f = reinterpret_cast<float4*>(static_cast<float*>(p) + i);
    f[0] = make_float4(in[0], in[1], in[2], in[3]);
    f[1] = make_float4(in[4], in[5], in[6], in[7]);
    return;
  }
  uint32_t w[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint32_t lo = dtype == FA_F16 ? __half_as_ushort(__float2half_rn(in[2 * k])) : fa::f2bf_bits(in[2 * k]);
    const uint32_t hi = dtype == FA_F16 ? __half_as_ushort(__float2half_rn(in[2 * k + 1])) : fa::f2bf_bits(in[2 * k + 1]);
    w[k] = (lo & 0xffffu) | (hi << 16);
  }
  *reinterpret_cast<uint4*>(static_cast<uint16_t*>(p) + i) = make_uint4(w[0], w[1], w[2], w[3]);
}

}  // namespace fa

// Element access of the op kernels: one element of an f32, f16 or bf16 tensor (FaOpDType) read
// as f32, or stored from f32 (round to nearest even).
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

}  // namespace fa

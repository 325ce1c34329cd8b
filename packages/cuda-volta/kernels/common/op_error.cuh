// How the op kernels report bad data: the first error's code and detail go to the error word
// (two int32s, kernels/common/op_params.h), which the host reads after a synchronization.
#pragma once
#include <stdint.h>

namespace fa {

__device__ __forceinline__ void reportOpError(int32_t* error, int32_t code, int64_t detail) {
  if (atomicCAS(error, 0, code) == 0) error[1] = static_cast<int32_t>(detail);
}

}  // namespace fa

// The compiled kernel configurations of each architecture path, from its kernels/<path>/configs.h.
#pragma once
#include <napi.h>

namespace fa {

// configs(path): [{ path, role, headDim, blockQ, blockK, warps, stages, sharedBytes, suffix,
// kernels: { f16, bf16 } }]; UNSUPPORTED (field 'path') for an unknown path.
Napi::Value Configs(const Napi::CallbackInfo& info);

}  // namespace fa

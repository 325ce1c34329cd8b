// The native side of @fastattention/cuda-volta, by concern: probe.cpp (devices), configs.cpp (the
// compiled configurations), tile_mask_check.cpp (the kernels' tiling-mask formulas, for tests) and
// the Context class (context.h: memory, modules, launches, timing). Every driver error becomes a
// JS Error with `code` (DEVICE, OOM, UNAVAILABLE, ...), `cudaError` and `call` (js_errors.h).
#include <napi.h>

#include "configs.h"
#include "context.h"
#include "probe.h"
#include "tile_mask_check.h"

namespace fa {
namespace {

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("tileKind", Napi::Function::New(env, TileKind));
  exports.Set("kRange", Napi::Function::New(env, KRange));
  exports.Set("configs", Napi::Function::New(env, Configs));
  exports.Set("Context", Context::Init(env));
  return exports;
}

}  // namespace
}  // namespace fa

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return fa::InitAddon(env, exports); }
NODE_API_MODULE(fa_cuda, InitModule)

#include "configs.h"

#include <fastattention/napi_error.h>

#include <string>

#include "../../kernels/ampere/configs.h"
#include "../../kernels/common/kernel_names.h"
#include "../../kernels/hopper/configs.h"
#include "../../kernels/turing/configs.h"
#include "../../kernels/volta/configs.h"

namespace fa {
namespace {

Napi::Object configRow(Napi::Env env, const std::string& path, const char* role, int headDim, int blockQ, int blockK,
                       int warps, int producerWarps, int stages, int sharedBytes, const char* name,
                       const char* kernelF16,
                       const char* kernelBf16, const char* pagedF16, const char* pagedBf16) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", path);
  o.Set("role", role);
  o.Set("headDim", headDim);
  o.Set("blockQ", blockQ);
  o.Set("blockK", blockK);
  o.Set("warps", warps);
  o.Set("producerWarps", producerWarps);
  o.Set("stages", stages);
  o.Set("sharedBytes", sharedBytes);
  o.Set("suffix", name);
  Napi::Object kernels = Napi::Object::New(env);
  kernels.Set("f16", kernelF16);
  kernels.Set("bf16", kernelBf16);
  o.Set("kernels", kernels);
  Napi::Object paged = Napi::Object::New(env);
  paged.Set("f16", pagedF16);
  paged.Set("bf16", pagedBf16);
  o.Set("pagedKernels", paged);
  return o;
}

}  // namespace

// Read from each path's configs.h table, so kernel names and shared-memory sizes have one source
// of truth (kernel_names.h).
Napi::Value Configs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
#define FA_CONFIG_ROW(PATH, SMEM, PRODUCERS, role, HD, BM, BN, W, S)                                           \
  out[i++] = configRow(env, path, #role, HD, BM, BN, W, PRODUCERS(BM, W), S, SMEM(HD, BM, BN, W, S),             \
                       FA_CONFIG_NAME_STR(HD, BM, BN, W, S),                                                     \
                       FA_KERNEL_SYMBOL_STR(PATH, role, f16, HD, BM, BN, W, S),                                \
                       FA_KERNEL_SYMBOL_STR(PATH, role, bf16, HD, BM, BN, W, S),                               \
                       FA_KERNEL_SYMBOL_PAGED_STR(PATH, role, f16, HD, BM, BN, W, S),                          \
                       FA_KERNEL_SYMBOL_PAGED_STR(PATH, role, bf16, HD, BM, BN, W, S));
#define FA_NO_PRODUCERS(BM, W) 0
#define FA_AMPERE_ROW(...) FA_CONFIG_ROW(ampere, FA_AMPERE_SMEM, FA_NO_PRODUCERS, __VA_ARGS__)
#define FA_HOPPER_ROW(...) FA_CONFIG_ROW(hopper, FA_HOPPER_SMEM, FA_HOPPER_PRODUCER_WARPS, __VA_ARGS__)
#define FA_VOLTA_ROW(...) FA_CONFIG_ROW(volta, FA_VOLTA_SMEM, FA_NO_PRODUCERS, __VA_ARGS__)
#define FA_TURING_ROW(...) FA_CONFIG_ROW(turing, FA_TURING_SMEM, FA_NO_PRODUCERS, __VA_ARGS__)
  if (path == "ampere") {
    FA_AMPERE_CONFIGS(FA_AMPERE_ROW)
  } else if (path == "hopper") {
    FA_HOPPER_CONFIGS(FA_HOPPER_ROW)
  } else if (path == "volta") {
    FA_VOLTA_CONFIGS(FA_VOLTA_ROW)
  } else if (path == "turing") {
    FA_TURING_CONFIGS(FA_TURING_ROW)
  } else {
    throw fastattention::codedError(env, "UNSUPPORTED", "path: unknown architecture path '" + path + "'", "path");
  }
#undef FA_CONFIG_ROW
#undef FA_AMPERE_ROW
#undef FA_HOPPER_ROW
#undef FA_VOLTA_ROW
#undef FA_TURING_ROW
#undef FA_NO_PRODUCERS
  return out;
}

}  // namespace fa

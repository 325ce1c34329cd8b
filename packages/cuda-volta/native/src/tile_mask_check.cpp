#include "tile_mask_check.h"

#include <cstdint>

#include "../../kernels/common/tile_mask.cuh"

namespace fa {

Napi::Value TileKind(const Napi::CallbackInfo& info) {
  auto n = [&](int i) { return static_cast<int64_t>(info[i].As<Napi::Number>().Int64Value()); };
  return Napi::Number::New(info.Env(), fa_tile_kind(n(0), n(1), n(2), n(3), n(4), n(5), n(6)));
}

Napi::Value KRange(const Napi::CallbackInfo& info) {
  auto n = [&](int i) { return static_cast<int64_t>(info[i].As<Napi::Number>().Int64Value()); };
  int s = 0, e = 0;
  fa_k_range(n(0), n(1), n(2), n(3), n(4), static_cast<int>(n(5)), &s, &e);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a[0u] = s;
  a[1u] = e;
  return a;
}

}  // namespace fa

#include "js_args.h"

namespace fa {

char* viewData(const Napi::TypedArray& a) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  const napi_status status = napi_get_typedarray_info(a.Env(), a, &type, &length, &data, &buffer, &offset);
  if (status != napi_ok) NAPI_THROW(Napi::Error::New(a.Env()), nullptr);
  return static_cast<char*>(data);
}

CUdeviceptr ptrArg(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return static_cast<CUdeviceptr>(v.As<Napi::BigInt>().Uint64Value(&lossless));
  }
  if (v.IsNumber()) return static_cast<CUdeviceptr>(v.As<Napi::Number>().Int64Value());
  return 0;
}

}  // namespace fa

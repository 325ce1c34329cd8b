#include "host_output.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace fastattn {

namespace {

void freeData(napi_env, void* data, void*) { std::free(data); }

/**
 * Wraps `data` (malloc'd, `bytes` long) in an ArrayBuffer that frees it when collected; `data`
 * becomes null. A runtime that refuses external memory (a V8 sandbox) gets a copy instead, and
 * `data` stays ours to free.
 */
Napi::ArrayBuffer adopt(Napi::Env env, void*& data, size_t bytes) {
  napi_value value;
  if (napi_create_external_arraybuffer(env, data, bytes, freeData, nullptr, &value) == napi_ok) {
    data = nullptr;
    return Napi::ArrayBuffer(env, value);
  }
  Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
  std::memcpy(copy.Data(), data, bytes);
  return copy;
}

}  // namespace

HostOutput::~HostOutput() {
  std::free(out_);
  std::free(lse_);
}

void HostOutput::allocate() {
  if (allocated()) return;
  out_ = std::malloc(std::max<size_t>(outBytes(), 1));
  lse_ = static_cast<float*>(std::malloc(std::max<size_t>(lseLength_ * 4, 1)));
  if (out_ == nullptr || lse_ == nullptr) throw std::bad_alloc();
  switch (dtype_) {
    case DType::F32:
      std::fill_n(static_cast<float*>(out_), outLength_, std::numeric_limits<float>::quiet_NaN());
      break;
    case DType::F16:
      std::fill_n(static_cast<uint16_t*>(out_), outLength_, uint16_t(0x7e00));
      break;
    case DType::BF16:
      std::fill_n(static_cast<uint16_t*>(out_), outLength_, uint16_t(0x7fc0));
      break;
  }
  std::fill_n(lse_, lseLength_, std::numeric_limits<float>::quiet_NaN());
}

Napi::Value HostOutput::takeOut(Napi::Env env) {
  Napi::ArrayBuffer buffer = adopt(env, out_, outBytes());
  if (dtype_ == DType::F32) return Napi::Float32Array::New(env, outLength_, buffer, 0);
  return Napi::Uint16Array::New(env, outLength_, buffer, 0);
}

Napi::Value HostOutput::takeLse(Napi::Env env) {
  void* data = lse_;
  Napi::ArrayBuffer buffer = adopt(env, data, lseLength_ * 4);
  lse_ = static_cast<float*>(data);
  return Napi::Float32Array::New(env, lseLength_, buffer, 0);
}

}  // namespace fastattn

// Native errors as JS errors: every CudaError and FaError that reaches JavaScript becomes an Error
// with the project's `code` (DEVICE, OOM, UNAVAILABLE, ...), and for driver calls `cudaError` (the
// CUresult's name) and `call` (the entry point that failed).
#pragma once
#include <fastattention/napi_error.h>
#include <napi.h>

#include <string>

#include "driver.h"

namespace fa {

inline Napi::Error toJsError(Napi::Env env, const std::string& message, const std::string& code,
                             const std::string& cudaError, const std::string& call, const std::string& field = "") {
  Napi::Error err = fastattention::codedError(env, code, message, field);
  if (!cudaError.empty()) err.Set("cudaError", Napi::String::New(env, cudaError));
  if (!call.empty()) err.Set("call", Napi::String::New(env, call));
  return err;
}

// Runs fn on the JS thread, turning native exceptions into JS exceptions with codes.
template <typename F>
Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const CudaError& e) {
    throw toJsError(env, e.what(), e.code, e.name, e.call);
  } catch (const FaError& e) {
    throw toJsError(env, e.what(), e.code, "", "", e.field);
  }
}

}  // namespace fa

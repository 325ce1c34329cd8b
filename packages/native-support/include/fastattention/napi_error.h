// JS errors from FastAttention's native addons (node-addon-api, C++ exceptions enabled): an Error
// with the FastAttentionError `code` (INVALID_INPUT, UNSUPPORTED, DEVICE, OOM, ...) and, for bad
// input, the `field` it names. @fastattention/core's toFastAttentionError keeps both, so a native
// error reaches the user as the same typed error the TypeScript side throws.
// Header-only: each addon compiles it in; shipped as @fastattention/native-support.
#pragma once

#include <napi.h>

#include <string>

namespace fastattention {

/** An Error with a FastAttentionError `code` and, when not empty, `field`. */
inline Napi::Error codedError(Napi::Env env, const std::string& code, const std::string& message,
                              const std::string& field = "") {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (!field.empty()) err.Set("field", Napi::String::New(env, field));
  return err;
}

}  // namespace fastattention

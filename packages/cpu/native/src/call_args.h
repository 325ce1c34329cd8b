// Reading a call's arguments from JavaScript. The TypeScript side validates and plans every call
// (core's validateAttentionInput, planTiles, classifyBatch); the checks here are a second line of
// defence so that no argument, however wrong, can make a worker read or write out of bounds.
#pragma once

#include <fastattention/napi_error.h>
#include <napi.h>

#include <string>

#include "kernel/flash_fwd.h"

namespace fastattn {

/** An Error with a FastAttentionError `code` (and `field`), which toFastAttentionError keeps. */
using ::fastattention::codedError;
[[noreturn]] void throwInvalid(Napi::Env env, const std::string& field, const std::string& message);

/** The largest element count a call's arrays may have. */
constexpr int64_t kMaxDim = int64_t(1) << 32;

/** An integer field in [min, max], or INVALID_INPUT naming it. */
int64_t intField(Napi::Env env, const Napi::Object& o, const char* name, int64_t min, int64_t max);

/**
 * The problem of a call: dtype, shape, scale, band, seqLensK and the q/k/v pointers. Typed
 * arrays on a SharedArrayBuffer are read like any other (through napi_get_typedarray_info).
 */
AttnParams readProblem(Napi::Env env, const Napi::Object& call);

/** readProblem without seqLensK and the block table (read later, when the values are known). */
AttnParams readProblemShape(Napi::Env env, const Napi::Object& call);

/** The FlashAttention plan of a call: blocks, GQA stacking, split-KV, decode layout, tile tables. */
void readPlan(Napi::Env env, const Napi::Object& call, AttnParams& p);

/** readPlan without the tile tables (classified later, from seqLensK). */
void readPlanShape(Napi::Env env, const Napi::Object& call, AttnParams& p);

/** The typed array field `name` of `o`: of `type`, with exactly `length` elements. */
template <typename T>
inline T* typedField(Napi::Env env, const Napi::Object& o, const char* name, napi_typedarray_type type, size_t length) {
  const Napi::Value v = o.Get(name);
  napi_typedarray_type actual;
  size_t actualLength = 0;
  void* data = nullptr;
  if (!v.IsTypedArray() ||
      napi_get_typedarray_info(env, v, &actual, &actualLength, &data, nullptr, nullptr) != napi_ok ||
      actual != type) {
    throwInvalid(env, name, "wrong typed array type");
  }
  if (actualLength != length) {
    throwInvalid(env, name, "expected " + std::to_string(length) + " elements, got " + std::to_string(actualLength));
  }
  return static_cast<T*>(data);
}

/** The data of a typed array (any backing buffer, shared included) and its length in bytes. */
const void* typedArrayData(Napi::Env env, const Napi::Value& value, const char* field, size_t* bytes);

}  // namespace fastattn

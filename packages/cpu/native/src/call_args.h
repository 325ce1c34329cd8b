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

/**
 * The problem of a call: dtype, shape, scale, band, seqLensK and the q/k/v pointers. Typed
 * arrays on a SharedArrayBuffer are read like any other (through napi_get_typedarray_info).
 */
AttnParams readProblem(Napi::Env env, const Napi::Object& call);

/** The FlashAttention plan of a call: blocks, GQA stacking, split-KV, decode layout, tile tables. */
void readPlan(Napi::Env env, const Napi::Object& call, AttnParams& p);

/** The data of a typed array (any backing buffer, shared included) and its length in bytes. */
const void* typedArrayData(Napi::Env env, const Napi::Value& value, const char* field, size_t* bytes);

}  // namespace fastattn

// The Pool class exposed to JavaScript: one per backend. It runs planned calls (FlashAttention
// and standard attention) on its own threads and settles a promise per call.
#pragma once

#include <napi.h>

namespace fastattn {

/** The Pool constructor: new Pool(threads, isa). */
Napi::Function definePool(Napi::Env env);

}  // namespace fastattn

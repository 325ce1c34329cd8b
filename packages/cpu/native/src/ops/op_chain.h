// A list of model ops run one after another on the pool, each op's last item submitting the
// next, with no return to JavaScript between them: a recorded step's straight-line ops. The list
// is read from JavaScript once per run (runOps), or once for many runs (prepareOps).
#pragma once

#include <napi.h>

#include <vector>

#include "ops/op_job.h"
#include "thread_pool.h"

namespace fastattn {

/** The recipes of a list of [kind, args] (each op read and checked; a bad one throws, naming it). */
std::vector<OpRecipe> readOpRecipes(Napi::Env env, const Napi::Value& list, const KernelTable& kernel, int threads);

/**
 * Runs the recipes in order; `keep` (what their pointers point into) lives until the promise
 * settles. Resolves once the last op has written its outputs; rejects with the first failing op's
 * error, and the ops after it do not run.
 */
Napi::Value runOpChain(Napi::Env env, ThreadPool& pool, const std::vector<OpRecipe>& recipes, const Napi::Value& keep);

/** The recipes of `list` read once, as an external value that also keeps `list` alive. */
Napi::Value prepareOpChain(Napi::Env env, const Napi::Value& list, const KernelTable& kernel, int threads);

/** runOpChain over what prepareOpChain returned. */
Napi::Value runPreparedOpChain(Napi::Env env, ThreadPool& pool, const Napi::Value& prepared);

}  // namespace fastattn

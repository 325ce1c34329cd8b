// Attention as ops of a chain (ops/op_chain.cpp), so a recorded decode step runs from its first op
// to its last without returning to JavaScript. seqLensK and the block table are read when the op
// runs, not when the chain is prepared: a replayed step sees the values written before it.
#pragma once

#include <napi.h>

#include <vector>

#include "ops/op_job.h"

namespace fastattn {

/**
 * Appends the recipes of one attention op (args: the problem and plan of a pool `run` call, minus
 * the tile tables; `out` and `lse` arrays; the block table with its row stride): a one-item step
 * that checks and copies seqLensK and the block table and classifies the tiles, the work items,
 * and for split-KV the merge. A bad length or block id fails the op naming `attention.seqLensK` or
 * `attention.paged.blockTable`; nothing is read outside the cache. One chain run at a time (the
 * recipes share their tables), as a stream runs its ops.
 */
void appendAttentionRecipes(Napi::Env env, const Napi::Object& args, const KernelTable& kernel,
                            std::vector<OpRecipe>& recipes);

}  // namespace fastattn

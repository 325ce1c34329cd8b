// The turing path's kernels (sm_75): the kernel body (common/fwd_body.cuh) over synchronous copies
// (common/sync_mainloop.cuh) and the m16n8k8 tile (tile.cuh).
#pragma once
#include "../common/fwd_body.cuh"
#include "../common/kernel_names.h"
#include "../common/sync_mainloop.cuh"
#include "configs.h"
#include "tile.cuh"

namespace fa {
template <int HD, int BM, int BN, int WARPS, int STAGES, typename T, bool PAGED = false>
using TuringMainloop = SyncMainloop<TuringTile<HD, BM, BN, WARPS>, T, PAGED>;
}  // namespace fa

#define FA_TURING_DEFINE(...) FA_DEFINE_KERNELS(turing, fa::TuringMainloop, __VA_ARGS__)

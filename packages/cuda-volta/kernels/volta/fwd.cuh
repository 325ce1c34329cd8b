// The volta path's kernels (sm_70): the kernel body (common/fwd_body.cuh) over synchronous copies
// (common/sync_mainloop.cuh) and the m8n8k4 tile (tile.cuh).
#pragma once
#include "../common/fwd_body.cuh"
#include "../common/kernel_names.h"
#include "../common/sync_mainloop.cuh"
#include "configs.h"
#include "tile.cuh"

namespace fa {
template <int HD, int BM, int BN, int WARPS, int STAGES, typename T, bool PAGED = false>
using VoltaMainloop = SyncMainloop<VoltaTile<HD, BM, BN, WARPS>, T, PAGED>;
}  // namespace fa

#define FA_VOLTA_DEFINE(...) FA_DEFINE_KERNELS(volta, fa::VoltaMainloop, __VA_ARGS__)

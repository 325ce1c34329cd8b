// The compiled configurations of the hopper path (sm_90a only: wgmma does not exist before sm_90
// and its sm_90a code does not run on later generations). The hopper path is the ampere path with
// these prefill kernels in front: a (role, head dim) listed here replaces the ampere kernel of the
// same role and head dim (which stays compiled and can still be timed by name); everything else
// (decode, the other head dims) runs the ampere kernels.
//   X(role, HD, BM, BN, WARPS, STAGES)
// prefill: BM = 64 rows per warpgroup (WARPS / 4 warpgroups share each K/V tile), BN keys per
// k-tile, STAGES-deep cp.async ring of K/V tiles in the 128-byte swizzled layout (wgmma.cuh).
#pragma once

#define FA_HOPPER_CONFIGS(X) X(prefill, 128, 128, 128, 8, 2)

// Shared memory of a configuration: the Q tile and STAGES (K, V) tiles, unpadded (the swizzle
// keeps wgmma and the copies conflict-free), plus 1 KB to align the tiles to 1024 bytes.
#define FA_HOPPER_SMEM(HD, BM, BN, W, STAGES) (((BM) + 2 * (STAGES) * (BN)) * (HD) * 2 + 1024)

// The compiled configurations of the hopper path (sm_90a only: wgmma does not exist before sm_90
// and its sm_90a code does not run on later generations). The hopper path is the ampere path with
// these kernels in front: a (role, head dim) listed here replaces the ampere kernel of the same role
// and head dim (which stays compiled and can still be timed by name as <role>_alt); the rest (decode
// at hd 256) runs the ampere kernels.
//   X(role, HD, BM, BN, WARPS, STAGES)
// BM = 64 rows per consumer warpgroup, and a producer warpgroup (WARPS = BM / 16 + 4) whose copy
// engine fills STAGES-deep rings of K and V tiles of BN keys (mainloop.cuh). Head dims 80 and 96 are
// stored padded to 128. Three stages run the softmax of a tile while P V of the one before is in
// flight (OVERLAP); hd 256 has room for two.
// prefill: hd 64 runs one consumer warpgroup, two CTAs per SM: faster than two warpgroups up to
//   S = 4K and about even at 16K (BENCHMARKS.md, "One kernel body").
// prefill_short: planned where a row sees few keys (src/plan.ts, SHORT_ROW_KEYS). hd 64's 64 x 64
//   tiles in two stages run four CTAs per SM (mainloop.cuh, hopper_min_blocks): each CTA's first
//   copies and epilogue hide behind three others' k-tiles (BENCHMARKS.md, "Four CTAs per SM for
//   short hd 64 prefill").
// decode: one consumer warpgroup of 64 rows, of which a GQA decode fills the group size (4 of 64 for
//   32/8 heads): the products are cheap next to the K/V stream, and the copy engine keeps three
//   tiles in flight with one thread. On dense caches it is even with the ampere tiles at hd 128
//   and faster at hd 80/96; it reads paged caches of 64-row blocks as fast as dense ones
//   (BENCHMARKS.md, "Decode on the copy engine"). hd 256 stays on the ampere tile: the consumers'
//   fixed-column copies of its rows (8 rows x 32 chunks) need 256 threads, a warpgroup has 128.
#pragma once

#define FA_HOPPER_HD64(X)                                                                             \
  X(prefill, 64, 64, 128, 8, 3) X(prefill_short, 64, 64, 64, 8, 2) X(prefill_alt, 64, 128, 128, 12, 3) \
  X(prefill_alt, 64, 128, 64, 12, 2) X(decode, 64, 64, 128, 8, 3)
#define FA_HOPPER_HD80(X) X(prefill, 80, 128, 128, 12, 3) X(decode, 80, 64, 128, 8, 3)
#define FA_HOPPER_HD96(X) X(prefill, 96, 128, 128, 12, 3) X(decode, 96, 64, 128, 8, 3)
#define FA_HOPPER_HD128(X) X(prefill, 128, 128, 128, 12, 3) X(decode, 128, 64, 128, 8, 3) X(decode_alt, 128, 64, 64, 8, 4)
#define FA_HOPPER_HD256(X) X(prefill, 256, 128, 64, 12, 2)
#define FA_HOPPER_CONFIGS(X) FA_HOPPER_HD64(X) FA_HOPPER_HD80(X) FA_HOPPER_HD96(X) FA_HOPPER_HD128(X) FA_HOPPER_HD256(X)

// The stored head dim: a whole number of 64-element (128-byte) swizzle blocks.
#define FA_HOPPER_HD_PAD(HD) ((((HD) + 63) / 64) * 64)

// Shared memory of a configuration: the Q tile and STAGES (K, V) tiles of the stored head dim, rows
// unpadded (the swizzle keeps wgmma and the copies conflict-free), 1 KB to align the tiles to 1024
// bytes, and 256 bytes past them (the rings' mbarriers; a flag).
#define FA_HOPPER_SMEM(HD, BM, BN, W, STAGES) (((BM) + 2 * (STAGES) * (BN)) * FA_HOPPER_HD_PAD(HD) * 2 + 1024 + 256)
// Warps that only copy: the producer warpgroup, past the consumers' warpgroups of 64 rows.
#define FA_HOPPER_PRODUCER_WARPS(BM, W) ((W) - (BM) / 16)

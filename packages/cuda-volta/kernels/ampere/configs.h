// The compiled configurations of the ampere path: one line per (head dim, tile shape). The kernel
// .cu files instantiate them per head dim (one file each, so builds parallelize); the addon reads
// the same table to name kernels and size shared memory; the planner (src/spec.ts) chooses among
// them. Keep the list short: each line builds four kernels (two dtypes, dense and paged KV).
//   X(role, HD, BM, BN, WARPS, STAGES)
// role prefill: seqQ > 16, one q-tile of BM query rows of one head per CTA.
// role prefill: 4 warps x 32 rows (2 m16 tiles per warp, Q re-read from shared memory), 2 stages:
//   about 104 KB of shared memory at hd 128, so 2 CTAs share an SM (measured: 8 warps x 16 rows
//   with Q in registers reached only 0.58x FA2, shared-memory bound on K/V fragment loads).
// role decode: seqQ <= 16, the query heads of one KV head packed into the tile's rows (GQA); long
//   k-tiles and 3 stages keep 2 x 64 KB of K/V in flight per SM for a memory-bound loop. A tile of
//   16 rows on 4 warps (BM < 16 x WARPS) is KSPLIT: the warps split each k-tile's keys (run 6).
// The first configuration of a role and head dim is the default; more can be listed and timed with
// TimingOptions.config (measured 2026-11-24 on the H100, hd 128: prefill 128x64 with 8 warps x 16
// rows = same speed as 4 warps x 32 rows; decode 64x64 with 3 stages = 0.57-0.70x of 64x128).
#pragma once

#define FA_AMPERE_HD64(X) X(prefill, 64, 128, 64, 4, 2) X(decode, 64, 16, 64, 4, 3) X(decode_alt, 64, 64, 128, 4, 3) \
  X(decode_alt, 64, 16, 128, 4, 3)
#define FA_AMPERE_HD80(X) X(prefill, 80, 128, 64, 4, 2) X(decode, 80, 64, 128, 4, 3)
#define FA_AMPERE_HD96(X) X(prefill, 96, 128, 64, 4, 2) X(decode, 96, 64, 128, 4, 3)
// Lines with role prefill_alt / decode_alt are compiled for timing only (bench ALT_*,
// TimingOptions.config); the planner never picks them. Run 4 (2026-11-24, H100) timed these hd-128
// prefill alternatives against 128x64w4s2 in one call and dropped them: 128x32w4s2 0.95-1.02x,
// 128x64w8s2 (2 CTAs/SM, <= 128 registers) 0.85-1.03x, 64x64w4s2 0.79-0.98x, 64x32w4s2 (3 CTAs/SM)
// 0.77-1.00x. E.g. X(prefill_alt, 128, 128, 32, 4, 2).
// Run 6 (2026-11-24, H100, same call, fused combine in all): one-warp decode tiles of 16 rows (4x
// instead of 16x wasted mma rows on a 32/8-head decode, several CTAs per SM, more splits) lost:
// 16x64w1s3 (2 CTAs/SM, 33 splits at B=1) 0.69x at B=1 32K, 0.90x at 128K, ~1x at B=16/64;
// 16x32w1s4 (3 CTAs/SM, 49 splits) 0.64x / 0.85x, 0.91x at B=64 128K. One warp cannot both issue
// its cp.async stream and hide its own ldmatrix/mma latency. E.g. X(decode_alt, 128, 16, 64, 1, 3).
// Decode at hd 128 (run 6): KSPLIT, 16 rows, the 4 warps split each k-tile's keys (mainloop.cuh);
// run 5's 64x128 (4 warps x 16 rows, 4 of 64 rows used by a 32/8-head decode) and a 2-CTA/SM KSPLIT
// tile are kept for timing. Decode at hd 64 and 256 (2026-12-01, H200) is KSPLIT 16x64 too: against
// the one-warp-busy tiles before it, hd 64 0.95x (B1 32K) and 1.18x (B16 8K), hd 256 1.18x and 1.25x.
#define FA_AMPERE_HD128(X) X(prefill, 128, 128, 64, 4, 2) X(decode, 128, 16, 128, 4, 3) \
  X(decode_alt, 128, 64, 128, 4, 3) X(decode_alt, 128, 16, 64, 4, 3)
#define FA_AMPERE_HD256(X) X(prefill, 256, 64, 32, 4, 2) X(decode, 256, 16, 64, 4, 3) X(decode_alt, 256, 64, 32, 4, 3)

#define FA_AMPERE_CONFIGS(X) FA_AMPERE_HD64(X) FA_AMPERE_HD80(X) FA_AMPERE_HD96(X) FA_AMPERE_HD128(X) FA_AMPERE_HD256(X)

// Shared memory of a configuration: Q tile plus STAGES (K, V) tiles, rows padded by 8 elements.
#define FA_AMPERE_SMEM(HD, BM, BN, W, STAGES) (((BM) + 2 * (STAGES) * (BN)) * ((HD) + 8) * 2)

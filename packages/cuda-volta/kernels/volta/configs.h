// The compiled configurations of the volta path (sm_70, mma.sync.m8n8k4): one line per (head dim,
// tile shape). Sized for a V100 (80 SMs, 96 KiB shared memory per SM): every prefill configuration
// but hd256 leaves room for two CTAs per SM. The addon reads this table to name kernels and size
// shared memory, exactly as it reads FA_AMPERE_CONFIGS.
//   X(role, HD, BM, BN, WARPS, STAGES)   BM == 16 * WARPS: each warp owns 16 query rows; STAGES is 1
//   (synchronous copies: sm_70 has no cp.async).
// role prefill: seqQ > 16.  role decode: seqQ <= 16, GQA heads packed into the rows (pack_gqa),
// one warp per CTA; parallelism comes from split-KV (num_splits) and the combine kernel.
#pragma once

#define FA_VOLTA_HD64(X) X(prefill, 64, 64, 64, 4, 1) X(decode, 64, 16, 64, 1, 1)
#define FA_VOLTA_HD80(X) X(prefill, 80, 64, 64, 4, 1) X(decode, 80, 16, 64, 1, 1)
#define FA_VOLTA_HD96(X) X(prefill, 96, 64, 32, 4, 1) X(decode, 96, 16, 64, 1, 1)
#define FA_VOLTA_HD128(X) X(prefill, 128, 64, 32, 4, 1) X(decode, 128, 16, 64, 1, 1)
#define FA_VOLTA_HD256(X) X(prefill, 256, 64, 32, 4, 1) X(decode, 256, 16, 32, 1, 1)

#define FA_VOLTA_CONFIGS(X) FA_VOLTA_HD64(X) FA_VOLTA_HD80(X) FA_VOLTA_HD96(X) FA_VOLTA_HD128(X) FA_VOLTA_HD256(X)

// Shared memory (bytes) of a configuration; must match VoltaTile's layout (static_assert in tile.cuh).
//   Q: per warp 16 rows of HD+8 halves plus a 64-byte shift of rows 8..15;  K, V: BN rows of HD+8;
//   P: per warp 16 rows x 64 halves (XOR-swizzled 16-byte units).
// FA_VOLTA_PLAIN_LAYOUT (bank-conflict experiment only) drops the padding and the shift.
#if defined(FA_VOLTA_PLAIN_LAYOUT) && FA_VOLTA_PLAIN_LAYOUT
#define FA_VOLTA_SMEM(HD, BM, BN, W, S) (((W) * 16 * (HD) + 2 * (BN) * (HD) + (W) * 16 * 64) * 2)
#else
#define FA_VOLTA_SMEM(HD, BM, BN, W, S) (((W) * (16 * ((HD) + 8) + 32) + 2 * (BN) * ((HD) + 8) + (W) * 16 * 64) * 2)
#endif

// The compiled configurations of the turing path (sm_75, mma.sync.m16n8k8, ldmatrix, no cp.async).
// Sized for a T4 (40 SMs, 64 KiB shared memory per SM and per block): Q tile plus one K and one V
// tile, rows padded by 8 halves, must stay under 64 KiB.
//   X(role, HD, BM, BN, WARPS, STAGES)   BM == 16 * WARPS: each warp owns 16 query rows (one m16
//   tile); STAGES is 1 (synchronous copies: sm_75 has no cp.async).
#pragma once

#define FA_TURING_HD64(X) X(prefill, 64, 64, 64, 4, 1) X(decode, 64, 16, 64, 1, 1)
#define FA_TURING_HD80(X) X(prefill, 80, 64, 64, 4, 1) X(decode, 80, 16, 64, 1, 1)
#define FA_TURING_HD96(X) X(prefill, 96, 64, 64, 4, 1) X(decode, 96, 16, 64, 1, 1)
#define FA_TURING_HD128(X) X(prefill, 128, 64, 64, 4, 1) X(decode, 128, 16, 64, 1, 1)
#define FA_TURING_HD256(X) X(prefill, 256, 32, 32, 2, 1) X(decode, 256, 16, 32, 1, 1)

#define FA_TURING_CONFIGS(X) FA_TURING_HD64(X) FA_TURING_HD80(X) FA_TURING_HD96(X) FA_TURING_HD128(X) FA_TURING_HD256(X)

// Shared memory (bytes): Q tile plus one K and one V tile, rows of HD + 8 halves.
#define FA_TURING_SMEM(HD, BM, BN, W, S) (((BM) + 2 * (BN)) * ((HD) + 8) * 2)

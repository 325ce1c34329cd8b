// The compiled configurations of the ampere path: one line per (head dim, tile shape). The kernel
// .cu files instantiate them per head dim (one file each, so builds parallelize); the addon reads
// the same table to name kernels and size shared memory; the planner (src/spec.ts) chooses among
// them. Keep the list short: each line costs CI build time for two dtypes.
//   X(role, HD, BM, BN, WARPS, STAGES)
// role prefill: seqQ > 16, one q-tile of BM query rows of one head per CTA.
// role decode: seqQ <= 16, the query heads of one KV head packed into the tile's rows (GQA), more
//   stages to keep enough K/V bytes in flight for a memory-bound loop.
#pragma once

#define FA_AMPERE_HD64(X) X(prefill, 64, 128, 64, 4, 2) X(decode, 64, 64, 64, 4, 3)
#define FA_AMPERE_HD80(X) X(prefill, 80, 128, 64, 4, 2) X(decode, 80, 64, 64, 4, 3)
#define FA_AMPERE_HD96(X) X(prefill, 96, 128, 64, 4, 2) X(decode, 96, 64, 64, 4, 3)
#define FA_AMPERE_HD128(X) X(prefill, 128, 128, 64, 4, 2) X(decode, 128, 64, 64, 4, 3)
#define FA_AMPERE_HD256(X) X(prefill, 256, 64, 32, 4, 2) X(decode, 256, 64, 32, 4, 3)

#define FA_AMPERE_CONFIGS(X) FA_AMPERE_HD64(X) FA_AMPERE_HD80(X) FA_AMPERE_HD96(X) FA_AMPERE_HD128(X) FA_AMPERE_HD256(X)

// Shared memory of a configuration: Q tile plus STAGES (K, V) tiles, rows padded by 8 elements.
#define FA_AMPERE_SMEM(HD, BM, BN, STAGES) (((BM) + 2 * (STAGES) * (BN)) * ((HD) + 8) * 2)

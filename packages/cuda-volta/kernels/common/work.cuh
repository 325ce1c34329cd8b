// The CTA work split, shared by every path: which rows, heads, keys and split a CTA owns, and where
// its Q rows, K/V rows, outputs and partials live. Launch geometry (every path):
//   grid (ceil(rows_total / BM), pack_gqa ? heads_kv : heads_q, batch * num_splits).
// Rows are query rows, or with pack_gqa (decode) (query row, query head of the KV head) pairs.
#pragma once
#include <stdint.h>
#include "params.h"
#include "tile_mask.cuh"

namespace fa {

template <typename T, int HD>
struct CtaWork {
  int b, split, head, kvh;     // batch row, split, grid head (a KV head when pack_gqa), KV head
  int lk;                      // valid keys of this batch row
  int r0, r1;                  // the CTA's rows [r0, r1)
  int64_t dMin, dMax;          // aligned diagonals of the first and last query row
  int t0, t1;                  // k-tiles to run: non-empty ones (tiling-mask) of this split
  int fullStart, fullEnd;      // k-tiles that need no per-element mask (a contiguous run)
  int64_t seeLo, seeHi;        // keys some row of the CTA may see (nonfinite.cuh)
  const T* q;                  // batch row's Q
  const T* k;                  // K at this KV head: key j at k + j * k_row_stride (paged: key_row(j))
  const T* v;

  __device__ __forceinline__ CtaWork(const FaFwdParams& p, int BM, int BN) {
    // Last q-tile first: under a causal mask the last tiles have the most k-tiles, so starting them
    // first shortens the tail of the grid (as FlashAttention-2 does).
    const int tile = gridDim.x - 1 - blockIdx.x;
    head = blockIdx.y;
    // Divisions by launch parameters only where they are needed: every warp of every CTA runs this,
    // and a prefill CTA runs few k-tiles per division (unsigned: every operand is >= 0).
    const bool split1 = p.num_splits == 1;
    b = split1 ? blockIdx.z : blockIdx.z / (unsigned)p.num_splits;
    split = split1 ? 0 : blockIdx.z % (unsigned)p.num_splits;
    lk = p.seqlens_k ? p.seqlens_k[b] : p.seq_k;
    kvh = p.pack_gqa || p.group == 1 ? head : (unsigned)head / (unsigned)p.group;
    r0 = tile * BM;
    r1 = min(p.rows_total, r0 + BM);
    const int q0 = p.pack_gqa ? (unsigned)r0 / (unsigned)p.group : r0;
    const int q1 = p.pack_gqa ? (unsigned)(r1 - 1) / (unsigned)p.group + 1 : r1;
    dMin = (int64_t)q0 + lk - p.seq_q;
    dMax = (int64_t)q1 - 1 + lk - p.seq_q;
    int kStart, kEnd;
    fa_k_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &kStart, &kEnd);
    if (split1) {
      t0 = kStart;
      t1 = kEnd;
    } else {
      // The splits share the k-tiles these rows see, not the planned seq_k: a row shorter than the
      // cache it was planned for (a decode graph recorded for the next power of two) keeps every
      // split busy.
      const int seen = max(0, kEnd - kStart);
      t0 = kStart + (int)((int64_t)split * seen / p.num_splits);
      t1 = kStart + (int)((int64_t)(split + 1) * seen / p.num_splits);
    }
    fa_full_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &fullStart, &fullEnd);
    // A negative scale runs every tile through the masked body (max(scale * s) != scale * max(s)).
    if (!(p.scale_log2 >= 0.f)) fullEnd = fullStart;
    seeLo = dMin - p.band_left;
    seeHi = min((int64_t)lk, dMax + p.band_right + 1);
    q = static_cast<const T*>(p.q) + (int64_t)b * p.q_batch_stride;
    k = static_cast<const T*>(p.k) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;
    v = static_cast<const T*>(p.v) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;
  }

  // A paged cache's row (in k_row_stride units from k, v) that holds key j of this batch row. The
  // host passes k_batch_stride 0 for a paged cache, so k and v start at its row 0.
  __device__ __forceinline__ int64_t key_row(const FaFwdParams& p, int j) const {
    const int block = __ldg(p.block_table + (int64_t)b * p.blocks_per_seq + (j >> p.block_shift));
    return ((int64_t)block << p.block_shift) + (j & ((1 << p.block_shift) - 1));
  }

  __device__ __forceinline__ int tiles() const { return t1 - t0; }
  // The n-th k-tile to run: the last first (as FlashAttention does). A causal row's masked tiles
  // sit at the end of its key range, so they run while the rings fill and the loop ends on
  // unmasked tiles.
  __device__ __forceinline__ int tile(int n) const { return t1 - 1 - n; }
  // Tiling-mask: FULL tiles inside lk take the unmasked body; PARTIAL ones, a last tile that runs
  // past lk (its zero-filled keys must not count) and every tile under a negative scale test each
  // element against the band.
  __device__ __forceinline__ bool masked(int t) const { return t < fullStart || t >= fullEnd; }

  // Query row index and query head of a CTA row.
  __device__ __forceinline__ int query(const FaFwdParams& p, int row) const {
    return p.pack_gqa ? (unsigned)row / (unsigned)p.group : row;
  }
  __device__ __forceinline__ int query_head(const FaFwdParams& p, int row) const {
    return p.pack_gqa ? kvh * p.group + (unsigned)row % (unsigned)p.group : head;
  }
  // Q of a CTA row (row < r1), at head-dim element 0.
  __device__ __forceinline__ const T* q_row(const FaFwdParams& p, int row) const {
    return q + (int64_t)query(p, row) * p.q_row_stride + (int64_t)query_head(p, row) * HD;
  }
  // Runs f(rowPtr), rowPtr(row) being the Q of CTA row `row`. The pack_gqa test is made once here,
  // so the copy loop in f has no per-row branch or division in the common (unpacked) case (per-row
  // tests cost every warp hundreds of instructions per CTA).
  template <typename F>
  __device__ __forceinline__ void with_q_rows(const FaFwdParams& p, F&& f) const {
    if (p.pack_gqa) {
      f([&](int row) { return q_row(p, row); });
    } else {
      const T* base = q + (int64_t)head * HD;
      const int64_t stride = p.q_row_stride;
      f([=](int row) { return base + (int64_t)row * stride; });
    }
  }
  // Index of a row's LSE ([batch, heads_q, seq_q]); a split's partials sit `split * rows` further.
  __device__ __forceinline__ int64_t lse_index(const FaFwdParams& p, int row) const {
    return ((int64_t)b * p.heads_q + query_head(p, row)) * p.seq_q + query(p, row);
  }
  __device__ __forceinline__ T* out_row(const FaFwdParams& p, int row) const {
    return static_cast<T*>(p.out) + (int64_t)b * p.o_batch_stride + (int64_t)query(p, row) * p.o_row_stride +
           (int64_t)query_head(p, row) * HD;
  }
  __device__ __forceinline__ float* part_o_row(const FaFwdParams& p, int row) const {
    const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
    return p.part_o + ((int64_t)split * rows + lse_index(p, row)) * HD;
  }
  __device__ __forceinline__ float* part_lse_at(const FaFwdParams& p, int row) const {
    const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
    return p.part_lse + (int64_t)split * rows + lse_index(p, row);
  }
};

}  // namespace fa

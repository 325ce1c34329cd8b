// The ampere path's mainloop (sm_80+): K/V tiles stream through a STAGES-deep cp.async ring and
// both products run on mma.sync.m16n8k16 (mma_m16n8.cuh). The body (common/fwd_body.cuh) does
// everything else.
#pragma once
#include "../common/cp_async.cuh"
#include "../common/launch.cuh"
#include "../common/mma_m16n8.cuh"
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/work.cuh"
#include "configs.h"

namespace fa {

// PAGED: k and v are a paged cache (read through the block table); a separate instantiation, so
// that the dense kernels carry none of it.
template <int HD_, int BM_, int BN_, int WARPS_, int STAGES_, typename T, bool PAGED_ = false>
struct AmpereMainloop {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, STAGES = STAGES_;
  static constexpr bool PAGED = PAGED_;
  static constexpr int THREADS = WARPS * 32;
  // KSPLIT (decode): a tile of fewer rows than 16 per warp (BM = 16, 4 warps): every warp owns all
  // BM rows and a quarter of each k-tile's keys; the body merges the warps' results at the end.
  // Packed GQA decode uses 4 of 16 rows instead of 4 of 64.
  static constexpr bool KSPLIT = BM < 16 * WARPS;
  static constexpr bool PRODUCER_WARPGROUP = false;
  static constexpr bool STAGED_O = false;  // O stored from the fragments (store_rows)
  static constexpr bool OVERLAP = false;  // qk() and pv() return with their products done
  static constexpr bool PACK_IN_SOFTMAX = false;  // measured: the same speed as packing it after
  static constexpr int WARP_ROWS = KSPLIT ? BM : BM / WARPS;
  static constexpr int WBN = KSPLIT ? BN / WARPS : BN;  // keys of a k-tile per warp
  static constexpr int MT = WARP_ROWS / 16;
  static constexpr int NT_S = WBN / 8, NT_O = HD / 8;
  // Rows padded by 8 elements (16 bytes): the 8 row addresses of each ldmatrix phase hit 8 distinct
  // 16-byte bank groups for any HD that is a multiple of 16 (80 and 96 included).
  static constexpr int LD = HD + 8;
  static constexpr int CHUNKS = HD / 8;  // 16-byte chunks per row
  static constexpr int SMEM = FA_AMPERE_SMEM(HD, BM, BN, WARPS, STAGES);
  // One m-tile per warp and fewer than 8 warps: Q's fragments stay in registers for the whole loop.
  // Otherwise O and S need the registers and Q is re-read from shared memory every k-tile (as
  // FlashAttention-2 does); 8 warps x 16 rows (two CTAs per SM) need <= 128 registers.
  static constexpr bool Q_IN_REGS = MT == 1 && WARPS < 8;
  // Blocks per SM asked of ptxas: two with 8 warps, three for a small one-m-tile CTA.
  static constexpr int MIN_BLOCKS = WARPS >= 8 ? 2 : (MT == 1 && 3 * SMEM <= 227 * 1024) ? 3 : 0;
  static_assert(WARP_ROWS % 16 == 0 && HD % 16 == 0 && BN % 16 == 0 && WBN % 16 == 0, "tile shape");
  static_assert(!KSPLIT || (BM == 16 && (WARPS * BM * (HD + 4) + 2 * WARPS * BM) * 4 <= 2 * STAGES * BN * LD * 2),
                "KSPLIT: 16 rows, and the warps' partial O must fit in the K/V buffers");
  using Layout = M16n8Layout<MT, NT_S, NT_O>;
  using Op = MmaM16n8k16<T>;

  // K/V copies. Where the threads tile a k-tile evenly, each thread owns one fixed chunk column and
  // the rows ldRow + i * RPP: its global and shared addresses are a per-thread base plus
  // compile-time steps, and a tile inside seq_k needs no predicate (the generic loop cost about 30
  // instructions per 16-byte copy, a third of a warp's instructions per k-tile).
  static constexpr bool KV_FAST = THREADS % CHUNKS == 0 && BN % (THREADS / CHUNKS) == 0;
  static constexpr int RPP = KV_FAST ? THREADS / CHUNKS : 1;  // rows per pass

  const FaFwdParams& p;
  const CtaWork<T, HD>& w;
  T* sQ;
  T* sK;
  T* sV;
  int tid, lane, warp;
  const T* kThr;
  const T* vThr;
  int sOff;
  FragA qf[Q_IN_REGS ? MT : 1][HD / 16];

  static __device__ __forceinline__ int warp_row0() { return KSPLIT ? 0 : (int)(threadIdx.x / 32) * WARP_ROWS; }
  __device__ __forceinline__ int warp_key0() const { return KSPLIT ? warp * WBN : 0; }
  __device__ __forceinline__ bool warp_active() const { return w.r0 + warp_row0() < w.r1; }
  // Shared memory free once finish() returned: the K/V ring (KSPLIT's merge uses it).
  __device__ __forceinline__ float* scratch() const { return reinterpret_cast<float*>(sK); }

  // `rows` rows of HD elements from rowPtr(r); rows >= valid are zero-filled.
  template <typename RowPtr>
  __device__ __forceinline__ void load_rows(T* dst, int rows, int valid, RowPtr rowPtr) {
    for (int c = tid; c < rows * CHUNKS; c += THREADS) {
      const int r = c / CHUNKS, ch = c % CHUNKS;
      const bool ok = r < valid;
      cp_async16(dst + r * LD + ch * 8, (ok ? rowPtr(r) : w.k) + ch * 8, ok);
    }
  }

  __device__ __forceinline__ void load_kv(int t, int stage) {
    if constexpr (PAGED) {
      load_kv_paged(t, stage);
    } else {
      const int k0 = t * BN;
      T* dk = sK + stage * BN * LD;
      T* dv = sV + stage * BN * LD;
      if constexpr (KV_FAST) {
        const int64_t step = (int64_t)RPP * p.k_row_stride;
        const T* gk = kThr + (int64_t)k0 * p.k_row_stride;
        const T* gv = vThr + (int64_t)k0 * p.k_row_stride;
        if (k0 + BN <= p.seq_k) {
#pragma unroll
          for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dk + sOff + i * RPP * LD, gk + i * step);
#pragma unroll
          for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dv + sOff + i * RPP * LD, gv + i * step);
        } else {
          const int ldRow = tid / CHUNKS;
#pragma unroll
          for (int i = 0; i < BN / RPP; ++i) {
            const bool ok = k0 + ldRow + i * RPP < p.seq_k;
            cp_async16(dk + sOff + i * RPP * LD, ok ? gk + i * step : w.k, ok);
            cp_async16(dv + sOff + i * RPP * LD, ok ? gv + i * step : w.v, ok);
          }
        }
      } else {
        const int valid = p.seq_k - k0;
        load_rows(dk, BN, valid, [&](int r) { return w.k + (int64_t)(k0 + r) * p.k_row_stride; });
        load_rows(dv, BN, valid, [&](int r) { return w.v + (int64_t)(k0 + r) * p.k_row_stride; });
      }
    }
  }

  // A paged cache: no rows at or past lk (their table entries may be garbage); zero-filled instead.
  // A tile lies in one cache block when BN divides the block size: one table lookup then gives its
  // first row, and the rows follow it. Smaller blocks: each row through the table.
  __device__ __forceinline__ void load_kv_paged(int t, int stage) {
    const int k0 = t * BN, limit = w.lk;
    T* dk = sK + stage * BN * LD;
    T* dv = sV + stage * BN * LD;
    if ((BN >> p.block_shift) > 1) {
      if constexpr (KV_FAST) {
        load_rows_paged_fast(dk, dv, k0, limit);
      } else {
        load_rows_paged(dk, dv, k0, limit);
      }
      return;
    }
    const int64_t row0 = w.key_row(p, k0);
    if constexpr (KV_FAST) {
      const int64_t step = (int64_t)RPP * p.k_row_stride;
      const T* gk = kThr + row0 * p.k_row_stride;
      const T* gv = vThr + row0 * p.k_row_stride;
      const int ldRow = tid / CHUNKS;
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) {
        const bool ok = k0 + ldRow + i * RPP < limit;
        cp_async16(dk + sOff + i * RPP * LD, ok ? gk + i * step : w.k, ok);
        cp_async16(dv + sOff + i * RPP * LD, ok ? gv + i * step : w.v, ok);
      }
    } else {
      const int valid = limit - k0;
      load_rows(dk, BN, valid, [&](int r) { return w.k + (row0 + r) * p.k_row_stride; });
      load_rows(dv, BN, valid, [&](int r) { return w.v + (row0 + r) * p.k_row_stride; });
    }
  }

  // A paged tile spanning cache blocks, on the fixed-row layout. The cache rows of the thread's rows
  // of tile t are looked up while tile t - 1's copies are issued (then tile t - STAGES + 1 is
  // computed before they are needed), so the table reads' latency is off the copy path.
  static constexpr int PAGED_ROWS = PAGED && KV_FAST ? BN / RPP : 1;
  int nextRows[PAGED_ROWS];  // cache rows fit in 32 bits: 2^31 rows of one head would not fit in memory
  int nextTile = -1;

  __device__ __forceinline__ void lookup_rows(int t, int limit) {
    const int ldRow = tid / CHUNKS;
#pragma unroll
    for (int i = 0; i < PAGED_ROWS; ++i) {
      const int key = t * BN + ldRow + i * RPP;
      nextRows[i] = key < limit ? static_cast<int>(w.key_row(p, key)) : -1;
    }
    nextTile = t;
  }

  __device__ __forceinline__ void load_rows_paged_fast(T* dk, T* dv, int k0, int limit) {
    const int t = k0 / BN;
    if (nextTile != t) lookup_rows(t, limit);  // the first tile: looked up now
    const T* kCh = w.k + (tid % CHUNKS) * 8;
    const T* vCh = w.v + (tid % CHUNKS) * 8;
#pragma unroll
    for (int i = 0; i < PAGED_ROWS; ++i) {
      const bool ok = nextRows[i] >= 0;
      const int64_t at = ok ? (int64_t)nextRows[i] * p.k_row_stride : 0;
      cp_async16(dk + sOff + i * RPP * LD, kCh + at, ok);
      cp_async16(dv + sOff + i * RPP * LD, vCh + at, ok);
    }
    lookup_rows(t + 1, limit);
  }

  // A paged tile spanning cache blocks: each row through the table (kept out of the unrolled copies:
  // it is rare, and its registers would otherwise count against the main loop's).
  __device__ __forceinline__ void load_rows_paged(T* dk, T* dv, int k0, int limit) {
#pragma unroll 1
    for (int c = tid; c < BN * CHUNKS; c += THREADS) {
      const int r = c / CHUNKS, ch = c % CHUNKS;
      const bool ok = k0 + r < limit;
      const int64_t at = (ok ? w.key_row(p, k0 + r) * p.k_row_stride : 0) + ch * 8;
      cp_async16(dk + r * LD + ch * 8, w.k + at, ok);
      cp_async16(dv + r * LD + ch * 8, w.v + at, ok);
    }
  }

  // Zeroes the Inf/NaN of the V chunks this thread copied for tile t (once they landed); true if one
  // of them belongs to a key some row of the CTA sees (nonfinite.cuh).
  __device__ __forceinline__ bool sanitize_v(int t, int stage) {
    const int k0 = t * BN;
    bool seen = false;
    if constexpr (KV_FAST) {
      T* dv = sV + stage * BN * LD + sOff;
      const int ldRow = tid / CHUNKS;
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) {
        const int key = k0 + ldRow + i * RPP;
        if (zero_nonfinite_smem<T>(dv + i * RPP * LD) && key >= w.seeLo && key < w.seeHi) seen = true;
      }
    } else {
      for (int c = tid; c < BN * CHUNKS; c += THREADS) {
        const int r = c / CHUNKS, ch = c % CHUNKS;
        if (zero_nonfinite_smem<T>(sV + stage * BN * LD + r * LD + ch * 8) && k0 + r >= w.seeLo && k0 + r < w.seeHi)
          seen = true;
      }
    }
    return seen;
  }

  // Issues the Q tile and the first STAGES - 1 K/V tiles; Q's fragments are read once they landed.
  __device__ __forceinline__ AmpereMainloop(const FaFwdParams& p_, const CtaWork<T, HD>& w_, unsigned char* smem)
      : p(p_), w(w_) {
    sQ = reinterpret_cast<T*>(smem);
    sK = sQ + BM * LD;
    sV = sK + STAGES * BN * LD;
    tid = threadIdx.x;
    lane = tid % 32;
    warp = tid / 32;
    const int ldRow = tid / CHUNKS, ldCh = tid % CHUNKS;
    const int64_t kvOff = (int64_t)ldRow * p.k_row_stride + ldCh * 8;
    kThr = w.k + kvOff;
    vThr = w.v + kvOff;
    sOff = ldRow * LD + ldCh * 8;
    w.with_q_rows(p, [&](auto rowPtr) { load_rows(sQ, BM, w.r1 - w.r0, [&](int r) { return rowPtr(w.r0 + r); }); });
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < w.tiles()) load_kv(w.tile(s), s);
      cp_async_commit();  // empty groups keep the group count uniform
    }
    cp_async_wait<STAGES - 1>();
    __syncthreads();
    if constexpr (Q_IN_REGS) {
      const T* wQ = sQ + warp_row0() * LD;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) load_a(qf[mt][kk], wQ + mt * 16 * LD + kk * 16, LD, lane);
    }
  }

  // Tile n (k-tile t) is in shared memory, the copy of tile n + STAGES - 1 issued. A masked tile's V
  // is cleared of Inf/NaN first (a hidden key's 0 * NaN would reach O).
  __device__ __forceinline__ bool stage(int n, int t, bool masked) {
    cp_async_wait<STAGES - 2>();
    const bool seen = masked && sanitize_v(t, n % STAGES);
    __syncthreads();
    if (n + STAGES - 1 < w.tiles()) load_kv(w.tile(n + STAGES - 1), (n + STAGES - 1) % STAGES);
    cp_async_commit();
    return seen;
  }

  __device__ __forceinline__ void qk(float (&s)[Layout::NS], int n) {
    const T* tK = sK + (n % STAGES) * BN * LD + warp_key0() * LD;
    qk_m16n8<Op, T, MT, NT_S, HD, LD, Q_IN_REGS>(s, qf, sQ + warp_row0() * LD, tK, lane);
  }
  using P = PM16n8<MT, NT_S>;
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const { return pack_p_m16n8<T, MT, NT_S>(s); }
  __device__ __forceinline__ void pack_p_row(P& pf, const float (&s)[Layout::NS], int r) const {
    pack_p_row_m16n8<T, MT, NT_S>(pf, s, r);
  }
  __device__ __forceinline__ void pv(float (&o)[Layout::NO], const P& pf, int n) {
    const T* tV = sV + (n % STAGES) * BN * LD + warp_key0() * LD;
    pv_m16n8<Op, T, MT, NT_S, NT_O, LD>(o, pf, tV, lane);
  }

  // After the loop: nothing in flight into shared memory; true if some thread of the CTA cleared an
  // Inf/NaN at a key some row sees.
  __device__ __forceinline__ bool finish(bool seen) {
    cp_async_wait<0>();
    grid_launch_dependents();
    return __syncthreads_or(seen);
  }
};

}  // namespace fa

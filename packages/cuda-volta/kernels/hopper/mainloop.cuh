// The hopper path's mainloop (sm_90a): K/V tiles stream through a cp.async ring into the 128-byte
// swizzled layout (wgmma.cuh) and both products run on wgmma. Each warpgroup owns 64 query rows:
// S = Q K^T reads Q and K from shared memory (ss), O += P V takes P from the registers S was
// computed in (rs) and V from shared memory, transposed by the hardware. Head dims that are not a
// multiple of 64 (80, 96) are stored padded to one: Q K^T reads only the HD / 16 real k-steps, P V
// computes the padded columns (zeros) and the body drops them (O_OVERHANG).
#pragma once
#include "../common/cp_async.cuh"
#include "../common/launch.cuh"
#include "../common/mma_m16n8.cuh"
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/work.cuh"
#include "configs.h"
#include "wgmma.cuh"

namespace fa {
namespace hopper {

// Rows per pass of HopperMainloop's copies: the largest power of two (at least 8) that divides
// both tiles' rows and that `threads` threads cover at `chunks` 16-byte chunks per row.
constexpr int copy_rows_per_pass(int threads, int chunks, int bm, int bn) {
  int r = 8;
  while (2 * r * chunks <= threads && bn % (2 * r) == 0 && bm % (2 * r) == 0) r *= 2;
  return r;
}

// PAGED: k and v are a paged cache (read through the block table); a separate instantiation, so
// that the dense kernels carry none of it.
template <int HD_, int BM_, int BN_, int WARPS_, int STAGES_, typename T, bool PAGED_ = false>
struct HopperMainloop {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, STAGES = STAGES_;
  static constexpr bool PAGED = PAGED_;
  static constexpr int THREADS = WARPS * 32;
  static constexpr bool KSPLIT = false;
  // The body overlaps tile n's softmax with P V of tile n - 1 (fwd_body.cuh, overlapped_loop). That
  // needs a third stage: tile n + 1 lands while tile n - 1's V is still read.
  static constexpr bool OVERLAP = STAGES >= 3;
  static constexpr bool PACK_IN_SOFTMAX = !OVERLAP;
  static constexpr int MIN_BLOCKS = 1;
  static constexpr int HDP = FA_HOPPER_HD_PAD(HD);             // stored head dim
  static constexpr int CHUNKS = HD / 8, CHUNKS_P = HDP / 8;    // 16-byte chunks per row
  static constexpr int Q_BYTES = BM * HDP * 2, KV_BYTES = BN * HDP * 2;
  static constexpr int SMEM = FA_HOPPER_SMEM(HD, BM, BN, WARPS, STAGES);
  // Copies: each of the first COPY_THREADS threads owns 16-byte column ldCh of rows ldRow + i * RPP
  // of every tile. RPP is a multiple of 8, so the swizzled position of the thread's chunk is the same
  // in every row it copies; it is the largest power of two that divides both tiles' rows.
  static constexpr int RPP = copy_rows_per_pass(THREADS, CHUNKS_P, BM, BN), COPY_THREADS = RPP * CHUNKS_P;
  static_assert(BM == 16 * WARPS && WARPS % 4 == 0, "one warpgroup (4 warps) per 64 query rows");
  static_assert(HD % 16 == 0 && BN % 64 == 0, "SW128 tiles are whole 64-element column blocks");
  static_assert(COPY_THREADS <= THREADS && BN % RPP == 0 && BM % RPP == 0,
                "each copying thread copies one fixed 16-byte column of every tile");
  using Layout = M16n8Layout<1, BN / 8, HDP / 8, (HDP != HD)>;

  const FaFwdParams& p;
  const CtaWork<T, HD>& w;
  unsigned char* sK;
  unsigned char* sV;
  uint32_t aK, aV;      // shared addresses of the K and V rings
  uint64_t qDesc;       // descriptor of this warpgroup's 64 rows of the Q tile
  volatile int* sSeen;  // some thread cleared an Inf/NaN at a key some row of the CTA sees
  int tid;
  bool copier;          // this thread copies, and its column is a real one (ldCh < CHUNKS)
  const T* kThr;
  const T* vThr;
  uint32_t kvSlot;

  static __device__ __forceinline__ int warp_row0() { return (int)(threadIdx.x / 32) * 16; }
  __device__ __forceinline__ int warp_key0() const { return 0; }
  __device__ __forceinline__ bool warp_active() const { return true; }  // wgmma: every warp of the warpgroup

  __device__ __forceinline__ void load_kv(int t, int stage) {
    if constexpr (PAGED) {
      load_kv_paged(t, stage);
    } else {
      if (!copier) return;
      const int k0 = t * BN;
      const int64_t step = (int64_t)RPP * p.k_row_stride;
      const T* gk = kThr + (int64_t)k0 * p.k_row_stride;
      const T* gv = vThr + (int64_t)k0 * p.k_row_stride;
      unsigned char* dk = sK + stage * KV_BYTES + kvSlot;
      unsigned char* dv = sV + stage * KV_BYTES + kvSlot;
      if (k0 + BN <= p.seq_k) {
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dk + i * RPP * 128, gk + i * step);
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dv + i * RPP * 128, gv + i * step);
      } else {  // rows past seq_k are zero-filled (masked; zeros keep 0 * garbage out of O)
        const int ldRow = tid / CHUNKS_P;
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) {
          const bool ok = k0 + ldRow + i * RPP < p.seq_k;
          cp_async16(dk + i * RPP * 128, ok ? gk + i * step : kThr, ok);
          cp_async16(dv + i * RPP * 128, ok ? gv + i * step : vThr, ok);
        }
      }
    }
  }

  // A paged cache: no rows at or past lk (their table entries may be garbage); zero-filled instead.
  // A tile lies in one cache block when BN divides the block size: one table lookup then gives its
  // first row, and the rows follow it. Smaller blocks: row by row.
  __device__ __forceinline__ void load_kv_paged(int t, int stage) {
    if (!copier) return;
    const int k0 = t * BN, limit = w.lk, ldRow = tid / CHUNKS_P;
    unsigned char* dk = sK + stage * KV_BYTES + kvSlot;
    unsigned char* dv = sV + stage * KV_BYTES + kvSlot;
    const T* kCol = kThr - (int64_t)ldRow * p.k_row_stride;  // this thread's column, row 0
    const T* vCol = vThr - (int64_t)ldRow * p.k_row_stride;
    if ((BN >> p.block_shift) > 1) {
#pragma unroll 1
      for (int i = 0; i < BN / RPP; ++i) {
        const int j = k0 + ldRow + i * RPP;
        const bool ok = j < limit;
        const int64_t at = ok ? w.key_row(p, j) * p.k_row_stride : 0;
        cp_async16(dk + i * RPP * 128, kCol + at, ok);
        cp_async16(dv + i * RPP * 128, vCol + at, ok);
      }
      return;
    }
    const int64_t row0 = w.key_row(p, k0) + ldRow;
#pragma unroll
    for (int i = 0; i < BN / RPP; ++i) {
      const bool ok = k0 + ldRow + i * RPP < limit;
      const int64_t at = (row0 + i * RPP) * p.k_row_stride;
      cp_async16(dk + i * RPP * 128, ok ? kCol + at : kCol, ok);
      cp_async16(dv + i * RPP * 128, ok ? vCol + at : vCol, ok);
    }
  }

  // Zeroes the Inf/NaN of the V chunks this thread copied for tile t (once they landed); true if one
  // of them belongs to a key some row of the CTA sees. A cheap test of the chunks first; the
  // clearing only when it found one.
  __device__ __forceinline__ bool sanitize_v(int t, int stage) {
    if (!copier) return false;
    unsigned char* dv = sV + stage * KV_BYTES + kvSlot;
    uint4 v[BN / RPP];
    uint32_t any = 0u;
#pragma unroll
    for (int i = 0; i < BN / RPP; ++i) {
      v[i] = *reinterpret_cast<const uint4*>(dv + i * RPP * 128);
      any |= nonfinite_any8<T>(v[i]);
    }
    if (any == 0u) return false;
    const int k0 = t * BN + tid / CHUNKS_P;
    bool seen = false;
#pragma unroll
    for (int i = 0; i < BN / RPP; ++i) {
      if (!zero_nonfinite8<T>(v[i])) continue;
      *reinterpret_cast<uint4*>(dv + i * RPP * 128) = v[i];
      const int key = k0 + i * RPP;
      if (key >= w.seeLo && key < w.seeHi) seen = true;
    }
    return seen;
  }

  __device__ __forceinline__ HopperMainloop(const FaFwdParams& p_, const CtaWork<T, HD>& w_, unsigned char* smem)
      : p(p_), w(w_) {
    // SW128 tiles must start on 1024 bytes; the dynamic window's alignment is not promised.
    const uint32_t raw = smem_addr(smem);
    const uint32_t aQ = (raw + 1023u) & ~1023u;
    qDesc = sw128_desc(aQ + (threadIdx.x / 128) * 64 * 128, 0, 1024);
    unsigned char* sQ = smem + (aQ - raw);
    aK = aQ + Q_BYTES;
    aV = aK + STAGES * KV_BYTES;
    sK = sQ + Q_BYTES;
    sV = sK + STAGES * KV_BYTES;
    // The flag lies past the V ring, in the slack of the 1024-byte alignment (at least 16 bytes: the
    // dynamic window is 16-byte aligned).
    sSeen = reinterpret_cast<volatile int*>(sV + STAGES * KV_BYTES);
    tid = threadIdx.x;
    const int ldRow = tid / CHUNKS_P, ldCh = tid % CHUNKS_P;
    const bool copies = COPY_THREADS == THREADS || tid < COPY_THREADS;
    copier = copies && (CHUNKS == CHUNKS_P || ldCh < CHUNKS);
    kvSlot = sw128_offset<BN>(ldRow, ldCh);
    const int64_t kvOff = (int64_t)ldRow * p.k_row_stride + ldCh * 8;
    kThr = w.k + kvOff;
    vThr = w.v + kvOff;
    if (tid == 0) *sSeen = 0;  // before the loop's first barrier
    if constexpr (HDP != HD) {
      // The padded columns of V are read by P V: zeros, written once (the copies never touch them).
      if (copies && !copier)
        for (int s = 0; s < STAGES; ++s)
#pragma unroll
          for (int i = 0; i < BN / RPP; ++i)
            *reinterpret_cast<uint4*>(sV + s * KV_BYTES + kvSlot + i * RPP * 128) = make_uint4(0u, 0u, 0u, 0u);
    }
    if (copier) {
      w.with_q_rows(p, [&](auto rowPtr) {
#pragma unroll
        for (int i = 0; i < BM / RPP; ++i) {
          const int r = ldRow + i * RPP;
          const bool ok = w.r0 + r < w.r1;
          cp_async16(sQ + sw128_offset<BM>(r, ldCh), (ok ? rowPtr(w.r0 + r) : w.q) + ldCh * 8, ok);
        }
      });
    }
    if (w.tiles() > 0) load_kv(w.t0, 0);
    cp_async_commit();
  }

  // Tile n (k-tile t) is in shared memory and the copy of tile n + 1 issued. A masked tile clears
  // its V after the barrier and the next tile's copies, then takes a second barrier of its own, so
  // FULL tiles run with one barrier. The flag lives in shared memory: nothing of the Inf/NaN
  // handling stays in registers across the loop. The copies write stage (n + 1) % STAGES: after the
  // barrier no warpgroup reads it (with OVERLAP, P V of tile n - 2 finished in the last iteration).
  __device__ __forceinline__ bool stage(int n, int t, bool masked) {
    cp_async_wait<0>();
    fence_proxy_async();  // this thread's copies, visible to wgmma after the barrier
    __syncthreads();      // every copy of tile n landed; every warpgroup is done with the stage
    if (n + 1 < w.tiles()) load_kv(t + 1, (n + 1) % STAGES);
    cp_async_commit();
    if (masked) {
      // Stage n % STAGES is not the one the copies just issued write, nor the one P V of tile
      // n - 1 reads.
      if (sanitize_v(t, n % STAGES)) *sSeen = 1;
      fence_proxy_async();  // the clears, visible to wgmma after the barrier
      __syncthreads();
    }
    return false;
  }

  // S = Q K^T over HD / 16 k16 steps; within a 64-element column block a step advances the
  // descriptors by 32 bytes (the hardware applies the swizzle to the final address). A descriptor's
  // low field is the address / 16 and no tile crosses 256 KB, so an offset is added to a base
  // descriptor as offset / 16: one add per step, and Q's base is computed once (left to the
  // compiler, the per-step descriptor arithmetic cost about 7% more instructions per k-tile).
  __device__ __forceinline__ void qk(float (&s)[Layout::NS], int n) {
    const uint64_t kDesc = sw128_desc(aK + (n % STAGES) * KV_BYTES, 0, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      const uint32_t off = (kk % 4) * 32;
      const uint64_t da = qDesc + (((kk / 4) * (BM * 128) + off) >> 4);
      const uint64_t db = kDesc + (((kk / 4) * (BN * 128) + off) >> 4);
      Wgmma<T, BN>::template ss<0>(s, da, db, kk > 0);
    }
    wgmma_commit();
    if constexpr (!OVERLAP) qk_wait<0>(s);
  }
  // S is done once at most PENDING later groups of products are still in flight.
  template <int PENDING>
  __device__ __forceinline__ void qk_wait(float (&s)[Layout::NS]) {
    wgmma_wait<PENDING>();
    fence_regs(s);
  }

  // O += P V: V's k16 step kk is rows 16 kk.. of the tile; the head dim spans HDP / 64 column blocks
  // BN * 128 bytes apart (the descriptor's leading-dimension offset).
  using P = PM16n8<1, BN / 8>;
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const { return pack_p_m16n8<T, 1, BN / 8>(s); }
  __device__ __forceinline__ void pack_p_row(P& pf, const float (&s)[Layout::NS], int r) const {
    pack_p_row_m16n8<T, 1, BN / 8>(pf, s, r);
  }
  __device__ __forceinline__ void pv(float (&o)[Layout::NO], P& pf, int n) {
    const uint64_t vDesc = sw128_desc(aV + (n % STAGES) * KV_BYTES, BN * 128, 1024);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint64_t db = vDesc + ((kk * 16 * 128) >> 4);
      Wgmma<T, HDP>::template rs<1>(o, pf.x[0][kk].x, db);
    }
    wgmma_commit();
    if constexpr (!OVERLAP) pv_wait(o, pf);
  }
  __device__ __forceinline__ void pv_wait(float (&o)[Layout::NO], P& pf) {
    wgmma_wait<0>();
    fence_regs(o);
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) fence_regs(pf.x[0][kk].x);  // live until the wgmma read them
  }

  __device__ __forceinline__ bool finish(bool) {
    cp_async_wait<0>();  // nothing may be in flight into shared memory when the CTA exits
    grid_launch_dependents();
    __syncthreads();
    return *sSeen != 0;
  }
};

}  // namespace hopper
}  // namespace fa

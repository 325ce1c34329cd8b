// The hopper path's mainloop (sm_90a), warp-specialized: a producer warpgroup, one warp of which
// copies the Q tile and streams K and V tiles with the copy engine (tma.cuh) into two rings of
// mbarrier-guarded slots in the 128-byte swizzled layout (wgmma.cuh), and consumer warpgroups that
// run both products on wgmma. The producer gives its registers to the consumers (setmaxnreg): 24
// (32 for a paged cache) against up to 240 per thread; its three other warps leave at once.
//
// Each consumer warpgroup owns 64 query rows: S = Q K^T reads Q and K from shared memory (ss),
// O += P V takes P from the registers S was computed in (rs) and V from shared memory, transposed by
// the hardware. Head dims that are not a multiple of 64 (80, 96) are stored padded to one: Q K^T
// reads only the HD / 16 real k-steps, P V computes the padded columns (zeros: the copy engine's
// bounds) and the body drops them (O_OVERHANG). No CTA-wide barrier runs per k-tile: a consumer
// waits only for the slot it reads next and frees a slot as soon as its product is done (K after
// S = Q K^T, V after O += P V), so the warpgroups drift apart and one's softmax runs while the
// other's products occupy the tensor cores.
//
// K and V have rings of their own, STAGES slots each: the producer refills a K slot while the
// consumers still multiply by the V of the same tile. Masked tiles have their V's Inf/NaN cleared
// by the consumers (nonfinite.cuh), who then meet at a named barrier: FULL tiles never do.
//
// WARPS = BM / 16 + 4 in the configuration table (FA_HOPPER_PRODUCER_WARPS).
#pragma once
#include "../common/cp_async.cuh"
#include "../common/launch.cuh"
#include "../common/mma_m16n8.cuh"
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/work.cuh"
#include "configs.h"
#include "tma.cuh"
#include "wgmma.cuh"

namespace fa {
namespace hopper {

// Rows per pass of the consumers' share of the Q copy and of V's Inf/NaN clearing: the largest power
// of two (at least 8) that divides both tiles' rows and that `threads` threads cover at `chunks`
// 16-byte chunks per row.
constexpr int copy_rows_per_pass(int threads, int chunks, int bm, int bn) {
  int r = 8;
  while (2 * r * chunks <= threads && bn % (2 * r) == 0 && bm % (2 * r) == 0) r *= 2;
  return r;
}

// Zeroes the Inf/NaN of N 16-byte chunks of a landed V tile, `step` bytes apart from `chunk`, the
// i-th holding key key0 + i * keyStep; true if one of them belongs to a key in [seeLo, seeHi) (a key
// some row of the CTA sees). A cheap test of the chunks first; the clearing only when it found one.
template <typename T, int N>
__device__ __forceinline__ bool sanitize_v_chunks(unsigned char* chunk, int step, int key0, int keyStep, int64_t seeLo,
                                                  int64_t seeHi) {
  uint4 v[N];
  uint32_t any = 0u;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    v[i] = *reinterpret_cast<const uint4*>(chunk + i * step);
    any |= nonfinite_any8<T>(v[i]);
  }
  if (any == 0u) return false;
  bool seen = false;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    if (!zero_nonfinite8<T>(v[i])) continue;
    *reinterpret_cast<uint4*>(chunk + i * step) = v[i];
    const int key = key0 + i * keyStep;
    if (key >= seeLo && key < seeHi) seen = true;
  }
  return seen;
}

// CTAs per SM a configuration is compiled for (__launch_bounds__): one consumer warpgroup never runs
// fewer than two (setmaxnreg gives 128 consumers at most 240 registers each); more while shared
// memory holds them, the SM runs at most four consumer warpgroups, and the launch's register cap
// still holds the `held` registers per thread that wgmma keeps in flight at once (S, O and, with
// OVERLAP, P of the tile before): ptxas checks those against the kernel-wide cap, not setmaxnreg's.
constexpr int hopper_min_blocks(int cwarps, int warps, int smem, int held) {
  int blocks = cwarps == 4 ? 2 : 1;
  for (int b = blocks + 1; b * cwarps <= 16 && b * (smem + 1024) <= 228 * 1024; ++b)
    if (65536 / (b * warps * 32) / 8 * 8 >= held) blocks = b;
  return blocks;
}

template <int HD_, int BM_, int BN_, int WARPS_, int STAGES_, typename T, bool PAGED_ = false>
struct HopperMainloop {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, STAGES = STAGES_;
  static constexpr bool PAGED = PAGED_;
  static constexpr int CWARPS = BM / 16, CTHREADS = CWARPS * 32;  // the consumers; then the producer warpgroup
  static constexpr int THREADS = CTHREADS;                         // the threads past the k-tile loop
  static constexpr bool KSPLIT = false, PRODUCER_WARPGROUP = true;
  // Three-slot rings run tile n's softmax while P V of tile n - 1 is in flight (fwd_body.cuh,
  // overlapped_loop); with two, P is packed row by row inside the softmax.
  static constexpr bool OVERLAP = STAGES >= 3;
  static constexpr bool PACK_IN_SOFTMAX = !OVERLAP;
  // As many CTAs per SM as shared memory (228 KB, 1 KB of it reserved per CTA) and registers allow,
  // up to four consumer warpgroups per SM: one CTA's prologue and epilogue then overlap the others'
  // k-tiles, and each scheduler has more warps to issue from (hopper_min_blocks).
  static constexpr int SMEM = FA_HOPPER_SMEM(HD, BM, BN, WARPS, STAGES);
  static constexpr int HELD_REGS = BN / 2 + FA_HOPPER_HD_PAD(HD) / 2 + (OVERLAP ? BN / 4 : 0);  // S, O, P
  static constexpr int MIN_BLOCKS = hopper_min_blocks(CWARPS, WARPS, SMEM, HELD_REGS);
  // Registers per thread: ptxas caps every thread at ENTRY_REGS (__launch_bounds__); the producer
  // warpgroup then gives all but PRODUCER_REGS up and the consumers take them (setmaxnreg, multiples
  // of 8).
  static constexpr int ENTRY_REGS = 65536 / (MIN_BLOCKS * WARPS * 32) / 8 * 8;
  static constexpr int PRODUCER_REGS = PAGED ? 32 : 24;  // paged: the block table lookups
  static constexpr int CONSUMER_REGS_FIT = (ENTRY_REGS * CTHREADS + (ENTRY_REGS - PRODUCER_REGS) * 128) / CTHREADS / 8 * 8;
  static constexpr int CONSUMER_REGS = CONSUMER_REGS_FIT < 240 ? CONSUMER_REGS_FIT : 240;
  static constexpr int HDP = FA_HOPPER_HD_PAD(HD), CHUNKS = HD / 8, CHUNKS_P = HDP / 8;
  static constexpr int BOXES = HDP / 64;  // 64-element column blocks of a stored row: one copy each
  static constexpr int Q_BYTES = BM * HDP * 2, KV_BYTES = BN * HDP * 2;
  // The consumers' share of the Q copy and of V's Inf/NaN clearing.
  static constexpr int RPP = copy_rows_per_pass(CTHREADS, CHUNKS_P, BM, BN), COPY_THREADS = RPP * CHUNKS_P;
  static_assert(WARPS == CWARPS + 4 && CWARPS % 4 == 0, "warpgroups of 64 query rows, then a producer warpgroup");
  static_assert(PRODUCER_REGS * 128 + CONSUMER_REGS * CTHREADS <= ENTRY_REGS * WARPS * 32, "the CTA's registers");
  static_assert(ENTRY_REGS <= 248 && CONSUMER_REGS >= ENTRY_REGS, "setmaxnreg only raises the consumers' count");
  static_assert(4 * STAGES * 8 + 8 + 4 <= 256, "the mbarriers and the flag fit past the tiles (FA_HOPPER_SMEM)");
  static_assert(HD % 16 == 0 && BN % 64 == 0 && BN <= 256, "SW128 tiles of whole column blocks; one copy box of rows");
  static_assert(COPY_THREADS <= CTHREADS && BN % RPP == 0 && BM % RPP == 0, "fixed 16-byte column per thread");
  using Layout = M16n8Layout<1, BN / 8, HDP / 8, (HDP != HD)>;

  const FaFwdParams& p;
  const CtaWork<T, HD>& w;
  unsigned char* sV;
  uint32_t aK, aV;      // shared addresses of the K and V rings
  uint32_t aBar;        // mbarriers: full K, full V, empty K, empty V (STAGES each), then Q's
  uint64_t qDesc;       // descriptor of this warpgroup's 64 rows of the Q tile
  volatile int* sSeen;  // some consumer cleared an Inf/NaN at a key some row of the CTA sees
  int kStage, vStage;   // the slots of the products in flight, freed by their waits

  enum Ring { FULL_K = 0, FULL_V = 1, EMPTY_K = 2, EMPTY_V = 3 };
  __device__ __forceinline__ uint32_t bar(Ring r, int stage) const { return aBar + (r * STAGES + stage) * 8; }

  static __device__ __forceinline__ int warp_row0() { return (int)(threadIdx.x / 32) * 16; }
  __device__ __forceinline__ int warp_key0() const { return 0; }
  __device__ __forceinline__ bool warp_active() const { return true; }  // asked by consumers only
  static __device__ __forceinline__ void consume_registers() { setmaxnreg_inc<CONSUMER_REGS>(); }
  static __device__ __forceinline__ bool is_producer() { return threadIdx.x >= CTHREADS; }

  // The producer warpgroup's whole kernel: it gives its registers up first, so that the three warps
  // that never copy leave before any work is set up; the first one sets up its own view of the
  // CTA's work (compiled apart from the consumers', under the producer's register count) and runs
  // every copy.
  static __device__ __forceinline__ void run_producer(const FaFwdParams& p, unsigned char* smem) {
    setmaxnreg_dec<PRODUCER_REGS>();
    if (threadIdx.x >= CTHREADS + 32) return;
    const CtaWork<T, HD> w(p, BM, BN);
    HopperMainloop ml(p, w, smem);
    ml.produce();
  }

  // Q comes by the copy engine too (issued after the first K tile, counted on its own mbarrier)
  // unless a tile's rows are packed GQA pairs (decode), which are no box of the tensor: the
  // consumers copy those themselves.
  __device__ __forceinline__ bool q_by_copy_engine() const { return !p.pack_gqa; }
  __device__ __forceinline__ uint32_t q_bar() const { return aBar + 4 * STAGES * 8; }

  // Shared by both roles: the tiles' addresses. The producer's first warp then sets up the
  // mbarriers and the consumers stage Q (or wait for the producer's copy of it).
  __device__ __forceinline__ HopperMainloop(const FaFwdParams& p_, const CtaWork<T, HD>& w_, unsigned char* smem)
      : p(p_), w(w_), kStage(0), vStage(0) {
    const uint32_t raw = smem_addr(smem);
    const uint32_t aQ = (raw + 1023u) & ~1023u;  // SW128 tiles start on 1024 bytes
    unsigned char* sQ = smem + (aQ - raw);
    aK = aQ + Q_BYTES;
    aV = aK + STAGES * KV_BYTES;
    aBar = aV + STAGES * KV_BYTES;
    sV = sQ + Q_BYTES + STAGES * KV_BYTES;
    sSeen = reinterpret_cast<volatile int*>(sV + STAGES * KV_BYTES + 4 * STAGES * 8 + 8);
    qDesc = sw128_desc(aQ + (threadIdx.x / 128) * 64 * 128, 0, 1024);
    const int tid = threadIdx.x;
    if (tid == CTHREADS) {
      for (int s = 0; s < STAGES; ++s) {
        mbar_init(bar(FULL_K, s), 1);
        mbar_init(bar(FULL_V, s), 1);
        mbar_init(bar(EMPTY_K, s), CWARPS);
        mbar_init(bar(EMPTY_V, s), CWARPS);
      }
      mbar_init(q_bar(), 1);
      *sSeen = 0;
      mbar_init_fence();
      if (q_by_copy_engine()) tma_prefetch_map(&p.tma_q);
      tma_prefetch_map(&p.tma_k);
      tma_prefetch_map(&p.tma_v);
    }
    // The barriers exist; from here on the producer runs ahead. Its other three warps left at the
    // start (run_producer).
    named_barrier_sync(2, CTHREADS + 32);
    if (is_producer()) return;
    if (q_by_copy_engine()) {
      mbar_wait(q_bar(), 0);
      return;
    }
    if (tid < COPY_THREADS) {
      const int ldRow = tid / CHUNKS_P, ldCh = tid % CHUNKS_P;
      if (ldCh < CHUNKS) {
        w.with_q_rows(p, [&](auto rowPtr) {
#pragma unroll
          for (int i = 0; i < BM / RPP; ++i) {
            const int r = ldRow + i * RPP;
            const bool ok = w.r0 + r < w.r1;
            cp_async16(sQ + sw128_offset<BM>(r, ldCh), (ok ? rowPtr(w.r0 + r) : w.q) + ldCh * 8, ok);
          }
        });
      }
      cp_async_commit();
      cp_async_wait<0>();
      fence_proxy_async();  // Q, visible to wgmma after the consumers' barrier
    }
    named_barrier_sync(1, CTHREADS);
  }

  // ---- the producer warpgroup ----

  // Every k-tile of the CTA, K then V, each into its ring once the consumers freed the slot, and Q
  // right after the first K tile: the first product needs both, and Q first delayed K behind a
  // copy as large as it (the warpgroup's first warp; run_producer). A CTA with no k-tile still
  // gets its Q: its consumers wait for it before they write the empty rows.
  __device__ __forceinline__ void produce() {
    if (w.tiles() == 0) load_q();
    int row = box_row(w.tile(0));  // paged: this lane's cache row for the next tile, looked up ahead
    for (int n = 0; n < w.tiles(); ++n) {
      const int t = w.tile(n), s = n % STAGES;
      const uint32_t phase = (n / STAGES + 1) & 1;  // the previous use's phase of the slot
      if (n >= STAGES) mbar_wait(bar(EMPTY_K, s), phase);
      load(&p.tma_k, w.k, aK + s * KV_BYTES, bar(FULL_K, s), t, row);
      if (n == 0) load_q();
      if (n >= STAGES) mbar_wait(bar(EMPTY_V, s), phase);
      load(&p.tma_v, w.v, aV + s * KV_BYTES, bar(FULL_V, s), t, row);
      if (n + 1 < w.tiles()) row = box_row(w.tile(n + 1));  // while this tile's copies run
    }
  }

  __device__ __forceinline__ void load_q() {
    if (!q_by_copy_engine() || threadIdx.x % 32 != 0) return;
    const uint32_t aQ = aK - Q_BYTES;
    mbar_arrive_expect_tx(q_bar(), Q_BYTES);
#pragma unroll
    for (int c = 0; c < BOXES; ++c) tma_load_4d(aQ + c * BM * 128, &p.tma_q, q_bar(), c * 64, w.head, w.r0, w.b);
  }

  // A paged cache read by boxes (blocks of at least 8 rows): one box per cache block k-tile t
  // spans (a box is min(BN, block size) rows, as the host encoded the map), lane i issuing box i,
  // so that the table lookups run side by side. This lane's box starts at the returned cache row. A
  // block past the row's keys is not read from the table (its entry may be garbage): the row's
  // first block stands in; the tile is masked there.
  __device__ __forceinline__ int box_rows() const { return 1 << min(p.block_shift, 31 - __clz(BN)); }
  __device__ __forceinline__ int box_row(int t) const {
    if constexpr (!PAGED) {
      return 0;
    } else {
      const int i = (int)(threadIdx.x % 32) * box_rows(), j = t * BN + i;
      if (p.block_shift < 3 || i >= BN) return 0;
      return (int)w.key_row(p, j < w.lk ? j : 0);
    }
  }

  // k-tile t of one tensor into the slot at dst, counted on `full` (row: box_row(t)). Keys past the
  // tensor's rows read as zeros (the copy engine's bounds), as do the padded columns of head dims 80
  // and 96.
  __device__ __forceinline__ void load(const FaTensorMap* map, const T* base, uint32_t dst, uint32_t full, int t,
                                       int row) {
    const int lane = threadIdx.x % 32, k0 = t * BN;
    if constexpr (PAGED) {
      if (p.block_shift < 3) {
        load_rows(base, dst, full, k0);
        return;
      }
      if (lane == 0) mbar_arrive_expect_tx(full, KV_BYTES);
      __syncwarp();
      const int i = lane * box_rows();
      if (i < BN) {
#pragma unroll
        for (int c = 0; c < BOXES; ++c) tma_load_4d(dst + c * BN * 128 + i * 128, map, full, c * 64, w.kvh, row, 0);
      }
    } else {
      if (lane == 0) {
        mbar_arrive_expect_tx(full, KV_BYTES);
#pragma unroll
        for (int c = 0; c < BOXES; ++c) tma_load_4d(dst + c * BN * 128, map, full, c * 64, w.kvh, k0, w.b);
      }
    }
    __syncwarp();
  }

  // Paged blocks under 8 rows do not fill the 8-row swizzle pattern a box writes: the producer warp
  // copies such tiles row by row with cp.async (zeros past the row's keys and in padded columns),
  // then makes them visible to wgmma before it arrives.
  __device__ __forceinline__ void load_rows(const T* base, uint32_t dst, uint32_t full, int k0) {
    const int lane = threadIdx.x % 32;
    for (int idx = lane; idx < BN * CHUNKS_P; idx += 32) {
      const int r = idx / CHUNKS_P, ch = idx % CHUNKS_P, j = k0 + r;
      const bool ok = j < w.lk && ch < CHUNKS;
      const T* src = ok ? base + w.key_row(p, j) * p.k_row_stride + ch * 8 : base;
      cp_async16(dst + sw128_offset<BN>(r, ch), src, ok);
    }
    cp_async_commit();
    cp_async_wait<0>();
    fence_proxy_async();
    __syncwarp();
    if (lane == 0) mbar_arrive(full);
  }

  // ---- the consumers ----

  // Tile n's K has landed. A masked tile also waits for its V and clears V's Inf/NaN; the consumers
  // then meet, so that no warpgroup reads V before every clear is visible to wgmma.
  __device__ __forceinline__ bool stage(int n, int t, bool masked) {
    const int s = n % STAGES;
    const uint32_t phase = (n / STAGES) & 1;
    mbar_wait(bar(FULL_K, s), phase);
    if (masked) {
      mbar_wait(bar(FULL_V, s), phase);
      if (sanitize_v(t, s)) *sSeen = 1;
      fence_proxy_async();
      named_barrier_sync(1, CTHREADS);
    }
    return false;
  }

  __device__ __forceinline__ bool sanitize_v(int t, int stage) {
    const int tid = threadIdx.x;
    if (tid >= COPY_THREADS) return false;
    const int ldRow = tid / CHUNKS_P, ldCh = tid % CHUNKS_P;
    return sanitize_v_chunks<T, BN / RPP>(sV + stage * KV_BYTES + sw128_offset<BN>(ldRow, ldCh), RPP * 128,
                                          t * BN + ldRow, RPP, w.seeLo, w.seeHi);
  }

  // A warp frees a slot once its product over it is done (wgmma waits are warp-wide).
  static __device__ __forceinline__ void release(uint32_t b) {
    if (threadIdx.x % 32 == 0) mbar_arrive(b);
  }

  __device__ __forceinline__ void qk(float (&s)[Layout::NS], int n) {
    kStage = n % STAGES;
    const uint64_t kDesc = sw128_desc(aK + kStage * KV_BYTES, 0, 1024);
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
  template <int PENDING>
  __device__ __forceinline__ void qk_wait(float (&s)[Layout::NS]) {
    wgmma_wait<PENDING>();
    fence_regs(s);
    release(bar(EMPTY_K, kStage));
  }

  using P = PM16n8<1, BN / 8>;
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const { return pack_p_m16n8<T, 1, BN / 8>(s); }
  __device__ __forceinline__ void pack_p_row(P& pf, const float (&s)[Layout::NS], int r) const {
    pack_p_row_m16n8<T, 1, BN / 8>(pf, s, r);
  }
  __device__ __forceinline__ void pv(float (&o)[Layout::NO], P& pf, int n) {
    vStage = n % STAGES;
    mbar_wait(bar(FULL_V, vStage), (n / STAGES) & 1);
    const uint64_t vDesc = sw128_desc(aV + vStage * KV_BYTES, BN * 128, 1024);
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
    for (int kk = 0; kk < BN / 16; ++kk) fence_regs(pf.x[0][kk].x);
    release(bar(EMPTY_V, vStage));
  }

  // The O tile of the epilogue (fwd_body.cuh, store_rows_staged): the Q tile's shared memory, free
  // once finish() has run (every S = Q K^T is done), in Q's swizzled layout (conflict-free for the
  // fragments' 4-byte writes and the 16-byte reads). Staged, hd 80-128 prefill ran 0-10% faster;
  // hd 64 ran 1-3% slower and hd 256 at S = 4K without a mask 7-8% slower, so those two store from
  // the fragments (BENCHMARKS.md, "Where short hd 64 prefill spends its time").
  static constexpr bool STAGED_O = HD > 64 && HD < 256;
  __device__ __forceinline__ unsigned char* o_tile() const { return sV - STAGES * KV_BYTES - Q_BYTES; }
  static __device__ __forceinline__ uint32_t o_offset(int r, int ch) { return sw128_offset<BM>(r, ch); }

  // Every copy the producer issued was waited for by the consumers, so none is in flight.
  __device__ __forceinline__ bool finish(bool) {
    grid_launch_dependents();
    named_barrier_sync(1, CTHREADS);
    return *sSeen != 0;
  }
};

}  // namespace hopper
}  // namespace fa

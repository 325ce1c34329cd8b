// FlashAttention-2 forward for the ampere path (sm_80+): one CTA owns BM tile rows of one head
// (or, for decode, the packed query heads of one KV head), streams the non-empty k-tiles of its
// key range through a STAGES-deep cp.async pipeline, and keeps S, P and O in registers.
#pragma once
#include "../common/launch.cuh"
#include "../common/mma.cuh"
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/tile_mask.cuh"
#include "../common/kernel_names.h"
#include "configs.h"

// Compile-time switches of the tile body (run 5), each timed as a separate fatbin in one call
// (H100, hd 128, x = over the same kernel without it, fast K/V loader in both):
// SKIP_RESCALE (O is rescaled only when some row max of the warp moved) 1.04-1.09x; KPIPE
// (Q/K fragments of k16 step kk + 1 loaded before the mmas of step kk) within noise of it, with
// less spill (100/112 B instead of 132/180 B); both on by default. VPIPE (the same for V in PV):
// 0.93-1.03x of the shipped kernel, off.
#ifndef FA_AMPERE_SKIP_RESCALE
#define FA_AMPERE_SKIP_RESCALE 1
#endif
#ifndef FA_AMPERE_KPIPE
#define FA_AMPERE_KPIPE 1
#endif
#ifndef FA_AMPERE_VPIPE
#define FA_AMPERE_VPIPE 0
#endif

namespace fa {

// Kernel traits: everything a configuration fixes at compile time, apart from the kernel body.
template <int HD_, int BM_, int BN_, int WARPS_, int STAGES_>
struct AmpereTraits {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, STAGES = STAGES_;
  static constexpr int THREADS = WARPS * 32;
  // KSPLIT (run 6, decode): a tile of fewer rows than 16 per warp (BM = 16, 4 warps): every warp
  // owns all BM rows and a quarter of each k-tile's keys; the warps' (max, sum, O) are merged
  // through shared memory at the end. Packed GQA decode uses 4 of 16 rows instead of 4 of 64.
  static constexpr bool KSPLIT = BM < 16 * WARPS;
  static constexpr int WARP_ROWS = KSPLIT ? BM : BM / WARPS;
  static constexpr int WBN = KSPLIT ? BN / WARPS : BN;  // keys of a k-tile per warp
  static constexpr int MT = WARP_ROWS / 16;  // m16 tiles per warp
  // Rows padded by 8 elements (16 bytes): consecutive rows start 4 banks apart, so the 8 row
  // addresses of each ldmatrix phase hit 8 distinct 16-byte bank groups (no conflicts) for any HD
  // that is a multiple of 16 (80 and 96 included, which a 64-element swizzle would not cover).
  static constexpr int LD = HD + 8;
  static constexpr int KSTEPS_QK = HD / 16;
  static constexpr int NT_S = WBN / 8;
  static constexpr int KSTEPS_PV = WBN / 16;
  static constexpr int NT_O = HD / 8;
  static constexpr int CHUNKS = HD / 8;  // 16-byte chunks per row
  static constexpr int SMEM = FA_AMPERE_SMEM(HD, BM, BN, WARPS, STAGES);
  // One m-tile per warp: Q's fragments stay in registers for the whole loop. Two m-tiles per warp
  // halve the shared-memory traffic of K and V per mma (each B fragment feeds 2 mmas), which is
  // what bounds mma.sync attention on sm_90, but O and S then need the registers: Q is re-read
  // from shared memory every k-tile instead (as FlashAttention-2 does).
  // 8 warps x 16 rows: two CTAs per SM (16 warps, 4 per scheduler) need <= 128 registers, so Q is
  // re-read from shared memory there too.
  // One m-tile per warp with a small tile (64 x 32: 52 KB of shared memory) asks for 3 CTAs per SM
  // (<= 168 registers, 12 warps). 0 = no minimum (ptxas may use all 255 registers).
  static constexpr int MIN_BLOCKS = WARPS >= 8 ? 2 : (MT == 1 && 3 * SMEM <= 227 * 1024) ? 3 : 0;
  static constexpr bool Q_IN_REGS = MT == 1 && WARPS < 8;
  static_assert(WARP_ROWS % 16 == 0 && HD % 16 == 0 && BN % 16 == 0 && WBN % 16 == 0, "tile shape");
  static_assert(!KSPLIT || (BM == 16 && (WARPS * BM * (HD + 4) + 2 * WARPS * BM) * 4 <= 2 * STAGES * BN * LD * 2),
                "KSPLIT: 16 rows, and the warps' partial O must fit in the K/V buffers");
};

template <typename Tr, typename T>
__device__ __forceinline__ void load_rows(T* dst, const T* base, int64_t row_stride, int row0, int rows, int valid,
                                          int tid) {
  // `rows` rows of HD elements from base + r * row_stride; rows >= valid are zero-filled.
  for (int c = tid; c < rows * Tr::CHUNKS; c += Tr::THREADS) {
    const int r = c / Tr::CHUNKS, ch = c % Tr::CHUNKS;
    const bool ok = row0 + r < valid;
    const T* src = ok ? base + (int64_t)(row0 + r) * row_stride + ch * 8 : base;
    cp_async16(dst + r * Tr::LD + ch * 8, src, ok);
  }
}

template <typename Tr, typename T>
__device__ __forceinline__ void fwd_kernel(const FaFwdParams& p) {
  constexpr int HD = Tr::HD, BM = Tr::BM, BN = Tr::BN, ST = Tr::STAGES, MT = Tr::MT;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BM * Tr::LD;
  T* sV = sK + ST * BN * Tr::LD;

  grid_dependency_wait();  // before any global memory access (programmatic dependent launch)
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  // Last q-tile first: under a causal mask the last tiles have the most k-tiles, so starting them
  // first shortens the tail of the grid (as FlashAttention-2 does).
  const int tile = gridDim.x - 1 - blockIdx.x, head = blockIdx.y;
  const int b = blockIdx.z / p.num_splits, split = blockIdx.z % p.num_splits;
  const int lk = p.seqlens_k ? p.seqlens_k[b] : p.seq_k;
  const int kvh = p.pack_gqa ? head : head / p.group;
  const int r0 = tile * BM;
  const int r1 = min(p.rows_total, r0 + BM);
  const int q0 = p.pack_gqa ? r0 / p.group : r0;
  const int q1 = p.pack_gqa ? (r1 - 1) / p.group + 1 : r1;
  const int64_t dMin = (int64_t)q0 + lk - p.seq_q, dMax = (int64_t)q1 - 1 + lk - p.seq_q;

  // Non-empty k-tiles of this q-tile (tiling-mask), intersected with this CTA's split of the keys.
  int kStart, kEnd;
  fa_k_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &kStart, &kEnd);
  const int kTiles = (p.seq_k + BN - 1) / BN;
  const int s0 = (int)((int64_t)split * kTiles / p.num_splits);
  const int s1 = (int)((int64_t)(split + 1) * kTiles / p.num_splits);
  const int t0 = max(kStart, s0), t1 = min(kEnd, s1);
  const int nTiles = max(0, t1 - t0);
  // k-tiles that need no per-element mask (FULL and inside lk): decided once here, so the loop
  // tests each tile with two compares. A negative scale runs every tile through the masked body.
  int fullStart, fullEnd;
  fa_full_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &fullStart, &fullEnd);
  if (!(p.scale_log2 >= 0.f)) fullEnd = fullStart;
  // Keys some row of this CTA may see: an Inf/NaN in V there is a value to propagate, elsewhere
  // garbage to ignore (nonfinite.cuh).
  const int64_t kSeeLo = dMin - p.band_left, kSeeHi = min((int64_t)lk, dMax + p.band_right + 1);

  const T* qBase = static_cast<const T*>(p.q) + (int64_t)b * p.q_batch_stride;
  const T* kBase = static_cast<const T*>(p.k) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;
  const T* vBase = static_cast<const T*>(p.v) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;

  // Q tile. Packed rows (decode) are (query row, head in group) pairs: each has its own address.
  if (p.pack_gqa) {
    for (int c = tid; c < BM * Tr::CHUNKS; c += Tr::THREADS) {
      const int r = c / Tr::CHUNKS, ch = c % Tr::CHUNKS;
      const int row = r0 + r;
      const bool ok = row < r1;
      const int i = ok ? row / p.group : 0, h = kvh * p.group + (ok ? row % p.group : 0);
      cp_async16(sQ + r * Tr::LD + ch * 8, qBase + (int64_t)i * p.q_row_stride + (int64_t)h * HD + ch * 8, ok);
    }
  } else {
    load_rows<Tr>(sQ, qBase + (int64_t)head * HD, p.q_row_stride, r0, BM, r1, tid);
  }
  cp_async_commit();

  // K/V tile loads. Where the threads tile a k-tile evenly (THREADS a multiple of the 16-byte chunks
  // per row), each thread owns one fixed chunk column and the rows ldRow + i * RPP: its global and
  // shared addresses are a per-thread base plus compile-time steps, and a tile that lies inside
  // seq_k (all but the last) needs no predicate. The generic loop (division per chunk, 64-bit row
  // arithmetic, a runtime trip count) cost about 30 instructions per 16-byte copy in SASS, a third
  // of the warp's instructions per k-tile (run 5).
  constexpr bool KV_FAST = Tr::THREADS % Tr::CHUNKS == 0 && BN % (Tr::THREADS / Tr::CHUNKS) == 0;
  constexpr int RPP = KV_FAST ? Tr::THREADS / Tr::CHUNKS : 1;  // rows per pass
  const int ldRow = tid / Tr::CHUNKS, ldCh = tid % Tr::CHUNKS;
  const int64_t kvOff = (int64_t)ldRow * p.k_row_stride + ldCh * 8;
  const T* kThr = kBase + kvOff;
  const T* vThr = vBase + kvOff;
  const int sOff = ldRow * Tr::LD + ldCh * 8;
  auto load_kv = [&](int t, int stage) {
    const int k0 = t * BN;
    if constexpr (KV_FAST) {
      const int64_t g0 = (int64_t)k0 * p.k_row_stride;
      const int64_t step = (int64_t)RPP * p.k_row_stride;
      const T* gk = kThr + g0;
      const T* gv = vThr + g0;
      T* dk = sK + stage * BN * Tr::LD + sOff;
      T* dv = sV + stage * BN * Tr::LD + sOff;
      if (k0 + BN <= p.seq_k) {
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dk + i * RPP * Tr::LD, gk + i * step);
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dv + i * RPP * Tr::LD, gv + i * step);
      } else {
#pragma unroll
        for (int i = 0; i < BN / RPP; ++i) {
          const bool ok = k0 + ldRow + i * RPP < p.seq_k;
          cp_async16(dk + i * RPP * Tr::LD, ok ? gk + i * step : kBase, ok);
          cp_async16(dv + i * RPP * Tr::LD, ok ? gv + i * step : vBase, ok);
        }
      }
    } else {
      load_rows<Tr>(sK + stage * BN * Tr::LD, kBase, p.k_row_stride, k0, BN, p.seq_k, tid);
      load_rows<Tr>(sV + stage * BN * Tr::LD, vBase, p.k_row_stride, k0, BN, p.seq_k, tid);
    }
  };
  // Zeroes the Inf/NaN of the V chunks this thread copied for tile t (a masked tile, once its copies
  // landed); true if one of them belongs to a key some row of the CTA sees (nonfinite.cuh).
  auto sanitize_v = [&](int t, int stage) -> bool {
    const int k0 = t * BN;
    bool seen = false;
    if constexpr (KV_FAST) {
      T* dv = sV + stage * BN * Tr::LD + sOff;
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) {
        const int key = k0 + ldRow + i * RPP;
        if (zero_nonfinite_smem<T>(dv + i * RPP * Tr::LD) && key >= kSeeLo && key < kSeeHi) seen = true;
      }
    } else {
      for (int c = tid; c < BN * Tr::CHUNKS; c += Tr::THREADS) {
        const int r = c / Tr::CHUNKS, ch = c % Tr::CHUNKS;
        T* dv = sV + stage * BN * Tr::LD + r * Tr::LD + ch * 8;
        if (zero_nonfinite_smem<T>(dv) && k0 + r >= kSeeLo && k0 + r < kSeeHi) seen = true;
      }
    }
    return seen;
  };
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < nTiles) load_kv(t0 + s, s);
    cp_async_commit();  // empty groups keep the group count uniform
  }

  // Per-thread rows: query row of accumulator rows g and g+8 of each m-tile, recomputed where needed
  // (masked tiles, epilogue) rather than kept live through the loop.
  const int warpRow0 = r0 + (Tr::KSPLIT ? 0 : warp * Tr::WARP_ROWS);
  const bool warpActive = warpRow0 < r1;
  auto row_of = [&](int mt, int h) { return warpRow0 + mt * 16 + lane / 4 + h * 8; };

  cp_async_wait<ST - 1>();
  __syncthreads();
  const T* wQ = sQ + (Tr::KSPLIT ? 0 : warp * Tr::WARP_ROWS * Tr::LD);
  FragA qf[Tr::Q_IN_REGS ? MT : 1][Tr::Q_IN_REGS ? Tr::KSTEPS_QK : 1];
  if constexpr (Tr::Q_IN_REGS) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int kk = 0; kk < Tr::KSTEPS_QK; ++kk) load_a(qf[mt][kk], wQ + mt * 16 * Tr::LD + kk * 16, Tr::LD, lane);
  }

  FragC o[MT][Tr::NT_O];
  // mrow: running row max of scale * log2(e) * q.k (base-2 units); lrow: this lane's partial row sum.
  float mrow[MT][2], lrow[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int n = 0; n < Tr::NT_O; ++n) o[mt][n] = FragC{{0.f, 0.f, 0.f, 0.f}};
    mrow[mt][0] = mrow[mt][1] = -INFINITY;
    lrow[mt][0] = lrow[mt][1] = 0.f;
  }
  const float sl = p.scale_log2;

  // One k-tile: S = Q K^T, online softmax, O += P V. MASK is a compile-time flag so that FULL tiles
  // (the bulk of every problem) carry no per-element mask work and keep the scale folded into the
  // exp2 argument (one FFMA per element, as FlashAttention-2 does); PARTIAL tiles, a last tile that
  // runs past lk, and a negative scale (where max(scale * s) != scale * max(s)) take the masked body.
  auto tile_step = [&](auto maskTag, int n) {
    constexpr bool MASK = decltype(maskTag)::value;
    const int kw = Tr::KSPLIT ? warp * Tr::WBN : 0;  // this warp's first key of the k-tile
    const int t = t0 + n, k0 = t * BN + kw;
    const T* tK = sK + (n % ST) * BN * Tr::LD + kw * Tr::LD;
    const T* tV = sV + (n % ST) * BN * Tr::LD + kw * Tr::LD;

    FragC s[MT][Tr::NT_S];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < Tr::NT_S; ++j) s[mt][j] = FragC{{0.f, 0.f, 0.f, 0.f}};
#if FA_AMPERE_KPIPE
    // Fragments of k16 step kk + 1 (Q's A fragments, K's B fragments) are loaded before the mmas of
    // step kk, so no ldmatrix result is consumed right after its issue.
    FragA qa[2][MT];
    FragB kb[2][Tr::NT_S];
    auto load_step = [&](int kk, int buf) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (Tr::Q_IN_REGS) qa[buf][mt] = qf[mt][kk];
        else load_a(qa[buf][mt], wQ + mt * 16 * Tr::LD + kk * 16, Tr::LD, lane);
      }
#pragma unroll
      for (int j = 0; j < Tr::NT_S; j += 2) load_b_nk(kb[buf][j], kb[buf][j + 1], tK + j * 8 * Tr::LD + kk * 16, Tr::LD, lane);
    };
    load_step(0, 0);
#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_QK; ++kk) {
      if (kk + 1 < Tr::KSTEPS_QK) load_step(kk + 1, (kk + 1) % 2);
#pragma unroll
      for (int j = 0; j < Tr::NT_S; ++j)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) mma<T>(s[mt][j], qa[kk % 2][mt], kb[kk % 2][j]);
    }
#else
#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_QK; ++kk) {
      FragA qa[MT];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (Tr::Q_IN_REGS) qa[mt] = qf[mt][kk];
        else load_a(qa[mt], wQ + mt * 16 * Tr::LD + kk * 16, Tr::LD, lane);
      }
#pragma unroll
      for (int j = 0; j < Tr::NT_S; j += 2) {
        FragB b0, b1;
        load_b_nk(b0, b1, tK + j * 8 * Tr::LD + kk * 16, Tr::LD, lane);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma<T>(s[mt][j], qa[mt], b0);
          mma<T>(s[mt][j + 1], qa[mt], b1);
        }
      }
    }
#endif

    if constexpr (MASK) {
      // Scale explicitly and test each element against the band (and lk): afterwards s holds
      // base-2 logits, so the softmax below runs with a unit scale.
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = row_of(mt, h);
          const int diag = (p.pack_gqa ? row / p.group : row) + lk - p.seq_q;
#pragma unroll
          for (int j = 0; j < Tr::NT_S; ++j)
#pragma unroll
            for (int e = 2 * h; e < 2 * h + 2; ++e) {
              const int col = k0 + j * 8 + c_col(lane, e);
              const int rel = col - diag;
              const bool off = col >= lk || rel < -p.band_left || rel > p.band_right;
              s[mt][j].x[e] = off ? -INFINITY : s[mt][j].x[e] * sl;
            }
        }
    }
    const float esc = MASK ? 1.f : sl;  // factor from s to base-2 logits

    // Online softmax in base 2; each lane keeps a partial row sum, reduced over the quad at the end.
    // P is packed to the operand type right after its exponentials (pk[mt][j][h] = elements
    // 2h, 2h+1 of S's n-tile j): the f32 scores die there instead of living until the PV mma, which
    // halves P's registers (FlashAttention-2 converts P the same way, before the second gemm).
    uint32_t pk[MT][Tr::NT_S][2];
#if FA_AMPERE_SKIP_RESCALE
    float alphas[MT][2];
#endif
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        // Row max and sum as trees, not serial chains: short dependency chains matter with only
        // two warps per scheduler to hide them.
        float mxs[Tr::NT_S];
#pragma unroll
        for (int j = 0; j < Tr::NT_S; ++j) mxs[j] = fmaxf(s[mt][j].x[2 * h], s[mt][j].x[2 * h + 1]);
#pragma unroll
        for (int w = 1; w < Tr::NT_S; w *= 2)
#pragma unroll
          for (int j = 0; j + w < Tr::NT_S; j += 2 * w) mxs[j] = fmaxf(mxs[j], mxs[j + w]);
        float mx = mxs[0];
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // New running max in base-2 units (esc >= 0 here: a negative scale takes the MASK body).
        const float mNew = fmaxf(mrow[mt][h], mx * esc);
        // A row with nothing allowed yet (only possible on masked tiles) keeps 0 as its offset.
        const float mUse = (MASK && mNew == -INFINITY) ? 0.f : mNew;
        const float alpha = fast_exp2(mrow[mt][h] - mUse);
        mrow[mt][h] = mNew;
        float sums[Tr::NT_S];
#pragma unroll
        for (int j = 0; j < Tr::NT_S; ++j) {
          const float e0 = fast_exp2(fmaf(s[mt][j].x[2 * h], esc, -mUse));
          const float e1 = fast_exp2(fmaf(s[mt][j].x[2 * h + 1], esc, -mUse));
          pk[mt][j][h] = Elem<T>::pack(e0, e1);
          sums[j] = e0 + e1;
        }
#pragma unroll
        for (int w = 1; w < Tr::NT_S; w *= 2)
#pragma unroll
          for (int j = 0; j + w < Tr::NT_S; j += 2 * w) sums[j] += sums[j + w];
        const float sum = sums[0];
        lrow[mt][h] = lrow[mt][h] * alpha + sum;
#if FA_AMPERE_SKIP_RESCALE
        alphas[mt][h] = alpha;
#else
#pragma unroll
        for (int d = 0; d < Tr::NT_O; ++d) {
          o[mt][d].x[2 * h] *= alpha;
          o[mt][d].x[2 * h + 1] *= alpha;
        }
#endif
      }
#if FA_AMPERE_SKIP_RESCALE
    {
      bool moved = false;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) moved |= (alphas[mt][0] != 1.f) | (alphas[mt][1] != 1.f);
      if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int d = 0; d < Tr::NT_O; ++d) {
            o[mt][d].x[0] *= alphas[mt][0];
            o[mt][d].x[1] *= alphas[mt][0];
            o[mt][d].x[2] *= alphas[mt][1];
            o[mt][d].x[3] *= alphas[mt][1];
          }
      }
    }
#endif

    // O += P V: the packed P of two neighbouring n-tiles is one A fragment (mma.cuh, c_to_a).
#if FA_AMPERE_VPIPE
    FragB vb[2][Tr::NT_O];
    auto load_v = [&](int kk, int buf) {
#pragma unroll
      for (int d = 0; d < Tr::NT_O; d += 2) load_b_kn(vb[buf][d], vb[buf][d + 1], tV + kk * 16 * Tr::LD + d * 8, Tr::LD, lane);
    };
    load_v(0, 0);
#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_PV; ++kk) {
      if (kk + 1 < Tr::KSTEPS_PV) load_v(kk + 1, (kk + 1) % 2);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const FragA pa{{pk[mt][2 * kk][0], pk[mt][2 * kk][1], pk[mt][2 * kk + 1][0], pk[mt][2 * kk + 1][1]}};
#pragma unroll
        for (int d = 0; d < Tr::NT_O; ++d) mma<T>(o[mt][d], pa, vb[kk % 2][d]);
      }
    }
#else
#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_PV; ++kk) {
      FragA pa[MT];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        pa[mt] = FragA{{pk[mt][2 * kk][0], pk[mt][2 * kk][1], pk[mt][2 * kk + 1][0], pk[mt][2 * kk + 1][1]}};
#pragma unroll
      for (int d = 0; d < Tr::NT_O; d += 2) {
        FragB b0, b1;
        load_b_kn(b0, b1, tV + kk * 16 * Tr::LD + d * 8, Tr::LD, lane);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma<T>(o[mt][d], pa[mt], b0);
          mma<T>(o[mt][d + 1], pa[mt], b1);
        }
      }
    }
#endif
  };

  // seen: a masked tile had an Inf/NaN of V zeroed by this thread at a key some row of the CTA
  // sees. Reduced over the CTA once, after the loop (the loop's barriers stay as they were): the
  // epilogue then adds the Inf/NaN of the keys each row sees back into O (nonfinite.cuh).
  bool seen = false;
  const int fixLo = t0 * BN, fixHi = (int)min((int64_t)t1 * BN, (int64_t)p.seq_k);
  for (int n = 0; n < nTiles; ++n) {
    cp_async_wait<ST - 2>();
    // Tiling-mask: FULL tiles take the unmasked body; PARTIAL ones (and a last tile that runs
    // past lk, whose zero-filled keys must not count) test each element against the band, and
    // their V is cleared of Inf/NaN first (a hidden key's 0 * NaN would reach O).
    const int t = t0 + n;
    const bool masked = t < fullStart || t >= fullEnd;
    if (masked && sanitize_v(t, n % ST)) seen = true;
    __syncthreads();
    if (n + ST - 1 < nTiles) load_kv(t0 + n + ST - 1, (n + ST - 1) % ST);
    cp_async_commit();
    if (!warpActive) continue;
    if (masked) tile_step(BoolTag<true>{}, n);
    else tile_step(BoolTag<false>{}, n);
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the CTA exits
  grid_launch_dependents();
  const bool fix = __syncthreads_or(seen);

  // Epilogue: normalize, write O and LSE (or the split's partials, merged below by the last split
  // CTA when p.counters is set, else by the separate combine kernel).
  if constexpr (Tr::KSPLIT) {
    // Each warp leaves its rows' running max (base 2), full row sum and unnormalized O in shared
    // memory (the K/V buffers, free now); then the CTA merges the warps per (row, 4 columns).
    constexpr int LDO = HD + 4;
    float* sO = reinterpret_cast<float*>(sK);
    float* sM = sO + Tr::WARPS * BM * LDO;
    float* sL = sM + Tr::WARPS * BM;
    __syncthreads();  // every warp is done reading K/V
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = lrow[0][h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int r = lane / 4 + h * 8;
      float* dst = sO + (warp * BM + r) * LDO + 2 * (lane % 4);
#pragma unroll
      for (int d = 0; d < Tr::NT_O; ++d)
        *reinterpret_cast<float2*>(dst + d * 8) = make_float2(o[0][d].x[2 * h], o[0][d].x[2 * h + 1]);
      if (lane % 4 == 0) {
        sM[warp * BM + r] = mrow[0][h];
        sL[warp * BM + r] = l;
      }
    }
    __syncthreads();
    constexpr int C4 = HD / 4;
    for (int idx = tid; idx < (r1 - r0) * C4; idx += Tr::THREADS) {
      const int r = idx / C4, c4 = idx % C4, row = r0 + r;
      float M = -INFINITY;
#pragma unroll
      for (int w = 0; w < Tr::WARPS; ++w) M = fmaxf(M, sM[w * BM + r]);
      float l = 0.f;
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
      for (int w = 0; w < Tr::WARPS; ++w) {
        const float mw = sM[w * BM + r];
        const float f = mw == -INFINITY ? 0.f : fast_exp2(mw - M);
        l += f * sL[w * BM + r];
        const float4 v = *reinterpret_cast<const float4*>(sO + (w * BM + r) * LDO + c4 * 4);
        acc.x += f * v.x;
        acc.y += f * v.y;
        acc.z += f * v.z;
        acc.w += f * v.w;
      }
      // l == 0: no allowed key. A NaN l (NaN in a visible q or k) must stay NaN in O and LSE.
      const float inv = l != 0.f ? 1.f / l : 0.f;
      const float lse = l != 0.f ? (M + __log2f(l)) * 0.69314718055994531f : -INFINITY;
      const int i = p.pack_gqa ? row / p.group : row;
      if (fix) {
        int lo, hi;
        visible_keys(i, lk, p.seq_q, p.band_left, p.band_right, fixLo, fixHi, &lo, &hi);
        acc.x += nonfinite_sum(vBase, p.k_row_stride, c4 * 4 + 0, lo, hi);
        acc.y += nonfinite_sum(vBase, p.k_row_stride, c4 * 4 + 1, lo, hi);
        acc.z += nonfinite_sum(vBase, p.k_row_stride, c4 * 4 + 2, lo, hi);
        acc.w += nonfinite_sum(vBase, p.k_row_stride, c4 * 4 + 3, lo, hi);
      }
      const int hq = p.pack_gqa ? kvh * p.group + row % p.group : head;
      const int64_t lseIdx = ((int64_t)b * p.heads_q + hq) * p.seq_q + i;
      if (p.num_splits == 1) {
        T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)hq * HD;
        uint2 pk2;
        pk2.x = Elem<T>::pack(acc.x * inv, acc.y * inv);
        pk2.y = Elem<T>::pack(acc.z * inv, acc.w * inv);
        *reinterpret_cast<uint2*>(out + c4 * 4) = pk2;
        if (c4 == 0) p.lse[lseIdx] = lse;
      } else {
        const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
        *reinterpret_cast<float4*>(p.part_o + ((int64_t)split * rows + lseIdx) * HD + c4 * 4) =
            make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
        if (c4 == 0) p.part_lse[(int64_t)split * rows + lseIdx] = lse;
      }
    }
  } else
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = lrow[mt][h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int row = row_of(mt, h);
      if (!warpActive) continue;  // warp-uniform
      const bool valid = row < r1;  // per quad; the shuffles below need the whole warp
      const float inv = l != 0.f ? 1.f / l : 0.f;  // l == 0: no allowed key; NaN stays NaN
      const float lse = l != 0.f ? (mrow[mt][h] + __log2f(l)) * 0.69314718055994531f : -INFINITY;
      const int i = p.pack_gqa ? row / p.group : row;
      if (fix && valid) {
        int lo, hi;
        visible_keys(i, lk, p.seq_q, p.band_left, p.band_right, fixLo, fixHi, &lo, &hi);
#pragma unroll
        for (int d = 0; d < Tr::NT_O; ++d)
#pragma unroll
          for (int c = 0; c < 2; ++c)
            o[mt][d].x[2 * h + c] += nonfinite_sum(vBase, p.k_row_stride, d * 8 + 2 * (lane % 4) + c, lo, hi);
      }
      const int hq = p.pack_gqa ? kvh * p.group + row % p.group : head;
      const int64_t lseIdx = ((int64_t)b * p.heads_q + hq) * p.seq_q + i;
      if (p.num_splits == 1) {
        if (!valid) continue;
        T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)hq * HD;
#pragma unroll
        for (int d = 0; d < Tr::NT_O; ++d) {
          const uint32_t v = Elem<T>::pack(o[mt][d].x[2 * h] * inv, o[mt][d].x[2 * h + 1] * inv);
          *reinterpret_cast<uint32_t*>(out + d * 8 + 2 * (lane % 4)) = v;
        }
        if (lane % 4 == 0) p.lse[lseIdx] = lse;
      } else {
        const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
        float* po = p.part_o + ((int64_t)split * rows + lseIdx) * HD;
        // 16-byte stores: lanes 2j and 2j+1 of a quad swap halves, so the even lane owns 4
        // consecutive columns of n-tile d and the odd lane 4 of n-tile d + 1.
        const bool odd = lane & 1;
#pragma unroll
        for (int d = 0; d < Tr::NT_O; d += 2) {
          const float a0 = o[mt][d].x[2 * h] * inv, a1 = o[mt][d].x[2 * h + 1] * inv;
          const float b0 = o[mt][d + 1].x[2 * h] * inv, b1 = o[mt][d + 1].x[2 * h + 1] * inv;
          // Even lane sends its tile-(d+1) pair, odd lane its tile-d pair.
          const float s0 = __shfl_xor_sync(0xffffffffu, odd ? a0 : b0, 1);
          const float s1 = __shfl_xor_sync(0xffffffffu, odd ? a1 : b1, 1);
          const float4 v = odd ? make_float4(s0, s1, b0, b1) : make_float4(a0, a1, s0, s1);
          const int col = (odd ? (d + 1) * 8 + 2 * (lane % 4) - 2 : d * 8 + 2 * (lane % 4));
          if (valid) *reinterpret_cast<float4*>(po + col) = v;
        }
        if (valid && lane % 4 == 0) p.part_lse[(int64_t)split * rows + lseIdx] = lse;
      }
    }

  // Fused combine: the last split CTA of this (batch, head, q-tile) merges every split's partials.
  if (p.num_splits > 1 && p.counters) {
    int* flag = reinterpret_cast<int*>(smem_raw);
    const int64_t cIdx = ((int64_t)b * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    __threadfence();  // this CTA's partials are visible device-wide before it is counted
    __syncthreads();  // every warp is done with shared memory and has written its partials
    if (tid == 0) *flag = atomicAdd(p.counters + cIdx, 1) == p.num_splits - 1;
    __syncthreads();
    if (!*flag) return;
    __threadfence();
    const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
    const int nS = p.num_splits;
    constexpr int V4 = HD / 4;
    // Up to CHUNK splits' partials are loaded at once (all loads issued before the first use: one
    // L2 round trip per chunk, run 7) and merged online, so any split count works.
    constexpr int CHUNK = 16;
    for (int idx = tid; idx < (r1 - r0) * V4; idx += Tr::THREADS) {
      const int row = r0 + idx / V4, d4 = idx % V4;
      const int i = p.pack_gqa ? row / p.group : row;
      const int hq = p.pack_gqa ? kvh * p.group + row % p.group : head;
      const int64_t lseIdx = ((int64_t)b * p.heads_q + hq) * p.seq_q + i;
      float mx = -INFINITY, sum = 0.f;
      bool nan = false;  // a NaN partial LSE (NaN in a visible q or k) makes the row NaN
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int s0 = 0; s0 < nS; s0 += CHUNK) {
        float l[CHUNK];
        float4 v[CHUNK];
#pragma unroll
        for (int j = 0; j < CHUNK; ++j) {
          const bool ok = s0 + j < nS;
          const int64_t at = (int64_t)(ok ? s0 + j : 0) * rows + lseIdx;
          l[j] = ok ? __ldcg(p.part_lse + at) : -INFINITY;
          v[j] = ok ? __ldcg(reinterpret_cast<const float4*>(p.part_o + at * HD) + d4) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
        float cm = mx;
#pragma unroll
        for (int j = 0; j < CHUNK; ++j) {
          cm = fmaxf(cm, l[j]);
          nan |= isnan(l[j]);
        }
        if (cm == -INFINITY) continue;  // no keys in any split so far
        const float f = __expf(mx - cm);  // 0 when mx is -inf
        sum *= f;
        acc.x *= f;
        acc.y *= f;
        acc.z *= f;
        acc.w *= f;
#pragma unroll
        for (int j = 0; j < CHUNK; ++j) {
          const float w = __expf(l[j] - cm);  // 0 for an empty split (-inf)
          sum += w;
          acc.x += w * v[j].x;
          acc.y += w * v[j].y;
          acc.z += w * v[j].z;
          acc.w += w * v[j].w;
        }
        mx = cm;
      }
      if (nan) sum = NAN;
      const float inv = sum != 0.f ? 1.f / sum : 0.f;
      T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)hq * HD;
      uint2 pk2;
      pk2.x = Elem<T>::pack(acc.x * inv, acc.y * inv);
      pk2.y = Elem<T>::pack(acc.z * inv, acc.w * inv);
      *reinterpret_cast<uint2*>(out + d4 * 4) = pk2;
      if (d4 == 0) p.lse[lseIdx] = sum != 0.f ? mx + logf(sum) : -INFINITY;
    }
    if (tid == 0) p.counters[cIdx] = 0;  // ready for the next launch (stream-ordered)
  }
}

}  // namespace fa

// One extern "C" entry point per (config, dtype): the addon finds it by this name.
#define FA_AMPERE_KERNEL_NAME(role, HD, BM, BN, W, S, DT) FA_KERNEL_SYMBOL(ampere, role, DT, HD, BM, BN, W, S)
#define FA_AMPERE_DEFINE_ONE(role, HD, BM, BN, W, S, DT, TYPE)                                       \
  extern "C" __global__ void __launch_bounds__(W * 32, (fa::AmpereTraits<HD, BM, BN, W, S>::MIN_BLOCKS)) \
      FA_AMPERE_KERNEL_NAME(role, HD, BM, BN, W, S, DT)(const FaFwdParams p) {                         \
    fa::fwd_kernel<fa::AmpereTraits<HD, BM, BN, W, S>, TYPE>(p);                                       \
  }
#define FA_AMPERE_DEFINE(role, HD, BM, BN, W, S)            \
  FA_AMPERE_DEFINE_ONE(role, HD, BM, BN, W, S, f16, __half) \
  FA_AMPERE_DEFINE_ONE(role, HD, BM, BN, W, S, bf16, __nv_bfloat16)

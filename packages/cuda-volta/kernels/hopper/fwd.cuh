// FlashAttention-2 forward on Hopper tensor cores (sm_90a): the ampere kernel's algorithm (one CTA
// per q-tile of one head, the tiling-mask's non-empty k-tiles streamed through a cp.async ring,
// online softmax in registers, FULL tiles unmasked) with both matrix products on wgmma. Each
// warpgroup owns 64 query rows: S = Q K^T reads Q and K from shared memory (ss), O += P V takes P
// from the registers S was computed in (rs) and V from shared memory, transposed by the hardware.
// Prefill only (no packed-GQA decode rows, no split-KV): the host plans those on the ampere kernels.
#pragma once
#include "../common/launch.cuh"
#include "../common/mma.cuh"
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/tile_mask.cuh"
#include "../common/kernel_names.h"
#include "configs.h"
#include "wgmma.cuh"

namespace fa {
namespace hopper {

template <int HD_, int BM_, int BN_, int WARPS_, int STAGES_>
struct HopperTraits {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, STAGES = STAGES_;
  static constexpr int THREADS = WARPS * 32;
  static constexpr int CHUNKS = HD / 8;  // 16-byte chunks per row
  static constexpr int Q_BYTES = BM * HD * 2, KV_BYTES = BN * HD * 2;
  static constexpr int SMEM = FA_HOPPER_SMEM(HD, BM, BN, WARPS, STAGES);
  static_assert(BM == 16 * WARPS, "one warpgroup (4 warps) per 64 query rows");
  static_assert(HD % 64 == 0 && BN % 64 == 0, "SW128 tiles are whole 64-element column blocks");
  static_assert(THREADS % CHUNKS == 0 && BN % (THREADS / CHUNKS) == 0 && BM % (THREADS / CHUNKS) == 0,
                "each thread copies one fixed 16-byte column of every tile");
};

// The Inf/NaN of V at the keys a row sees, added to the row's stored output (after normalization,
// which gives the same result: Inf/NaN dominate any finite value). For the elements this thread
// stored (rows row0 and row0 + 8, the epilogue's columns), so it reads back its own writes. Out of
// line, after the store: O is dead by then and the kernel's main loop does not pay for this rare
// case (a V with Inf/NaN at a key some row sees, on a tile that a row may not fully see).
template <typename Tr, typename T>
__device__ __noinline__ void nonfinite_fixup(const FaFwdParams p) {
  constexpr int HD = Tr::HD, BM = Tr::BM, BN = Tr::BN;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int tile = gridDim.x - 1 - blockIdx.x, head = blockIdx.y, b = blockIdx.z;
  const int lk = p.seqlens_k ? p.seqlens_k[b] : p.seq_k;
  const int r0 = tile * BM, r1 = min(p.seq_q, r0 + BM);
  const int64_t dMin = (int64_t)r0 + lk - p.seq_q, dMax = (int64_t)r1 - 1 + lk - p.seq_q;
  int t0, tEnd;
  fa_k_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &t0, &tEnd);
  const T* vHead = static_cast<const T*>(p.v) + (int64_t)b * p.k_batch_stride + (int64_t)(head / p.group) * HD;
  for (int h = 0; h < 2; ++h) {
    const int row = r0 + warp * 16 + lane / 4 + h * 8;
    if (row >= r1) continue;
    int lo, hi;
    visible_keys(row, lk, p.seq_q, p.band_left, p.band_right, t0 * BN, (int)min((int64_t)tEnd * BN, (int64_t)p.seq_k),
                 &lo, &hi);
    T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)row * p.q_row_stride + (int64_t)head * HD;
    for (int j = 0; j < HD / 8; ++j)
      for (int c = 0; c < 2; ++c) {
        const int col = j * 8 + 2 * (lane % 4) + c;
        const float add = nonfinite_sum(vHead, p.k_row_stride, col, lo, hi);
        if (add != 0.f) out[col] = Elem<T>::from_float(Elem<T>::to_float(out[col]) + add);
      }
  }
}

template <typename Tr, typename T>
__device__ __forceinline__ void fwd_kernel(const FaFwdParams& p) {
  constexpr int HD = Tr::HD, BM = Tr::BM, BN = Tr::BN, ST = Tr::STAGES;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  // SW128 tiles must start on 1024 bytes; the dynamic window's alignment is not promised.
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t aQ = (raw + 1023u) & ~1023u;
  unsigned char* sQ = smem_raw + (aQ - raw);
  const uint32_t aK = aQ + Tr::Q_BYTES, aV = aK + ST * Tr::KV_BYTES;
  unsigned char* sK = sQ + Tr::Q_BYTES;
  unsigned char* sV = sK + ST * Tr::KV_BYTES;

  grid_dependency_wait();  // before any global memory access (programmatic dependent launch)
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wg = warp / 4;
  // Last q-tile first: under a causal mask the last tiles have the most k-tiles.
  const int tile = gridDim.x - 1 - blockIdx.x, head = blockIdx.y, b = blockIdx.z;
  const int lk = p.seqlens_k ? p.seqlens_k[b] : p.seq_k;
  const int kvh = head / p.group;
  const int r0 = tile * BM, r1 = min(p.seq_q, r0 + BM);
  const int64_t dMin = (int64_t)r0 + lk - p.seq_q, dMax = (int64_t)r1 - 1 + lk - p.seq_q;
  int t0, tEnd, fullStart, fullEnd;
  fa_k_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &t0, &tEnd);
  fa_full_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &fullStart, &fullEnd);
  if (!(p.scale_log2 >= 0.f)) fullEnd = fullStart;  // a negative scale takes the masked body
  const int nTiles = tEnd - t0;

  // Copies: each thread owns 16-byte column ldCh of rows ldRow + i * RPP of every tile. RPP is a
  // multiple of 8, so the swizzled position of the thread's chunk is the same in every row it copies.
  constexpr int RPP = Tr::THREADS / Tr::CHUNKS;
  const int ldRow = tid / Tr::CHUNKS, ldCh = tid % Tr::CHUNKS;
  const T* qThr = static_cast<const T*>(p.q) + (int64_t)b * p.q_batch_stride + (int64_t)head * HD + ldCh * 8;
  const int64_t kvOff = (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD + (int64_t)ldRow * p.k_row_stride + ldCh * 8;
  const T* kThr = static_cast<const T*>(p.k) + kvOff;
  const T* vThr = static_cast<const T*>(p.v) + kvOff;
#pragma unroll
  for (int i = 0; i < BM / RPP; ++i) {
    const int r = ldRow + i * RPP;
    const bool ok = r0 + r < r1;
    cp_async16(sQ + sw128_offset<BM>(r, ldCh), ok ? qThr + (int64_t)(r0 + r) * p.q_row_stride : qThr, ok);
  }
  const uint32_t kvSlot = sw128_offset<BN>(ldRow, ldCh);
  auto load_kv = [&](int t, int stage) {
    const int k0 = t * BN;
    const int64_t step = (int64_t)RPP * p.k_row_stride;
    const T* gk = kThr + (int64_t)k0 * p.k_row_stride;
    const T* gv = vThr + (int64_t)k0 * p.k_row_stride;
    unsigned char* dk = sK + stage * Tr::KV_BYTES + kvSlot;
    unsigned char* dv = sV + stage * Tr::KV_BYTES + kvSlot;
    if (k0 + BN <= p.seq_k) {
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dk + i * RPP * 128, gk + i * step);
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) cp_async16_full(dv + i * RPP * 128, gv + i * step);
    } else {  // rows past seq_k are zero-filled (masked below; zeros keep 0 * garbage out of O)
#pragma unroll
      for (int i = 0; i < BN / RPP; ++i) {
        const bool ok = k0 + ldRow + i * RPP < p.seq_k;
        cp_async16(dk + i * RPP * 128, ok ? gk + i * step : kThr, ok);
        cp_async16(dv + i * RPP * 128, ok ? gv + i * step : vThr, ok);
      }
    }
  };
  // Zeroes the Inf/NaN of the V chunks this thread copied for tile t (once they landed); true if one
  // of them belongs to a key some row of the CTA sees. Masked tiles only: a cheap test of the eight
  // chunks first; the clearing and the bounds of the keys the CTA sees only when it found one.
  auto sanitize_v = [&](int t, int stage) -> bool {
    unsigned char* dv = sV + stage * Tr::KV_BYTES + kvSlot;
    uint4 v[BN / RPP];
    uint32_t any = 0u;
#pragma unroll
    for (int i = 0; i < BN / RPP; ++i) {
      v[i] = *reinterpret_cast<const uint4*>(dv + i * RPP * 128);
      any |= nonfinite_any8<T>(v[i]);
    }
    if (any == 0u) return false;
    const int k0 = t * BN;
    const int64_t seeLo = (int64_t)r0 + lk - p.seq_q - p.band_left;
    const int64_t seeHi = min((int64_t)lk, (int64_t)r1 + lk - p.seq_q + p.band_right);
    bool seen = false;
#pragma unroll
    for (int i = 0; i < BN / RPP; ++i) {
      if (!zero_nonfinite8<T>(v[i])) continue;
      *reinterpret_cast<uint4*>(dv + i * RPP * 128) = v[i];
      const int key = k0 + ldRow + i * RPP;
      if (key >= seeLo && key < seeHi) seen = true;
    }
    return seen;
  };
  // The CTA's flag: some thread cleared an Inf/NaN at a key some row sees (sanitize_v returned
  // true). It lies past the V ring, in the slack of the 1024-byte alignment (at least 16 bytes: the
  // dynamic window is 16-byte aligned).
  volatile int* sSeen = reinterpret_cast<volatile int*>(sV + ST * Tr::KV_BYTES);
  if (tid == 0) *sSeen = 0;  // before the loop's first barrier
  if (nTiles > 0) load_kv(t0, 0);
  cp_async_commit();

  // This thread's accumulator rows: 16 per warp, lane / 4 and lane / 4 + 8 (h = 0, 1).
  const int warpRow0 = r0 + warp * 16;
  auto row_of = [&](int h) { return warpRow0 + lane / 4 + h * 8; };
  float o[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[i] = 0.f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
  const float sl = p.scale_log2;
  const uint32_t qWg = aQ + wg * 64 * 128;  // this warpgroup's 64 rows of every Q column block

  auto tile_step = [&](auto maskTag, int n) {
    constexpr bool MASK = decltype(maskTag)::value;
    const int k0 = (t0 + n) * BN;
    const uint32_t kT = aK + (n % ST) * Tr::KV_BYTES, vT = aV + (n % ST) * Tr::KV_BYTES;

    // S = Q K^T over HD / 16 k16 steps; within a 64-element column block a step advances the
    // descriptors by 32 bytes (the hardware applies the swizzle to the final address).
    float s[BN / 2];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      const uint32_t off = (kk % 4) * 32;
      const uint64_t da = sw128_desc(qWg + (kk / 4) * (BM * 128) + off, 0, 1024);
      const uint64_t db = sw128_desc(kT + (kk / 4) * (BN * 128) + off, 0, 1024);
      Wgmma<T, BN>::template ss<0>(s, da, db, kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(s);

    if constexpr (MASK) {
      // Scale and test each element against the band and lk; s then holds base-2 logits.
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int diag = row_of(h) + lk - p.seq_q;
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
          for (int e = 2 * h; e < 2 * h + 2; ++e) {
            const int col = k0 + j * 8 + c_col(lane, e);
            const int rel = col - diag;
            const bool off = col >= lk || rel < -p.band_left || rel > p.band_right;
            s[4 * j + e] = off ? -INFINITY : s[4 * j + e] * sl;
          }
      }
    }
    const float esc = MASK ? 1.f : sl;

    // Online softmax in base 2 (as on the ampere path); P packed to the operand type as it is made:
    // pa[kk] is the register A fragment of k16 step kk of P V.
    uint32_t pa[BN / 16][4];
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mxs[BN / 8];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) mxs[j] = fmaxf(s[4 * j + 2 * h], s[4 * j + 2 * h + 1]);
#pragma unroll
      for (int w = 1; w < BN / 8; w *= 2)
#pragma unroll
        for (int j = 0; j + w < BN / 8; j += 2 * w) mxs[j] = fmaxf(mxs[j], mxs[j + w]);
      float mx = mxs[0];
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mNew = fmaxf(mrow[h], mx * esc);
      const float mUse = (MASK && mNew == -INFINITY) ? 0.f : mNew;
      alpha[h] = fast_exp2(mrow[h] - mUse);
      mrow[h] = mNew;
      float sums[BN / 8];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const float e0 = fast_exp2(fmaf(s[4 * j + 2 * h], esc, -mUse));
        const float e1 = fast_exp2(fmaf(s[4 * j + 2 * h + 1], esc, -mUse));
        // n8 block j is half j % 2 of k16 step j / 2: registers 0, 1 (row g) or 2, 3 (row g + 8).
        pa[j / 2][(j % 2) * 2 + h] = Elem<T>::pack(e0, e1);
        sums[j] = e0 + e1;
      }
#pragma unroll
      for (int w = 1; w < BN / 8; w *= 2)
#pragma unroll
        for (int j = 0; j + w < BN / 8; j += 2 * w) sums[j] += sums[j + w];
      lrow[h] = lrow[h] * alpha[h] + sums[0];
    }
    // O is rescaled only when some row max of the warp moved (alpha is exactly 1 otherwise).
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
      for (int j = 0; j < HD / 8; ++j) {
        o[4 * j + 0] *= alpha[0];
        o[4 * j + 1] *= alpha[0];
        o[4 * j + 2] *= alpha[1];
        o[4 * j + 3] *= alpha[1];
      }
    }

    // O += P V: V's k16 step kk is rows 16 kk.. of the tile (2048 bytes on); the head dim spans
    // HD / 64 column blocks BN * 128 bytes apart (the descriptor's leading-dimension offset).
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      const uint64_t db = sw128_desc(vT + kk * 16 * 128, BN * 128, 1024);
      Wgmma<T, HD>::template rs<1>(o, pa[kk], db);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(o);
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) fence_regs(pa[kk]);  // live until the wgmma read them
  };

  // The FULL tiles run the loop body as it was before the non-finite fix. A masked tile clears its
  // V after the barrier and the next tile's copies, then takes a second barrier of its own; a thread
  // that cleared an Inf/NaN at a key some row of the CTA sees sets *sSeen, and after the store such
  // a CTA adds those values back (nonfinite_fixup). Nothing of this lives in registers across the
  // loop (with a register flag, the fix-up inlined into the epilogue and every masked tile cleared
  // in full, prefill ran 3-12% slower on the H200; bench/results/cuda-nonfinite-h200-2026-12-01.md).
  for (int n = 0; n < nTiles; ++n) {
    cp_async_wait<0>();
    fence_proxy_async();  // this thread's copies, visible to wgmma after the barrier
    __syncthreads();      // every copy of tile n landed; every warpgroup is done with tile n - 1
    if (n + 1 < nTiles) load_kv(t0 + n + 1, (n + 1) % ST);
    cp_async_commit();
    const int t = t0 + n;
    if (t < fullStart || t >= fullEnd) {
      // V cleared of Inf/NaN first (a hidden key's 0 * NaN would reach O); stage n % ST is not the
      // one the copies just issued write.
      if (sanitize_v(t, n % ST)) *sSeen = 1;
      fence_proxy_async();  // the clears, visible to wgmma after the barrier
      __syncthreads();
      tile_step(BoolTag<true>{}, n);
    } else {
      tile_step(BoolTag<false>{}, n);
    }
  }
  cp_async_wait<0>();  // nothing may be in flight into shared memory when the CTA exits
  grid_launch_dependents();

  // Epilogue: normalize, write O and LSE for this thread's two rows.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = lrow[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_of(h);
    if (row >= r1) continue;
    const float inv = l != 0.f ? 1.f / l : 0.f;  // l == 0: no allowed key; NaN stays NaN
    T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)row * p.q_row_stride + (int64_t)head * HD;
#pragma unroll
    for (int j = 0; j < HD / 8; ++j)
      *reinterpret_cast<uint32_t*>(out + j * 8 + 2 * (lane % 4)) =
          Elem<T>::pack(o[4 * j + 2 * h] * inv, o[4 * j + 2 * h + 1] * inv);
    if (lane % 4 == 0)
      p.lse[((int64_t)b * p.heads_q + head) * p.seq_q + row] =
          l != 0.f ? (mrow[h] + __log2f(l)) * 0.69314718055994531f : -INFINITY;
  }
  __syncthreads();
  if (*sSeen) nonfinite_fixup<Tr, T>(p);
}

}  // namespace hopper
}  // namespace fa

// One extern "C" entry point per (config, dtype): the addon finds it by this name.
#define FA_HOPPER_KERNEL_NAME(role, HD, BM, BN, W, S, DT) FA_KERNEL_SYMBOL(hopper, role, DT, HD, BM, BN, W, S)
#define FA_HOPPER_DEFINE_ONE(role, HD, BM, BN, W, S, DT, TYPE)                                     \
  extern "C" __global__ void __launch_bounds__(W * 32, 1)                                          \
      FA_HOPPER_KERNEL_NAME(role, HD, BM, BN, W, S, DT)(const FaFwdParams p) {                     \
    fa::hopper::fwd_kernel<fa::hopper::HopperTraits<HD, BM, BN, W, S>, TYPE>(p);                   \
  }
#define FA_HOPPER_DEFINE(role, HD, BM, BN, W, S)            \
  FA_HOPPER_DEFINE_ONE(role, HD, BM, BN, W, S, f16, __half) \
  FA_HOPPER_DEFINE_ONE(role, HD, BM, BN, W, S, bf16, __nv_bfloat16)

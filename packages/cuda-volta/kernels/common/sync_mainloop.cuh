// The mainloop of the paths without cp.async (volta sm_70, turing sm_75): each k-tile is copied
// with plain 16-byte loads and stores between two barriers, and shared memory always holds f16,
// because their tensor cores take f16 only (bf16 inputs are converted as they are staged: exact for
// |x| in f16's normal range, docs/volta-turing.md). The products run on a Tile: TuringTile
// (turing/tile.cuh, m16n8k8) or VoltaTile (volta/tile.cuh, m8n8k4), which also places Q's rows.
#pragma once
#include "launch.cuh"
#include "nonfinite.cuh"
#include "numeric.cuh"
#include "params.h"
#include "work.cuh"

namespace fa {

// 8 input values as 8 f16 (one 16-byte register set).
template <typename T> struct StageF16;
template <> struct StageF16<__half> {
  static __device__ __forceinline__ uint4 convert(uint4 v) { return v; }
};
template <> struct StageF16<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t cvt2(uint32_t w) {
    return pack_h2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
  static __device__ __forceinline__ uint4 convert(uint4 v) {
    return make_uint4(cvt2(v.x), cvt2(v.y), cvt2(v.z), cvt2(v.w));
  }
};
// Padded rows hold zeros, never garbage (0 * NaN in the products).
template <typename T>
__device__ __forceinline__ uint4 load_f16x8(const T* src, bool ok) {
  if (!ok) return make_uint4(0u, 0u, 0u, 0u);
  return StageF16<T>::convert(__ldg(reinterpret_cast<const uint4*>(src)));
}

template <class Tile, typename T, bool PAGED_ = false>
struct SyncMainloop {
  static constexpr bool PAGED = PAGED_;
  static constexpr int HD = Tile::HD, BM = Tile::BM, BN = Tile::BN, WARPS = Tile::WARPS, THREADS = WARPS * 32;
  static constexpr int LD = Tile::LD, CHUNKS = HD / 8;
  static constexpr bool KSPLIT = false;
  static constexpr bool PRODUCER_WARPGROUP = false;
  static constexpr bool STAGED_O = false;  // O stored from the fragments (store_rows)
  static constexpr bool OVERLAP = false;  // qk() and pv() return with their products done
  static constexpr bool PACK_IN_SOFTMAX = false;
  static constexpr int MIN_BLOCKS = Tile::MIN_BLOCKS;
  using Layout = typename Tile::Layout;

  const FaFwdParams& p;
  const CtaWork<T, HD>& w;
  __half* sQ;
  __half* sK;
  __half* sV;
  Tile tile;

  static __device__ __forceinline__ int warp_row0() { return (int)(threadIdx.x / 32) * 16; }
  __device__ __forceinline__ int warp_key0() const { return 0; }
  __device__ __forceinline__ bool warp_active() const { return w.r0 + warp_row0() < w.r1; }

  __device__ __forceinline__ SyncMainloop(const FaFwdParams& p_, const CtaWork<T, HD>& w_, unsigned char* smem)
      : p(p_), w(w_) {
    sQ = reinterpret_cast<__half*>(smem);
    sK = sQ + Tile::Q_HALVES;
    sV = sK + BN * LD;
    w.with_q_rows(p, [&](auto rowPtr) {
      for (int c = threadIdx.x; c < BM * CHUNKS; c += THREADS) {
        const int r = c / CHUNKS, ch = c % CHUNKS;
        const bool ok = w.r0 + r < w.r1;
        const T* src = ok ? rowPtr(w.r0 + r) + ch * 8 : w.q;
        *reinterpret_cast<uint4*>(sQ + Tile::q_offset(r) + ch * 8) = load_f16x8(src, ok);
      }
    });
    __syncthreads();
    tile.init(sQ, sV + BN * LD);
  }

  // Tile n (k-tile t) copied into shared memory; a masked tile's V cleared of Inf/NaN as it is
  // staged (a hidden key's 0 * NaN would reach O).
  __device__ __forceinline__ bool stage(int n, int t, bool masked) {
    const int k0 = t * BN;
    __syncthreads();  // every warp is done with the previous tile
    bool seen = false;
    for (int c = threadIdx.x; c < BN * CHUNKS; c += THREADS) {
      const int r = c / CHUNKS, ch = c % CHUNKS;
      // A paged cache: no rows at or past lk (their table entries may be garbage).
      const bool ok = k0 + r < (PAGED ? w.lk : p.seq_k);
      int64_t g;
      if constexpr (PAGED) g = (ok ? w.key_row(p, k0 + r) : 0) * p.k_row_stride + ch * 8;
      else g = (int64_t)(ok ? k0 + r : 0) * p.k_row_stride + ch * 8;
      *reinterpret_cast<uint4*>(sK + r * LD + ch * 8) = load_f16x8(w.k + g, ok);
      uint4 vv = load_f16x8(w.v + g, ok);
      if (masked && zero_nonfinite8<__half>(vv) && k0 + r >= w.seeLo && k0 + r < w.seeHi) seen = true;
      *reinterpret_cast<uint4*>(sV + r * LD + ch * 8) = vv;
    }
    __syncthreads();
    return seen;
  }

  __device__ __forceinline__ void qk(float (&s)[Layout::NS], int) { tile.qk(s, sK); }
  using P = typename Tile::P;
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const { return tile.pack_p(s); }
  // Never called (PACK_IN_SOFTMAX is false); named by the body, which CUDA 11.8's front end checks
  // even in a discarded branch of a generic lambda.
  __device__ __forceinline__ void pack_p_row(P&, const float (&)[Layout::NS], int) const {}
  __device__ __forceinline__ void pv(float (&o)[Layout::NO], const P& pf, int) { tile.pv(o, pf, sV); }

  __device__ __forceinline__ bool finish(bool seen) {
    grid_launch_dependents();
    return __syncthreads_or(seen);
  }
};

}  // namespace fa

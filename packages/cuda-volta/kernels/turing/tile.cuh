// The turing path's tile (sm_75): the m16n8 warp GEMMs (common/mma_m16n8.cuh) on m16n8k8, two
// instructions per k16 step; Q's rows padded by 8 halves, as K and V.
#pragma once
#include "../common/mma_m16n8.cuh"
#include "configs.h"

namespace fa {

template <int HD_, int BM_, int BN_, int WARPS_>
struct TuringTile {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_;
  // Rows padded by 8 halves: the 8 row addresses of each ldmatrix phase land 16 bytes apart modulo
  // 128, on 8 distinct bank groups, for every HD that is a multiple of 16.
  static constexpr int LD = HD + 8, NT_S = BN / 8, NT_O = HD / 8;
  static constexpr int Q_HALVES = BM * LD;
  // Q stays in registers up to hd128 (32 registers); at hd256 it is re-read from shared memory each
  // k-tile so that O (128 registers) fits without spilling.
  static constexpr bool Q_IN_REGS = HD <= 128;
  static constexpr int MIN_BLOCKS = 0;
  static_assert(BM == 16 * WARPS && HD % 16 == 0 && BN % 16 == 0, "tile shape");
  using Layout = M16n8Layout<1, NT_S, NT_O>;

  const __half* wQ;
  int lane;
  FragA qf[1][HD / 16];

  static __device__ __forceinline__ int q_offset(int r) { return r * LD; }

  __device__ __forceinline__ void init(const __half* sQ, __half*) {
    lane = threadIdx.x % 32;
    wQ = sQ + (threadIdx.x / 32) * 16 * LD;
    if constexpr (Q_IN_REGS) {
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) load_a(qf[0][kk], wQ + kk * 16, LD, lane);
    }
  }
  __device__ __forceinline__ void qk(float (&s)[Layout::NS], const __half* sK) {
    qk_m16n8<MmaM16n8k8x2, __half, 1, NT_S, HD, LD, Q_IN_REGS>(s, qf, wQ, sK, lane);
  }
  using P = PM16n8<1, NT_S>;
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const { return pack_p_m16n8<__half, 1, NT_S>(s); }
  __device__ __forceinline__ void pv(float (&o)[Layout::NO], const P& pf, const __half* sV) {
    pv_m16n8<MmaM16n8k8x2, __half, 1, NT_S, NT_O, LD>(o, pf, sV, lane);
  }
};

}  // namespace fa

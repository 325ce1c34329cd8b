// The volta path's tile (sm_70, mma.sync.m8n8k4): the warp GEMMs of attention on the quad-pair
// layout (docs/volta-turing.md has the pictures). No ldmatrix: every operand is a run of 4
// consecutive halves of one row-major row, fetched two k4 steps at a time with 16-byte loads.
//
// m8n8k4 runs as four independent 8x8x4 products, one per quad-pair (QP). QP q is lanes 4q..4q+3
// ("low quad", fragment index ai = lane % 4) and 4q+16..4q+19 ("high quad", ai = 4 + lane % 4).
// Register layouts (PTX ISA, "Matrix fragments for mma.m8n8k4 with .f16"):
//   A 8x4 .row : lane holds row ai, k = 0..3            (two .f16x2 registers)
//   B 4x8 .col : lane holds column n = ai, k = 0..3      (K^T: one key, 4 consecutive head-dim values)
//   B 4x8 .row : lane holds k = lane % 4, n = 4h..4h+3   (V: one key, 4 consecutive head-dim values)
//   C 8x8 f32  : c[i] at row (lane & 1) + 2 * ((i >> 1) & 1) + 4h, col (lane & 2) + (i & 1) + (i & 4)
// with h = lane >= 16 (the k order inside a 16-byte chunk is the same for A and B, so any pairing
// of k values is valid as long as both sides use it).
//
// Work split inside a warp: a warp owns 16 query rows; its QP q is (r, c) = (q & 1, q >> 1):
//   S = Q K^T : QP (r, c) computes rows 8r..8r+7 against the key blocks 16m + 8c .. +7.
//   O = P V   : QP (r, c) computes rows 8r..8r+7, output columns 16e..16e+15 for e = 2t + c.
// P (f16) goes from the S accumulators to the PV operands through a per-warp, XOR-swizzled buffer
// in shared memory: the m8n8k4 accumulator layout is not an operand layout, and the buffer costs
// one 8-byte store and one 16-byte load per 32 values, with no bank conflicts, where a register
// exchange would cost 6 shuffles per 8x8 block.
//
// Accumulation: f32 for both products. V100's tensor cores run f16 and f32 accumulation at the same
// rate, so f16 accumulation of PV would buy only registers, and cost accuracy and range.
#pragma once
#include "../common/numeric.cuh"
#include "configs.h"

#ifndef FA_VOLTA_PLAIN_LAYOUT
#define FA_VOLTA_PLAIN_LAYOUT 0
#endif

namespace fa {

// D += A * B, A row-major, B column-major (S = Q K^T); d: 8 accumulators.
__device__ __forceinline__ void mma884_rc(float* d, uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m8n8k4.row.col.f32.f16.f16.f32 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9}, {%10,%11}, "
      "{%0,%1,%2,%3,%4,%5,%6,%7};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a0), "r"(a1), "r"(b0), "r"(b1));
}
// D += A * B, A and B row-major (O = P V).
__device__ __forceinline__ void mma884_rr(float* d, uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m8n8k4.row.row.f32.f16.f16.f32 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9}, {%10,%11}, "
      "{%0,%1,%2,%3,%4,%5,%6,%7};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a0), "r"(a1), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint4 lds128(const __half* p) { return *reinterpret_cast<const uint4*>(p); }

// Lane roles: QP (rq, cq); hq: high quad; ai: the lane's A row / B column inside its QP; l0, l1:
// its accumulator row and column bits.
struct VoltaLane {
  static __device__ __forceinline__ int rq(int lane) { return (lane >> 2) & 1; }
  static __device__ __forceinline__ int cq(int lane) { return (lane >> 3) & 1; }
  static __device__ __forceinline__ int hq(int lane) { return lane >> 4; }
  static __device__ __forceinline__ int ai(int lane) { return (lane & 3) + 4 * (lane >> 4); }
  static __device__ __forceinline__ int l0(int lane) { return lane & 1; }
  static __device__ __forceinline__ int l1(int lane) { return (lane >> 1) & 1; }
};

// S: NJ blocks of 8 accumulators, element (m, k) at 8m + k; O: EH x 2 blocks, element (t, ab, k) at
// (2t + ab) * 8 + k. Keys are permuted inside each 8-key block (B column n reads key 0,1,4,5,2,3,6,7
// for n = 0..7), so a lane's four S accumulators of one row are 4 consecutive keys.
// A row's values sit on lanes l1 = 0, 1 of QP c = 0 and of QP c = 1: lane masks 2 and 8.
template <int HD, int BN>
struct VoltaLayout : RowLanes<2, 8> {
  static constexpr int NJ = BN / 16, E = HD / 16, EH = (E + 1) / 2;
  static constexpr int ROWS = 2, NS = NJ * 8, NO = EH * 2 * 8;
  static constexpr bool O_OVERHANG = E % 2 == 1;  // odd E (hd 80): QP c = 1's last block is discarded
  static __device__ __forceinline__ constexpr int s_slot(int i) { return ((i % 8) >> 1) & 1; }
  static __device__ __forceinline__ constexpr int o_slot(int i) { return ((i % 8) >> 1) & 1; }
  static __device__ __forceinline__ int s_col(int lane, int i) {
    const int k = i % 8;
    return 16 * (i / 8) + 8 * VoltaLane::cq(lane) + 4 * VoltaLane::l1(lane) + 2 * ((k >> 2) & 1) + (k & 1);
  }
  static __device__ __forceinline__ int o_col(int lane, int i) {
    const int k = i % 8, t = i / 16, ab = (i / 8) % 2;
    return 16 * (2 * t + VoltaLane::cq(lane)) + 8 * (k >> 2) + 4 * ab + 2 * VoltaLane::l1(lane) + (k & 1);
  }
  static __device__ __forceinline__ int row(int lane, int slot) {
    return 8 * VoltaLane::rq(lane) + VoltaLane::l0(lane) + 2 * slot + 4 * VoltaLane::hq(lane);
  }
  static __device__ __forceinline__ bool owns_lse(int lane) { return VoltaLane::l1(lane) == 0 && VoltaLane::cq(lane) == 0; }
};

template <int HD_, int BM_, int BN_, int WARPS_>
struct VoltaTile {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_;
  static constexpr bool PLAIN = FA_VOLTA_PLAIN_LAYOUT != 0;
  // Row stride of Q, K, V in halves. HD + 8 makes it an odd number of 16-byte units (HD / 8 is even
  // for every supported HD), so the 4 (or 8) consecutive rows a quarter-warp reads at one column
  // fall in distinct 16-byte bank groups.
  static constexpr int LD = PLAIN ? HD : HD + 8;
  // Rows 8..15 of each warp's Q block are shifted by 64 bytes (4 bank groups): a quarter-warp of
  // the S product reads row i of QP r=0 and row 8+i of QP r=1 together, and no row stride can
  // separate rows 8 apart (8 * odd = 0 mod 8 units).
  static constexpr int QSHIFT = PLAIN ? 0 : 32;
  static constexpr int QW = 16 * LD + QSHIFT;  // halves per warp of Q
  static constexpr int PW = 16 * 64;           // halves per warp of P (rows of 8 x 16-byte units)
  static constexpr int Q_HALVES = WARPS * QW;
  static constexpr int CH = HD / 8, E = HD / 16, EH = (E + 1) / 2, NJ = BN / 16, KC = BN / 8;
  static constexpr int MIN_BLOCKS = 1;
  static_assert((WARPS * QW + 2 * BN * LD + WARPS * PW) * 2 == FA_VOLTA_SMEM(HD, BM, BN, WARPS, 1),
                "configs.h and the tile disagree");
  static_assert(BM == 16 * WARPS && BN % 16 == 0 && BN <= 64 && HD % 16 == 0, "tile shape");
  using Layout = VoltaLayout<HD, BN>;

  const __half* wQ;  // this lane's Q row (8r + ai) of its warp's block
  __half* wP;        // this warp's P buffer
  int lane;

  // Offset (halves) of CTA row r's Q: warp r / 16's block, row r % 16 (rows 8..15 shifted).
  static __device__ __forceinline__ int q_offset(int r) {
    const int rho = r % 16;
    return (r / 16) * QW + rho * LD + (rho >= 8 ? QSHIFT : 0);
  }
  // Offset (halves) of 16-byte unit u of row rho of a warp's P block. The XOR keeps both the 8-byte
  // stores from the S accumulators (rows 8r + l0 (+2) (+4h), units 2m + c) and the 16-byte operand
  // loads (rows 8r + ai, one unit) on distinct bank groups; f's three bits are row bits 1, 0 and 3.
  static __device__ __forceinline__ int p_off(int rho, int u) {
    if (PLAIN) return rho * 64 + u * 8;
    const int f = ((rho >> 1) & 1) | ((rho & 1) << 1) | (((rho >> 3) & 1) << 2);
    return rho * 64 + ((u ^ f) << 3);
  }

  __device__ __forceinline__ void init(const __half* sQ, __half* sP) {
    lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    wQ = sQ + q_offset(warp * 16 + 8 * VoltaLane::rq(lane) + VoltaLane::ai(lane));
    wP = sP + warp * PW;
  }

  __device__ __forceinline__ void qk(float (&s)[Layout::NS], const __half* sK) {
    const int ai = VoltaLane::ai(lane);
    const int kRow = 8 * VoltaLane::cq(lane) + ((ai & 1) | ((ai & 2) << 1) | ((ai & 4) >> 1));
#pragma unroll
    for (int i = 0; i < Layout::NS; ++i) s[i] = 0.f;
    // Partly unrolled: a full unroll hoists every Q and K load of the tile (CH * (NJ + 1) 16-byte
    // registers) and spills at hd96/hd128.
#pragma unroll 4
    for (int kk = 0; kk < CH; ++kk) {
      const uint4 a = lds128(wQ + kk * 8);
#pragma unroll
      for (int m = 0; m < NJ; ++m) {
        const uint4 bk = lds128(sK + (16 * m + kRow) * LD + kk * 8);
        mma884_rc(s + 8 * m, a.x, a.y, bk.x, bk.y);
        mma884_rc(s + 8 * m, a.z, a.w, bk.z, bk.w);
      }
    }
  }

  // P goes through this warp's buffer in shared memory: pack_p stores it, pv reads it.
  struct P {};
  __device__ __forceinline__ P pack_p(const float (&s)[Layout::NS]) const {
    const int rq = VoltaLane::rq(lane), cq = VoltaLane::cq(lane), hq = VoltaLane::hq(lane);
    const int l0 = VoltaLane::l0(lane), l1 = VoltaLane::l1(lane);
    // P -> this warp's swizzled buffer: row 8r + l0 + 2b + 4h, keys 16m + 8c + 4l1 .. +3.
#pragma unroll
    for (int m = 0; m < NJ; ++m)
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const int rho = 8 * rq + l0 + 2 * b + 4 * hq;
        uint2 v;
        v.x = pack_h2(s[8 * m + 2 * b], s[8 * m + 2 * b + 1]);
        v.y = pack_h2(s[8 * m + 2 * b + 4], s[8 * m + 2 * b + 5]);
        *reinterpret_cast<uint2*>(wP + p_off(rho, 2 * m + cq) + 4 * l1) = v;
      }
    __syncwarp();
    return P{};
  }

  __device__ __forceinline__ void pv(float (&o)[Layout::NO], P, const __half* sV) {
    const int rq = VoltaLane::rq(lane), cq = VoltaLane::cq(lane), hq = VoltaLane::hq(lane), a4 = lane & 3;
    // O += P V. A: P row 8r + ai, 8 keys per 16-byte load (two k4 steps). B: V rows (keys) 8kc + 4s
    // + a4, columns 16e + 8h .. +7: halves 0..3 feed accumulator block 0 (columns 16e + 8h' + 0..3),
    // halves 4..7 block 1 (16e + 8h' + 4..7).
    const int pRow = 8 * rq + VoltaLane::ai(lane);
#pragma unroll 2
    for (int kc = 0; kc < KC; ++kc) {
      const uint4 pa = lds128(wP + p_off(pRow, kc));
#pragma unroll
      for (int t = 0; t < EH; ++t) {
        const int e = min(2 * t + cq, E - 1);  // odd E: QP c = 1's last block is computed and dropped
        const __half* vp = sV + (8 * kc + a4) * LD + 16 * e + 8 * hq;
        const uint4 v0 = lds128(vp);
        const uint4 v1 = lds128(vp + 4 * LD);
        mma884_rr(o + (2 * t) * 8, pa.x, pa.y, v0.x, v0.y);
        mma884_rr(o + (2 * t + 1) * 8, pa.x, pa.y, v0.z, v0.w);
        mma884_rr(o + (2 * t) * 8, pa.z, pa.w, v1.x, v1.y);
        mma884_rr(o + (2 * t + 1) * 8, pa.z, pa.w, v1.z, v1.w);
      }
    }
    __syncwarp();  // P is read before the next tile overwrites it
  }
};

}  // namespace fa

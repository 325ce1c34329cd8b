// Tile primitives of the m16n8 family: Turing's mma.sync.m16n8k8 (two per k16 step) and Ampere's
// m16n8k16, with ldmatrix loads from shared memory. Both share the fragment layouts below, so the
// warp GEMMs of attention (S = Q K^T, O += P V) are written once here over an `Op` that is either
// instruction. Hopper's wgmma accumulators have the same per-warp layout (M16n8Layout).
//
// Register layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), lane = 4 * g + t:
//   A 16x16 (row-major): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)
//   B 16x8  (k x n):     b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8..2t+9, n g)
//   C 16x8  (f32):       c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1)
// m16n8k8's fragments are the two k-halves of these: A = {a0, a1} then {a2, a3}, B = {b0} then {b1}.
// So the C fragments of two neighbouring n-tiles are exactly one A fragment: attention's P goes
// from the first product's accumulators to the second's operand without touching shared memory.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "cp_async.cuh"
#include "numeric.cuh"

namespace fa {

struct FragA { uint32_t x[4]; };  // 16x16 operand, 8 elements per lane
struct FragB { uint32_t x[2]; };  // 16x8 operand, 4 elements per lane

// D (4 floats at d) += A * B, one k16 step.
template <typename E> struct MmaM16n8k16;
template <> struct MmaM16n8k16<__half> {
  static __device__ __forceinline__ void mma(float* d, const FragA& a, const FragB& b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
  }
};
template <> struct MmaM16n8k16<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float* d, const FragA& a, const FragB& b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
  }
};
// Turing (sm_75): f16 only, a k16 step as two k8 instructions.
struct MmaM16n8k8x2 {
  static __device__ __forceinline__ void mma8(float* d, uint32_t a0, uint32_t a1, uint32_t b0) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(b0));
  }
  static __device__ __forceinline__ void mma(float* d, const FragA& a, const FragB& b) {
    mma8(d, a.x[0], a.x[1], b.x[0]);
    mma8(d, a.x[2], a.x[3], b.x[1]);
  }
};

// A 16x16 tile of a row-major shared-memory matrix (row stride `ld` elements) as an A fragment.
template <typename E>
__device__ __forceinline__ void load_a(FragA& a, const E* tile, int ld, int lane) {
  const E* p = tile + (lane % 16) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3])
               : "r"(smem_addr(p)));
}
// Two B fragments (n-tiles n0..n0+7 and n0+8..n0+15, one k16 step) from an [n][k] row-major matrix
// (K in S = Q K^T: rows are keys, columns the head dim).
template <typename E>
__device__ __forceinline__ void load_b_nk(FragB& b0, FragB& b1, const E* tile, int ld, int lane) {
  const E* p = tile + ((lane % 8) + (lane / 16) * 8) * ld + ((lane / 8) % 2) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}
// Two B fragments from a [k][n] row-major matrix (V in O = P V: rows are keys), transposed on load.
template <typename E>
__device__ __forceinline__ void load_b_kn(FragB& b0, FragB& b1, const E* tile, int ld, int lane) {
  const E* p = tile + ((lane % 8) + ((lane / 8) % 2) * 8) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}

// The accumulator layout of MT m16 tiles by NT_S (S) or NT_O (O) n8 tiles, flattened: element
// (mt, n, e) at index (mt * NT + n) * 4 + e. Row slot 2 * mt + e / 2 is warp row 16 mt + g (+8);
// elements 2c and 2c + 1 are neighbouring columns of one row. OVERHANG: O has columns past the
// head dim (a padded one), which the body does not store.
template <int MT, int NT_S, int NT_O, bool OVERHANG = false>
struct M16n8Layout : RowLanes<1, 2> {  // a row's values sit on the 4 lanes of a quad
  static constexpr int ROWS = 2 * MT, NS = MT * NT_S * 4, NO = MT * NT_O * 4;
  static constexpr bool O_OVERHANG = OVERHANG;
  static __device__ __forceinline__ constexpr int s_slot(int i) { return (i / (4 * NT_S)) * 2 + (i % 4) / 2; }
  static __device__ __forceinline__ constexpr int o_slot(int i) { return (i / (4 * NT_O)) * 2 + (i % 4) / 2; }
  static __device__ __forceinline__ int s_col(int lane, int i) { return ((i / 4) % NT_S) * 8 + 2 * (lane % 4) + (i & 1); }
  static __device__ __forceinline__ int o_col(int lane, int i) { return ((i / 4) % NT_O) * 8 + 2 * (lane % 4) + (i & 1); }
  static __device__ __forceinline__ int row(int lane, int slot) { return (slot / 2) * 16 + lane / 4 + (slot % 2) * 8; }
  static __device__ __forceinline__ bool owns_lse(int lane) { return lane % 4 == 0; }
};

// P as the A operands of P V: fragment [mt][kk] is k16 step kk of m-tile mt, made of P's n-tiles
// 2 kk and 2 kk + 1 packed to E (the layouts match: this file's header). Packed right after the
// softmax, so the f32 probabilities die there instead of living until the product (which halves
// P's registers, as FlashAttention-2 does before its second GEMM).
template <int MT, int NT_S>
struct PM16n8 {
  FragA x[MT][NT_S / 2];
};
template <typename E, int MT, int NT_S>
__device__ __forceinline__ PM16n8<MT, NT_S> pack_p_m16n8(const float* s) {
  PM16n8<MT, NT_S> p;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int kk = 0; kk < NT_S / 2; ++kk) {
      const float* lo = s + (mt * NT_S + 2 * kk) * 4;
      const float* hi = lo + 4;
      p.x[mt][kk] = FragA{{Elem<E>::pack(lo[0], lo[1]), Elem<E>::pack(lo[2], lo[3]), Elem<E>::pack(hi[0], hi[1]),
                           Elem<E>::pack(hi[2], hi[3])}};
    }
  return p;
}

// Packs only row slot r of P (m-tile r / 2, half r % 2): n-tile j of that row goes to register
// (j % 2) * 2 + r % 2 of fragment [r / 2][j / 2], as pack_p_m16n8 places it.
template <typename E, int MT, int NT_S>
__device__ __forceinline__ void pack_p_row_m16n8(PM16n8<MT, NT_S>& p, const float* s, int r) {
  const int mt = r / 2, h = r % 2;
#pragma unroll
  for (int j = 0; j < NT_S; ++j) {
    const float* e = s + (mt * NT_S + j) * 4 + 2 * h;
    p.x[mt][j / 2].x[(j % 2) * 2 + h] = Elem<E>::pack(e[0], e[1]);
  }
}

// The warp GEMMs over tiles in shared memory with rows padded to LD elements.
//   S[MT][NT_S] = Q (warp rows, HD) K^T (BN keys): Q from registers (qf) or shared memory (wQ);
//   fragments of k16 step kk + 1 are loaded before the mmas of step kk (KPIPE), so no ldmatrix
//   result is consumed right after its issue.
template <class Op, typename E, int MT, int NT_S, int HD, int LD, bool Q_IN_REGS>
__device__ __forceinline__ void qk_m16n8(float* s, const FragA (*qf)[HD / 16], const E* wQ, const E* tK, int lane) {
  constexpr int KS = HD / 16;
#pragma unroll
  for (int i = 0; i < MT * NT_S * 4; ++i) s[i] = 0.f;
  FragA qa[2][MT];
  FragB kb[2][NT_S];
  auto load_step = [&](int kk, int buf) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      if constexpr (Q_IN_REGS) qa[buf][mt] = qf[mt][kk];
      else load_a(qa[buf][mt], wQ + mt * 16 * LD + kk * 16, LD, lane);
    }
#pragma unroll
    for (int j = 0; j < NT_S; j += 2) load_b_nk(kb[buf][j], kb[buf][j + 1], tK + j * 8 * LD + kk * 16, LD, lane);
  };
  load_step(0, 0);
#pragma unroll
  for (int kk = 0; kk < KS; ++kk) {
    if (kk + 1 < KS) load_step(kk + 1, (kk + 1) % 2);
#pragma unroll
    for (int j = 0; j < NT_S; ++j)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) Op::mma(s + (mt * NT_S + j) * 4, qa[kk % 2][mt], kb[kk % 2][j]);
  }
}

//   O[MT][NT_O] += P (warp rows, BN keys, packed from S's accumulators) V (BN keys, HD).
template <class Op, typename E, int MT, int NT_S, int NT_O, int LD>
__device__ __forceinline__ void pv_m16n8(float* o, const PM16n8<MT, NT_S>& p, const E* tV, int lane) {
#pragma unroll
  for (int kk = 0; kk < NT_S / 2; ++kk) {
    FragA pa[MT];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) pa[mt] = p.x[mt][kk];
#pragma unroll
    for (int d = 0; d < NT_O; d += 2) {
      FragB b0, b1;
      load_b_kn(b0, b1, tV + kk * 16 * LD + d * 8, LD, lane);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        Op::mma(o + (mt * NT_O + d) * 4, pa[mt], b0);
        Op::mma(o + (mt * NT_O + d + 1) * 4, pa[mt], b1);
      }
    }
  }
}

}  // namespace fa

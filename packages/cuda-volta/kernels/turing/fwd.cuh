// FlashAttention-2 forward for the turing path (sm_75): mma.sync.m16n8k8 (f16 operands, f32
// accumulators), ldmatrix for the fragments, and plain 16-byte loads and stores for the global ->
// shared copies (sm_75 has no cp.async). Same contract, grid, block and split-KV partials as the
// ampere path (kernels/ampere/fwd.cuh): grid (ceil(rows_total / BM), pack_gqa ? heads_kv : heads_q,
// batch * num_splits), WARPS * 32 threads, FA_TURING_SMEM bytes of dynamic shared memory.
//
// The m16n8k8 fragments are the two k-halves of m16n8k16's: A 16x8 = {a0, a1} (rows g, g+8,
// columns 2t..2t+1), B 8x8 = {b0} (k 2t..2t+1, column g), C as m16n8k16. So the ampere register
// tiles carry over unchanged and each k16 step is two instructions; P goes from the S accumulators
// to the PV operand in registers, as on Ampere.
#pragma once
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/tile_mask.cuh"
#include "../volta/mma_sm70.cuh"  // Io<T> (f16 staging of f16/bf16), pack_h2, fast_exp2
#include "../common/kernel_names.h"
#include "configs.h"

namespace fa_turing {
using fa_volta::Io;
using fa_volta::pack_h2;
using fa_volta::fast_exp2;

struct FragA { uint32_t x[4]; };  // 16x16 (two m16n8k8 A operands)
struct FragB { uint32_t x[2]; };  // 16x8 (two m16n8k8 B operands)
struct FragC { float x[4]; };

__device__ __forceinline__ void mma1688(FragC& d, uint32_t a0, uint32_t a1, uint32_t b0) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
               : "+f"(d.x[0]), "+f"(d.x[1]), "+f"(d.x[2]), "+f"(d.x[3])
               : "r"(a0), "r"(a1), "r"(b0));
}
// A k16 step as two k8 instructions.
__device__ __forceinline__ void mma_k16(FragC& d, const FragA& a, const FragB& b) {
  mma1688(d, a.x[0], a.x[1], b.x[0]);
  mma1688(d, a.x[2], a.x[3], b.x[1]);
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void load_a(FragA& a, const __half* tile, int ld, int lane) {
  const __half* p = tile + (lane % 16) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void load_b_nk(FragB& b0, FragB& b1, const __half* tile, int ld, int lane) {
  const __half* p = tile + ((lane % 8) + (lane / 16) * 8) * ld + ((lane / 8) % 2) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void load_b_kn(FragB& b0, FragB& b1, const __half* tile, int ld, int lane) {
  const __half* p = tile + ((lane % 8) + ((lane / 8) % 2) * 8) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ int c_col(int lane, int e) { return 2 * (lane % 4) + (e & 1); }

template <int HD_, int BM_, int BN_, int WARPS_>
struct TuringTraits {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, THREADS = WARPS * 32;
  // Rows padded by 8 halves: the 8 row addresses of each ldmatrix phase land 16 bytes apart
  // modulo 128, on 8 distinct bank groups, for every HD that is a multiple of 16.
  static constexpr int LD = HD + 8;
  static constexpr int KSTEPS_QK = HD / 16, NT_S = BN / 8, KSTEPS_PV = BN / 16, NT_O = HD / 8, CH = HD / 8;
  // Q stays in registers up to hd128 (32 registers); at hd256 it is re-read from shared memory each
  // k-tile so that O (128 registers) fits without spilling.
  static constexpr bool QREG = HD <= 128;
  static constexpr int SMEM = FA_TURING_SMEM(HD, BM, BN, WARPS, 1);
  static_assert(BM == 16 * WARPS && HD % 16 == 0 && BN % 16 == 0, "tile shape");
};

template <typename T>
__device__ __forceinline__ uint4 ldg_h8(const T* src, bool ok) {
  if (!ok) return make_uint4(0u, 0u, 0u, 0u);
  return Io<T>::to_h8(__ldg(reinterpret_cast<const uint4*>(src)));
}

template <typename Tr, typename T>
__device__ __forceinline__ void fwd_kernel(const FaFwdParams& p) {
  constexpr int HD = Tr::HD, BM = Tr::BM, BN = Tr::BN, LD = Tr::LD, CH = Tr::CH;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sQ = reinterpret_cast<__half*>(smem_raw);
  __half* sK = sQ + BM * LD;
  __half* sV = sK + BN * LD;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int tile = blockIdx.x, head = blockIdx.y;
  const int b = blockIdx.z / p.num_splits, split = blockIdx.z % p.num_splits;
  const int lk = p.seqlens_k ? p.seqlens_k[b] : p.seq_k;
  const int kvh = p.pack_gqa ? head : head / p.group;
  const int r0 = tile * BM;
  const int r1 = min(p.rows_total, r0 + BM);
  const int q0 = p.pack_gqa ? r0 / p.group : r0;
  const int q1 = p.pack_gqa ? (r1 - 1) / p.group + 1 : r1;
  const int64_t dMin = (int64_t)q0 + lk - p.seq_q, dMax = (int64_t)q1 - 1 + lk - p.seq_q;

  int kStart, kEnd;
  fa_k_range(p.band_left, p.band_right, lk, dMin, dMax, BN, &kStart, &kEnd);
  const int kTiles = (p.seq_k + BN - 1) / BN;
  const int s0 = (int)((int64_t)split * kTiles / p.num_splits);
  const int s1 = (int)((int64_t)(split + 1) * kTiles / p.num_splits);
  const int t0 = max(kStart, s0), t1 = min(kEnd, s1);
  const int nTiles = max(0, t1 - t0);
  // Keys some row of this CTA may see (nonfinite.cuh: Inf/NaN of V elsewhere is garbage to ignore).
  const int64_t kSeeLo = dMin - p.band_left, kSeeHi = min((int64_t)lk, dMax + p.band_right + 1);

  const T* qBase = static_cast<const T*>(p.q) + (int64_t)b * p.q_batch_stride;
  const T* kBase = static_cast<const T*>(p.k) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;
  const T* vBase = static_cast<const T*>(p.v) + (int64_t)b * p.k_batch_stride + (int64_t)kvh * HD;

  for (int c = tid; c < BM * CH; c += Tr::THREADS) {
    const int r = c / CH, ch = c % CH, row = r0 + r;
    const bool ok = row < r1;
    const T* src;
    if (p.pack_gqa) {
      const int i = ok ? row / p.group : 0, h = kvh * p.group + (ok ? row % p.group : 0);
      src = qBase + (int64_t)i * p.q_row_stride + (int64_t)h * HD + ch * 8;
    } else {
      src = qBase + (int64_t)(ok ? row : 0) * p.q_row_stride + (int64_t)head * HD + ch * 8;
    }
    *reinterpret_cast<uint4*>(sQ + r * LD + ch * 8) = ldg_h8(src, ok);
  }

  const int warpRow0 = r0 + warp * 16;
  const bool warpActive = warpRow0 < r1;
  int qrow[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = warpRow0 + lane / 4 + h * 8;
    qrow[h] = p.pack_gqa ? row / p.group : row;
  }
  const __half* wQ = sQ + warp * 16 * LD;

  __syncthreads();
  FragA qf[Tr::QREG ? Tr::KSTEPS_QK : 1];
  if (Tr::QREG) {
#pragma unroll
    for (int kk = 0; kk < (Tr::QREG ? Tr::KSTEPS_QK : 1); ++kk) load_a(qf[kk], wQ + kk * 16, LD, lane);
  }

  FragC o[Tr::NT_O];
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
#pragma unroll
  for (int d = 0; d < Tr::NT_O; ++d) o[d] = FragC{{0.f, 0.f, 0.f, 0.f}};

  for (int n = 0; n < nTiles; ++n) {
    const int t = t0 + n, k0 = t * BN;
    const int k1 = min(p.seq_k, k0 + BN);
    const int kind = fa_tile_kind(p.band_left, p.band_right, lk, dMin, dMax, k0, k1);
    const bool masked = kind != FA_TILE_FULL || k0 + BN > lk;
    __syncthreads();
    // Masked tiles: V is cleared of Inf/NaN as it is staged (a hidden key's 0 * NaN would reach O);
    // `seen`: one of them belongs to a key some row of the CTA sees.
    bool seen = false;
    for (int c = tid; c < BN * CH; c += Tr::THREADS) {
      const int r = c / CH, ch = c % CH;
      const bool ok = k0 + r < p.seq_k;
      const int64_t g = (int64_t)(ok ? k0 + r : 0) * p.k_row_stride + ch * 8;
      *reinterpret_cast<uint4*>(sK + r * LD + ch * 8) = ldg_h8(kBase + g, ok);
      uint4 vv = ldg_h8(vBase + g, ok);
      if (masked && fa::zero_nonfinite8<__half>(vv) && k0 + r >= kSeeLo && k0 + r < kSeeHi) seen = true;
      *reinterpret_cast<uint4*>(sV + r * LD + ch * 8) = vv;
    }
    bool fix = false;
    if (masked) fix = __syncthreads_or(seen);
    else __syncthreads();
    if (!warpActive) continue;

    FragC s[Tr::NT_S];
#pragma unroll
    for (int j = 0; j < Tr::NT_S; ++j) s[j] = FragC{{0.f, 0.f, 0.f, 0.f}};
#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_QK; ++kk) {
      FragA qa;
      if (Tr::QREG)
        qa = qf[Tr::QREG ? kk : 0];
      else
        load_a(qa, wQ + kk * 16, LD, lane);
#pragma unroll
      for (int j = 0; j < Tr::NT_S; j += 2) {
        FragB b0, b1;
        load_b_nk(b0, b1, sK + j * 8 * LD + kk * 16, LD, lane);
        mma_k16(s[j], qa, b0);
        mma_k16(s[j + 1], qa, b1);
      }
    }

#pragma unroll
    for (int j = 0; j < Tr::NT_S; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j].x[e] * p.scale_log2;
        if (masked) {
          const int col = k0 + j * 8 + c_col(lane, e);
          const int64_t rel = (int64_t)col - ((int64_t)qrow[e >> 1] + lk - p.seq_q);
          if (col >= lk || rel < -(int64_t)p.band_left || rel > p.band_right) x = -INFINITY;
        }
        s[j].x[e] = x;
      }

#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = mrow[h];
#pragma unroll
      for (int j = 0; j < Tr::NT_S; ++j) mx = fmaxf(mx, fmaxf(s[j].x[2 * h], s[j].x[2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mUse = mx == -INFINITY ? 0.f : mx;
      const float alpha = fast_exp2(mrow[h] - mUse);
      mrow[h] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < Tr::NT_S; ++j) {
        const float e0 = fast_exp2(s[j].x[2 * h] - mUse), e1 = fast_exp2(s[j].x[2 * h + 1] - mUse);
        s[j].x[2 * h] = e0;
        s[j].x[2 * h + 1] = e1;
        sum += e0 + e1;
      }
      lrow[h] = lrow[h] * alpha + sum;
#pragma unroll
      for (int d = 0; d < Tr::NT_O; ++d) {
        o[d].x[2 * h] *= alpha;
        o[d].x[2 * h + 1] *= alpha;
      }
    }

#pragma unroll
    for (int kk = 0; kk < Tr::KSTEPS_PV; ++kk) {
      FragA pa;
      pa.x[0] = pack_h2(s[2 * kk].x[0], s[2 * kk].x[1]);
      pa.x[1] = pack_h2(s[2 * kk].x[2], s[2 * kk].x[3]);
      pa.x[2] = pack_h2(s[2 * kk + 1].x[0], s[2 * kk + 1].x[1]);
      pa.x[3] = pack_h2(s[2 * kk + 1].x[2], s[2 * kk + 1].x[3]);
#pragma unroll
      for (int d = 0; d < Tr::NT_O; d += 2) {
        FragB b0, b1;
        load_b_kn(b0, b1, sV + kk * 16 * LD + d * 8, LD, lane);
        mma_k16(o[d], pa, b0);
        mma_k16(o[d + 1], pa, b1);
      }
    }
    if (fix) {  // the Inf/NaN of V zeroed above at keys this thread's rows see
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        if (warpRow0 + lane / 4 + (e >> 1) * 8 >= r1) continue;
        int lo, hi;
        fa::visible_keys(qrow[e >> 1], lk, p.seq_q, p.band_left, p.band_right, k0, k0 + BN, &lo, &hi);
        if (lo >= hi) continue;
#pragma unroll
        for (int d = 0; d < Tr::NT_O; ++d) o[d].x[e] += fa::nonfinite_sum(vBase, p.k_row_stride, d * 8 + c_col(lane, e), lo, hi);
      }
    }
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = lrow[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = warpRow0 + lane / 4 + h * 8;
    if (!warpActive || row >= r1) continue;
    const float inv = l != 0.f ? 1.f / l : 0.f;  // l == 0: no allowed key; NaN stays NaN
    const float lse = l != 0.f ? (mrow[h] + __log2f(l)) * 0.69314718055994531f : -INFINITY;
    const int i = qrow[h];
    const int hq = p.pack_gqa ? kvh * p.group + row % p.group : head;
    const int64_t lseIdx = ((int64_t)b * p.heads_q + hq) * p.seq_q + i;
    if (p.num_splits == 1) {
      T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)hq * HD;
#pragma unroll
      for (int d = 0; d < Tr::NT_O; ++d)
        *reinterpret_cast<uint32_t*>(out + d * 8 + 2 * (lane % 4)) = Io<T>::pack(o[d].x[2 * h] * inv, o[d].x[2 * h + 1] * inv);
      if (lane % 4 == 0) p.lse[lseIdx] = lse;
    } else {
      const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
      float* po = p.part_o + ((int64_t)split * rows + lseIdx) * HD;
#pragma unroll
      for (int d = 0; d < Tr::NT_O; ++d)
        *reinterpret_cast<float2*>(po + d * 8 + 2 * (lane % 4)) = make_float2(o[d].x[2 * h] * inv, o[d].x[2 * h + 1] * inv);
      if (lane % 4 == 0) p.part_lse[(int64_t)split * rows + lseIdx] = lse;
    }
  }
}

}  // namespace fa_turing

#define FA_TURING_KERNEL_NAME(role, HD, BM, BN, W, DT) FA_KERNEL_SYMBOL(turing, role, DT, HD, BM, BN, W, 1)
#define FA_TURING_DEFINE_ONE(role, HD, BM, BN, W, DT, TYPE)                                                \
  extern "C" __global__ void __launch_bounds__(W * 32) FA_TURING_KERNEL_NAME(role, HD, BM, BN, W, DT)(    \
      const FaFwdParams p) {                                                                               \
    fa_turing::fwd_kernel<fa_turing::TuringTraits<HD, BM, BN, W>, TYPE>(p);                                \
  }
#define FA_TURING_DEFINE(role, HD, BM, BN, W, S)            \
  FA_TURING_DEFINE_ONE(role, HD, BM, BN, W, f16, __half) \
  FA_TURING_DEFINE_ONE(role, HD, BM, BN, W, bf16, __nv_bfloat16)

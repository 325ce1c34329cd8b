// FlashAttention-2 forward for the volta path (sm_70, mma.sync.m8n8k4). Same contract, launch
// geometry and split-KV partials as the ampere path (kernels/ampere/fwd.cuh): grid
// (ceil(rows_total / BM), pack_gqa ? heads_kv : heads_q, batch * num_splits), WARPS * 32 threads,
// FA_VOLTA_SMEM bytes of dynamic shared memory, one FaFwdParams by value.
//
// Work split inside a warp (docs/volta-turing.md has the pictures). A warp owns 16 query rows; its
// quad-pair q is (r, c) = (q & 1, q >> 1):
//   S = Q K^T : QP (r, c) computes rows 8r..8r+7 against the key blocks 16m + 8c .. +7, f32 accumulators.
//   O = P V   : QP (r, c) computes rows 8r..8r+7, output columns 16e..16e+15 for e = 2t + c, f32 accumulators.
// P (f16) goes from the S accumulators to the PV operands through a per-warp, XOR-swizzled buffer in
// shared memory: the m8n8k4 accumulator layout (rows {l0, l0+2}, columns {2l1, 2l1+1, 2l1+4, 2l1+5})
// is not an operand layout, and the buffer costs one 8-byte store and one 16-byte load per 32
// values, with no bank conflicts, where a register exchange would cost 6 shuffles per 8x8 block.
//
// Accumulation: f32 for both products. V100's tensor cores run f16 and f32 accumulation at the same
// rate (125 TFLOPS), so f16 accumulation of PV would buy only registers, and would cost accuracy
// (11-bit significand over thousands of keys) and range (the unnormalized O grows like the row sum,
// up to seqK * max|v|, past f16's 65504).
#pragma once
#include "../common/nonfinite.cuh"
#include "../common/params.h"
#include "../common/tile_mask.cuh"
#include "../common/kernel_names.h"
#include "configs.h"
#include "mma_sm70.cuh"

#ifndef FA_VOLTA_PLAIN_LAYOUT
#define FA_VOLTA_PLAIN_LAYOUT 0
#endif

namespace fa_volta {

template <int HD_, int BM_, int BN_, int WARPS_>
struct VoltaTraits {
  static constexpr int HD = HD_, BM = BM_, BN = BN_, WARPS = WARPS_, THREADS = WARPS * 32;
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
  static constexpr int CH = HD / 8;            // 16-byte chunks per row
  static constexpr int E = HD / 16;            // 16-column output chunks
  static constexpr int EH = (E + 1) / 2;       // output chunks per quad-pair column c
  static constexpr int NJ = BN / 16;           // 8-key S blocks per quad-pair
  static constexpr int KC = BN / 8;            // 8-key chunks of the PV product
  static constexpr int SMEM = (WARPS * QW + 2 * BN * LD + WARPS * PW) * 2;
  static_assert(SMEM == FA_VOLTA_SMEM(HD, BM, BN, WARPS, 1), "configs.h and the traits disagree");
  static_assert(BM == 16 * WARPS && BN % 16 == 0 && BN <= 64 && HD % 16 == 0, "tile shape");
};

// Offset (halves) of row rho (0..15) of a warp's Q block.
template <typename Tr>
__device__ __forceinline__ int q_off(int rho) {
  return rho * Tr::LD + (rho >= 8 ? Tr::QSHIFT : 0);
}

// Offset (halves) of 16-byte unit u of row rho of a warp's P block. The XOR keeps both the 8-byte
// stores from the S accumulators (rows 8r + l0 (+2) (+4h), units 2m + c) and the 16-byte operand
// loads (rows 8r + ai, one unit) on distinct bank groups; f's three bits are row bits 1, 0 and 3.
template <typename Tr>
__device__ __forceinline__ int p_off(int rho, int u) {
  if (Tr::PLAIN) return rho * 64 + u * 8;
  const int f = ((rho >> 1) & 1) | ((rho & 1) << 1) | (((rho >> 3) & 1) << 2);
  return rho * 64 + ((u ^ f) << 3);
}

template <typename T>
__device__ __forceinline__ uint4 ldg_h8(const T* src, bool ok) {
  if (!ok) return make_uint4(0u, 0u, 0u, 0u);  // padded rows hold zeros, never garbage (0 * NaN)
  return Io<T>::to_h8(__ldg(reinterpret_cast<const uint4*>(src)));
}

template <typename Tr, typename T>
__device__ __forceinline__ void fwd_kernel(const FaFwdParams& p) {
  constexpr int HD = Tr::HD, BM = Tr::BM, BN = Tr::BN, LD = Tr::LD, CH = Tr::CH;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sQ = reinterpret_cast<__half*>(smem_raw);
  __half* sK = sQ + Tr::WARPS * Tr::QW;
  __half* sV = sK + BN * LD;
  __half* sP = sV + BN * LD;

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

  // Non-empty k-tiles (tiling-mask), intersected with this CTA's split of the keys.
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

  // Q tile -> shared memory (f16), rows of warp w at sQ + w * QW.
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
    *reinterpret_cast<uint4*>(sQ + (r / 16) * Tr::QW + q_off<Tr>(r % 16) + ch * 8) = ldg_h8(src, ok);
  }

  // Lane roles. QP (rq, cq); ai: the lane's A row / B column inside its QP; l0, l1: accumulator bits.
  const int qp = (lane >> 2) & 3, rq = qp & 1, cq = qp >> 1, hq = lane >> 4, a4 = lane & 3;
  const int ai = a4 + 4 * hq, l0 = lane & 1, l1 = (lane >> 1) & 1;
  // Keys are permuted inside each 8-key block (B column n reads key pi(n) = 0,1,4,5,2,3,6,7): a lane's
  // four S accumulators of one row (columns 2l1, 2l1+1, 2l1+4, 2l1+5) become keys 4l1..4l1+3, which
  // it stores to P as one 8-byte run.
  const int kRow = 8 * cq + ((ai & 1) | ((ai & 2) << 1) | ((ai & 4) >> 1));
  const __half* wQ = sQ + warp * Tr::QW + q_off<Tr>(8 * rq + ai);
  __half* wP = sP + warp * Tr::PW;

  const int warpRow0 = r0 + warp * 16;
  const bool warpActive = warpRow0 < r1;
  int qrow[2];
#pragma unroll
  for (int b1 = 0; b1 < 2; ++b1) {
    const int row = warpRow0 + 8 * rq + l0 + 2 * b1 + 4 * hq;
    qrow[b1] = p.pack_gqa ? row / p.group : row;
  }

  float o[Tr::EH][2][8];
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};
#pragma unroll
  for (int t = 0; t < Tr::EH; ++t)
#pragma unroll
    for (int ab = 0; ab < 2; ++ab)
#pragma unroll
      for (int i = 0; i < 8; ++i) o[t][ab][i] = 0.f;

  for (int n = 0; n < nTiles; ++n) {
    const int t = t0 + n, k0 = t * BN;
    const int k1 = min(p.seq_k, k0 + BN);
    const int kind = fa_tile_kind(p.band_left, p.band_right, lk, dMin, dMax, k0, k1);
    const bool masked = kind != FA_TILE_FULL || k0 + BN > lk;
    __syncthreads();  // the previous tile's K/V reads are done (and Q is staged, first time round)
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

    float s[Tr::NJ][8];
#pragma unroll
    for (int m = 0; m < Tr::NJ; ++m)
#pragma unroll
      for (int i = 0; i < 8; ++i) s[m][i] = 0.f;
    // Partly unrolled: a full unroll hoists every Q and K load of the tile (CH * (NJ + 1) 16-byte
    // registers) and spills at hd96/hd128.
#pragma unroll 4
    for (int kk = 0; kk < CH; ++kk) {
      const uint4 a = lds128(wQ + kk * 8);
#pragma unroll
      for (int m = 0; m < Tr::NJ; ++m) {
        const uint4 bk = lds128(sK + (16 * m + kRow) * LD + kk * 8);
        mma_rc(s[m], a.x, a.y, bk.x, bk.y);
        mma_rc(s[m], a.z, a.w, bk.z, bk.w);
      }
    }

    // Tiling-mask: FULL tiles take no per-element test; PARTIAL ones (and a tile running past the
    // valid keys) test each element against the band.
#pragma unroll
    for (int m = 0; m < Tr::NJ; ++m)
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float x = s[m][i] * p.scale_log2;
        if (masked) {
          const int col = k0 + 16 * m + 8 * cq + 4 * l1 + 2 * ((i >> 2) & 1) + (i & 1);
          const int64_t rel = (int64_t)col - ((int64_t)qrow[(i >> 1) & 1] + lk - p.seq_q);
          if (col >= lk || rel < -(int64_t)p.band_left || rel > p.band_right) x = -INFINITY;
        }
        s[m][i] = x;
      }

    // Online softmax (base 2). A row's values sit on lanes l1 = 0, 1 of QP c = 0 and of QP c = 1:
    // lane masks 2 and 8.
#pragma unroll
    for (int b1 = 0; b1 < 2; ++b1) {
      float mx = mrow[b1];
#pragma unroll
      for (int m = 0; m < Tr::NJ; ++m)
        mx = fmaxf(mx, fmaxf(fmaxf(s[m][2 * b1], s[m][2 * b1 + 1]), fmaxf(s[m][2 * b1 + 4], s[m][2 * b1 + 5])));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
      const float mUse = mx == -INFINITY ? 0.f : mx;
      const float alpha = fast_exp2(mrow[b1] - mUse);
      mrow[b1] = mx;
      float sum = 0.f;
#pragma unroll
      for (int m = 0; m < Tr::NJ; ++m)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int i = 2 * b1 + (j & 1) + 4 * (j >> 1);
          const float e = fast_exp2(s[m][i] - mUse);
          s[m][i] = e;
          sum += e;
        }
      lrow[b1] = lrow[b1] * alpha + sum;
#pragma unroll
      for (int t2 = 0; t2 < Tr::EH; ++t2)
#pragma unroll
        for (int ab = 0; ab < 2; ++ab)
#pragma unroll
          for (int j = 0; j < 4; ++j) o[t2][ab][2 * b1 + (j & 1) + 4 * (j >> 1)] *= alpha;
    }

    // P -> this warp's swizzled buffer: row 8r + l0 + 2b1 + 4h, keys 16m + 8c + 4l1 .. +3.
#pragma unroll
    for (int m = 0; m < Tr::NJ; ++m)
#pragma unroll
      for (int b1 = 0; b1 < 2; ++b1) {
        const int rho = 8 * rq + l0 + 2 * b1 + 4 * hq;
        uint2 v;
        v.x = pack_h2(s[m][2 * b1], s[m][2 * b1 + 1]);
        v.y = pack_h2(s[m][2 * b1 + 4], s[m][2 * b1 + 5]);
        *reinterpret_cast<uint2*>(wP + p_off<Tr>(rho, 2 * m + cq) + 4 * l1) = v;
      }
    __syncwarp();

    // O += P V. A: P row 8r + ai, 8 keys per 16-byte load (two k4 steps). B: V rows (keys) 8kc + 4s +
    // a4, columns 16e + 8h .. +7: halves 0..3 feed accumulator block 0 (columns 16e + 8h' + 0..3),
    // halves 4..7 block 1 (16e + 8h' + 4..7).
    const int pRow = 8 * rq + ai;
#pragma unroll 2
    for (int kc = 0; kc < Tr::KC; ++kc) {
      const uint4 pa = lds128(wP + p_off<Tr>(pRow, kc));
#pragma unroll
      for (int t2 = 0; t2 < Tr::EH; ++t2) {
        const int e = min(2 * t2 + cq, Tr::E - 1);  // odd E (hd 80): QP c=1's last block is discarded
        const __half* vp = sV + (8 * kc + a4) * LD + 16 * e + 8 * hq;
        const uint4 v0 = lds128(vp);
        const uint4 v1 = lds128(vp + 4 * LD);
        mma_rr(o[t2][0], pa.x, pa.y, v0.x, v0.y);
        mma_rr(o[t2][1], pa.x, pa.y, v0.z, v0.w);
        mma_rr(o[t2][0], pa.z, pa.w, v1.x, v1.y);
        mma_rr(o[t2][1], pa.z, pa.w, v1.z, v1.w);
      }
    }
    if (fix) {  // the Inf/NaN of V zeroed above at keys this thread's rows see
#pragma unroll
      for (int b1 = 0; b1 < 2; ++b1) {
        if (warpRow0 + 8 * rq + l0 + 2 * b1 + 4 * hq >= r1) continue;
        int lo, hi;
        fa::visible_keys(qrow[b1], lk, p.seq_q, p.band_left, p.band_right, k0, k0 + BN, &lo, &hi);
        if (lo >= hi) continue;
#pragma unroll
        for (int t2 = 0; t2 < Tr::EH; ++t2) {
          const int e = 2 * t2 + cq;
          if (e >= Tr::E) continue;  // discarded block (odd E)
#pragma unroll
          for (int ab = 0; ab < 2; ++ab)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf)
#pragma unroll
              for (int lo1 = 0; lo1 < 2; ++lo1)
                o[t2][ab][4 * hf + 2 * b1 + lo1] +=
                    fa::nonfinite_sum(vBase, p.k_row_stride, 16 * e + 8 * hf + 4 * ab + 2 * l1 + lo1, lo, hi);
        }
      }
    }
  }

  // Epilogue: normalize, write O and LSE (or the split's partials for fa_combine_*).
#pragma unroll
  for (int b1 = 0; b1 < 2; ++b1) {
    float l = lrow[b1];
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    l += __shfl_xor_sync(0xffffffffu, l, 8);
    const int row = warpRow0 + 8 * rq + l0 + 2 * b1 + 4 * hq;
    if (!warpActive || row >= r1) continue;
    const float inv = l != 0.f ? 1.f / l : 0.f;  // l == 0: no allowed key; NaN stays NaN
    const float lse = l != 0.f ? (mrow[b1] + __log2f(l)) * 0.69314718055994531f : -INFINITY;
    const int i = qrow[b1];
    const int hqh = p.pack_gqa ? kvh * p.group + row % p.group : head;
    const int64_t lseIdx = ((int64_t)b * p.heads_q + hqh) * p.seq_q + i;
    const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
    T* out = static_cast<T*>(p.out) + (int64_t)b * p.q_batch_stride + (int64_t)i * p.q_row_stride + (int64_t)hqh * HD;
    float* po = p.num_splits == 1 ? nullptr : p.part_o + ((int64_t)split * rows + lseIdx) * HD;
#pragma unroll
    for (int t2 = 0; t2 < Tr::EH; ++t2) {
      const int e = 2 * t2 + cq;
      if (e >= Tr::E) continue;
#pragma unroll
      for (int ab = 0; ab < 2; ++ab)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int d = 16 * e + 8 * hf + 4 * ab + 2 * l1;
          const float x0 = o[t2][ab][4 * hf + 2 * b1] * inv, x1 = o[t2][ab][4 * hf + 2 * b1 + 1] * inv;
          if (po)
            *reinterpret_cast<float2*>(po + d) = make_float2(x0, x1);
          else
            *reinterpret_cast<uint32_t*>(out + d) = Io<T>::pack(x0, x1);
        }
    }
    if (l1 == 0 && cq == 0) {
      if (po)
        p.part_lse[(int64_t)split * rows + lseIdx] = lse;
      else
        p.lse[lseIdx] = lse;
    }
  }
}

}  // namespace fa_volta

// One extern "C" entry point per (config, dtype): the addon finds it by this name.
#define FA_VOLTA_KERNEL_NAME(role, HD, BM, BN, W, DT) FA_KERNEL_SYMBOL(volta, role, DT, HD, BM, BN, W, 1)
#define FA_VOLTA_DEFINE_ONE(role, HD, BM, BN, W, DT, TYPE)                                                 \
  extern "C" __global__ void __launch_bounds__(W * 32, 1) FA_VOLTA_KERNEL_NAME(role, HD, BM, BN, W, DT)(      \
      const FaFwdParams p) {                                                                               \
    fa_volta::fwd_kernel<fa_volta::VoltaTraits<HD, BM, BN, W>, TYPE>(p);                                   \
  }
#define FA_VOLTA_DEFINE(role, HD, BM, BN, W, S)            \
  FA_VOLTA_DEFINE_ONE(role, HD, BM, BN, W, f16, __half) \
  FA_VOLTA_DEFINE_ONE(role, HD, BM, BN, W, bf16, __nv_bfloat16)

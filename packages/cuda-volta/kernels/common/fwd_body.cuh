// The FlashAttention-2 forward kernel body, written once for every architecture path. A mainloop ML
// (ampere/mainloop.cuh: cp.async ring; common/sync_mainloop.cuh: synchronous copies, for volta
// and turing; hopper/mainloop.cuh: a copy-engine producer warpgroup and wgmma) owns shared memory,
// the copies and the two products on its tile primitives; this body owns the rest:
//   - the CTA work split (work.cuh): rows, heads, the tiling-mask's k-tiles of this split;
//   - the mask: FULL tiles run unmasked, PARTIAL ones test each element against the band;
//   - the online softmax (softmax.cuh) and the rescale of O;
//   - the epilogue: O and LSE, or a split's partials; Inf/NaN of V added back (nonfinite.cuh);
//   - the split merge: the fused combine and KSPLIT tiles, on split_merge.cuh.
// The mainloop interface (see AmpereMainloop for a complete one):
//   Layout                      accumulator layout: ROWS, NS, NO, s_slot/o_slot, s_col/o_col, row,
//                               row_max/row_sum, owns_lse, O_OVERHANG (M16n8Layout)
//   HD, BM, BN, WARPS, KSPLIT   the configuration
//   ML(p, work, smem)           stages Q (and, except with a producer warpgroup, starts the first
//                               K/V copies)
//   stage(n, t, masked) -> bool k-tile t ready in shared memory, the n-th to run (t = work.tile(n):
//                               the last first; a mainloop that copies ahead asks work.tile too);
//                               true if this thread cleared an Inf/NaN of V at a key some row of
//                               the CTA sees (or false, where the mainloop keeps that flag in shared
//                               memory for finish())
//   qk(s, n)                    S = Q K^T for tile n
//   pack_p(s) -> P, pv(o, P, n) P (s after the softmax) as the operand of O += P V, and the product
//   warp_row0(), warp_key0(), warp_active()
//   finish(seen) -> bool        after the loop: copies drained; the CTA-wide OR of seen
//   scratch()                   KSPLIT mainloops: shared memory free after finish()
//   STAGED_O, o_tile(), o_offset(r, ch)  O goes out through a shared-memory tile (free after
//                               finish()) whose 16-byte chunk ch of row r is at o_offset(r, ch)
//   PACK_IN_SOFTMAX, pack_p_row P packed row by row as the softmax makes it (else after the rescale)
//   PAGED                       k and v are a paged cache (the kernel's _paged entry point)
//   OVERLAP                     qk() and pv() only issue their products (asynchronous tensor cores);
//                               qk_wait<PENDING>(s) and pv_wait(o, P) wait for them. The body then
//                               runs the softmax of tile n while P V of tile n - 1 is in flight.
//   PRODUCER_WARPGROUP          a producer warpgroup: its threads (is_producer() true) run
//                               run_producer(p, smem), every copy, and leave; the others call
//                               consume_registers() first and run the loop. THREADS then counts the
//                               computing threads only, and each tile's qk_wait (or qk) and pv_wait
//                               (or pv) free its K and V slots: each must run exactly once per tile.
#pragma once
#include "launch.cuh"
#include "nonfinite.cuh"
#include "numeric.cuh"
#include "params.h"
#include "softmax.cuh"
#include "split_merge.cuh"
#include "work.cuh"

namespace fa {

// Logits of a masked tile: scaled to base 2, -inf where the key is hidden from the row (outside its
// band or at or past lk). Per row slot the allowed keys are one interval [lo, hi], clamped into int
// range once so the per-element test is two 32-bit compares that cannot overflow.
template <class ML, typename T>
__device__ __forceinline__ void mask_tile(float (&s)[ML::Layout::NS], const FaFwdParams& p, const CtaWork<T, ML::HD>& w,
                                          int k0, int lane) {
  using L = typename ML::Layout;
  int lo[L::ROWS], hi[L::ROWS];
#pragma unroll
  for (int r = 0; r < L::ROWS; ++r) {
    const int row = w.r0 + ML::warp_row0() + L::row(lane, r);
    const int64_t d = (int64_t)w.query(p, row) + w.lk - p.seq_q;
    const int64_t a = max(d - p.band_left, (int64_t)0), b = min(d + p.band_right, (int64_t)w.lk - 1);
    lo[r] = (int)min(a, (int64_t)INT32_MAX);
    hi[r] = (int)max(b, (int64_t)-1);
  }
#pragma unroll
  for (int i = 0; i < L::NS; ++i) {
    const int col = k0 + L::s_col(lane, i), r = L::s_slot(i);
    s[i] = (col < lo[r] || col > hi[r]) ? -INFINITY : s[i] * p.scale_log2;
  }
}

// Adds the Inf/NaN of V at the keys a row sees to `n` stored outputs of that row from column col
// (nonfinite.cuh), reading back what this thread stored.
template <bool PAGED, typename T, int HD, typename D>
__device__ __forceinline__ void add_nonfinite(const FaFwdParams& p, const CtaWork<T, HD>& w, int i, int kLo, int kHi,
                                              int col, int n, D* dst) {
  int lo, hi;
  visible_keys(i, w.lk, p.seq_q, p.band_left, p.band_right, kLo, kHi, &lo, &hi);
  auto rowOf = [&](int j) -> int64_t {
    if constexpr (PAGED) return w.key_row(p, j);
    else return j;
  };
  for (int c = 0; c < n; ++c) {
    const float add = nonfinite_sum(w.v, p.k_row_stride, col + c, lo, hi, rowOf);
    if (add == 0.f) continue;
    if constexpr (sizeof(D) == 4) dst[col + c] += add;
    else dst[col + c] = Elem<T>::from_float(Elem<T>::to_float(dst[col + c]) + add);
  }
}

// The Inf/NaN add-back over the outputs this thread stored (store_rows or store_rows_ksplit), after
// the store: O is dead by then, so this rare case (a V with Inf/NaN at a key some row sees, on a tile
// that some row may not fully see) costs the main loop no registers. Inline: an out-of-line call
// would need a stack frame (local memory) for its arguments.
template <class ML, typename T>
__device__ __forceinline__ void fixup_rows(const FaFwdParams& p) {
  using L = typename ML::Layout;
  constexpr int HD = ML::HD;
  const CtaWork<T, HD> w(p, ML::BM, ML::BN);
  const int tid = threadIdx.x, lane = tid % 32;
  const int kLo = w.t0 * ML::BN, kHi = (int)min((int64_t)w.t1 * ML::BN, (int64_t)p.seq_k);
  auto fix = [&](int row, int col, int n) {
    if (p.num_splits == 1) add_nonfinite<ML::PAGED>(p, w, w.query(p, row), kLo, kHi, col, n, w.out_row(p, row));
    else add_nonfinite<ML::PAGED>(p, w, w.query(p, row), kLo, kHi, col, n, w.part_o_row(p, row));
  };
  if constexpr (ML::KSPLIT) {
    for (int idx = tid; idx < (w.r1 - w.r0) * (HD / 4); idx += ML::THREADS) fix(w.r0 + idx / (HD / 4), idx % (HD / 4) * 4, 4);
  } else {
    for (int r = 0; r < L::ROWS; ++r) {
      const int row = w.r0 + ML::warp_row0() + L::row(lane, r);
      if (row >= w.r1) continue;
      for (int i = 0; i < L::NO; i += 2) {
        const int col = L::o_col(lane, i);
        if (L::o_slot(i) == r && col < HD) fix(row, col, 2);
      }
    }
  }
}

// Writes this thread's rows of O (normalized) and their LSE: to out/lse, or to the split's partials.
template <class ML, typename T>
__device__ __forceinline__ void store_rows(const FaFwdParams& p, const CtaWork<T, ML::HD>& w, const float (&o)[ML::Layout::NO],
                                           const OnlineSoftmax<typename ML::Layout>& sm, bool active, int lane) {
  using L = typename ML::Layout;
  constexpr int HD = ML::HD;
#pragma unroll
  for (int r = 0; r < L::ROWS; ++r) {
    const float l = sm.row_total(r);  // every lane: the reduction shuffles
    const int row = w.r0 + ML::warp_row0() + L::row(lane, r);
    if (!active || row >= w.r1) continue;
    const float inv = row_inv(l), lse = row_lse(sm.m[r], l);
    // The row of out (T) or of the split's partials (f32); lseAt is only called by the lane that
    // owns the row's LSE (its index takes divisions).
    auto put = [&](auto* dst, auto lseAt) {
#pragma unroll
      for (int i = 0; i < L::NO; i += 2) {
        if (L::o_slot(i) != r) continue;
        const int col = L::o_col(lane, i);
        if (L::O_OVERHANG && col >= HD) continue;
        store2(dst + col, o[i] * inv, o[i + 1] * inv);
      }
      if (L::owns_lse(lane)) *lseAt() = lse;
    };
    if (p.num_splits == 1) put(w.out_row(p, row), [&] { return p.lse + w.lse_index(p, row); });
    else put(w.part_o_row(p, row), [&] { return w.part_lse_at(p, row); });
  }
}

// KSPLIT tiles: every warp ran all rows over its share of each k-tile's keys. Each warp leaves its
// rows' max (base 2), sum and unnormalized O in shared memory; the CTA merges them per (row, 4
// columns) as parts over disjoint keys.
template <class ML, typename T>
__device__ __forceinline__ void store_rows_ksplit(const FaFwdParams& p, const CtaWork<T, ML::HD>& w, float* scratch,
                                                  const float (&o)[ML::Layout::NO],
                                                  const OnlineSoftmax<typename ML::Layout>& sm, int tid) {
  using L = typename ML::Layout;
  constexpr int HD = ML::HD, BM = ML::BM, WARPS = ML::WARPS, LDO = HD + 4, C4 = HD / 4;
  const int lane = tid % 32, warp = tid / 32;
  float* sO = scratch;
  float* sM = sO + WARPS * BM * LDO;
  float* sL = sM + WARPS * BM;
  __syncthreads();  // every warp is done reading K/V
#pragma unroll
  for (int r = 0; r < L::ROWS; ++r) {
    const float l = sm.row_total(r);
    const int rr = L::row(lane, r);
#pragma unroll
    for (int i = 0; i < L::NO; i += 2)
      if (L::o_slot(i) == r)
        *reinterpret_cast<float2*>(sO + (warp * BM + rr) * LDO + L::o_col(lane, i)) = make_float2(o[i], o[i + 1]);
    if (L::owns_lse(lane)) {
      sM[warp * BM + rr] = sm.m[r];
      sL[warp * BM + rr] = l;
    }
  }
  __syncthreads();
  for (int idx = tid; idx < (w.r1 - w.r0) * C4; idx += ML::THREADS) {
    const int r = idx / C4, c4 = idx % C4, row = w.r0 + r;
    float lse2[WARPS];
    float4 v[WARPS];
#pragma unroll
    for (int k = 0; k < WARPS; ++k) {
      const float l = sL[k * BM + r], inv = row_inv(l);
      lse2[k] = l != 0.f ? sM[k * BM + r] + __log2f(l) : -INFINITY;
      const float4 x = *reinterpret_cast<const float4*>(sO + (k * BM + r) * LDO + c4 * 4);
      v[k] = make_float4(x.x * inv, x.y * inv, x.z * inv, x.w * inv);
    }
    LseMerge m;
    m.add(lse2, v);
    const float4 out4 = m.out();
    if (p.num_splits == 1) {
      store4(w.out_row(p, row) + c4 * 4, out4);
      if (c4 == 0) p.lse[w.lse_index(p, row)] = m.lse();
    } else {
      store4(w.part_o_row(p, row) + c4 * 4, out4);
      if (c4 == 0) *w.part_lse_at(p, row) = m.lse();
    }
  }
}

// The barrier of the threads that run the body past the k-tile loop: ML::THREADS of them (a producer
// warpgroup has left by then).
template <class ML>
__device__ __forceinline__ void body_barrier() {
  if constexpr (ML::PRODUCER_WARPGROUP) named_barrier_sync(1, ML::THREADS);
  else __syncthreads();
}

// store_rows for a mainloop with STAGED_O, without splits: this thread's O (normalized, as T) goes to
// the mainloop's shared-memory O tile first, so that the copy out writes whole 16-byte chunks of
// each row, where store_rows writes 4 bytes a lane (16 bytes of eight rows per warp store).
template <class ML, typename T>
__device__ __forceinline__ void store_rows_staged(const FaFwdParams& p, const CtaWork<T, ML::HD>& w, const ML& ml,
                                                  const float (&o)[ML::Layout::NO],
                                                  const OnlineSoftmax<typename ML::Layout>& sm, int tid) {
  using L = typename ML::Layout;
  constexpr int HD = ML::HD, CHUNKS = HD / 8;
  const int lane = tid % 32;
  unsigned char* tile = ml.o_tile();
#pragma unroll
  for (int r = 0; r < L::ROWS; ++r) {
    const float l = sm.row_total(r);  // every lane: the reduction shuffles
    const int rr = ML::warp_row0() + L::row(lane, r), row = w.r0 + rr;
    const float inv = row_inv(l);
#pragma unroll
    for (int i = 0; i < L::NO; i += 2) {
      if (L::o_slot(i) != r) continue;
      const int col = L::o_col(lane, i);
      if (L::O_OVERHANG && col >= HD) continue;
      *reinterpret_cast<uint32_t*>(tile + ml.o_offset(rr, col / 8) + (col % 8) * 2) =
          Elem<T>::pack(o[i] * inv, o[i + 1] * inv);
    }
    if (L::owns_lse(lane) && row < w.r1) p.lse[w.lse_index(p, row)] = row_lse(sm.m[r], l);
  }
  body_barrier<ML>();
  for (int idx = tid; idx < (w.r1 - w.r0) * CHUNKS; idx += ML::THREADS) {
    const int rr = idx / CHUNKS, ch = idx % CHUNKS;
    *reinterpret_cast<uint4*>(w.out_row(p, w.r0 + rr) + ch * 8) =
        *reinterpret_cast<const uint4*>(tile + ml.o_offset(rr, ch));
  }
}

// Fused split-KV combine: the last split CTA of a (batch, head, q-tile) merges every split's
// partials into out/lse (p.counters: one int per CTA row of the grid, zero between launches).
template <class ML, typename T>
__device__ __forceinline__ void fused_combine(const FaFwdParams& p, const CtaWork<T, ML::HD>& w, unsigned char* smem,
                                              int tid) {
  constexpr int HD = ML::HD, V4 = HD / 4;
  int* flag = reinterpret_cast<int*>(smem);
  const int64_t cIdx = ((int64_t)w.b * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  __threadfence();      // this CTA's partials are visible device-wide before it is counted
  body_barrier<ML>();  // every warp is done with shared memory and has written its partials
  if (tid == 0) *flag = atomicAdd(p.counters + cIdx, 1) == p.num_splits - 1;
  body_barrier<ML>();
  if (!*flag) return;
  __threadfence();
  const int64_t rows = (int64_t)p.batch * p.heads_q * p.seq_q;
  for (int idx = tid; idx < (w.r1 - w.r0) * V4; idx += ML::THREADS) {
    const int row = w.r0 + idx / V4, d4 = idx % V4;
    const int64_t li = w.lse_index(p, row);
    const LseMerge m = merge_splits(p.part_lse, p.part_o, li, rows, HD, p.num_splits, d4);
    store4(w.out_row(p, row) + d4 * 4, m.out());
    if (d4 == 0) p.lse[li] = m.lse();
  }
  if (tid == 0) p.counters[cIdx] = 0;  // ready for the next launch (stream-ordered)
}

// The k-tile loop of an OVERLAP mainloop, software-pipelined as FlashAttention-3 does within a
// warpgroup: iteration n issues S = Q K^T of tile n and O += P V of tile n - 1, waits for S only,
// and runs the mask and softmax of tile n while the tensor cores still work on P V. O is rescaled
// once that product is done, and P of tile n is packed for the next iteration. The mainloop keeps
// tile n - 1's V in its ring until then. Returns the OR of stage()'s Inf/NaN flags.
// In the SASS, ptxas places the wait for P V after the row maxima and before the exponentials: P of
// tile n goes into the registers that product reads. Two register sets for P did not make the
// kernel faster (BENCHMARKS.md, "Where short hd 64 prefill spends its time").
template <class ML, typename T>
__device__ __forceinline__ bool overlapped_loop(ML& ml, const FaFwdParams& p, const CtaWork<T, ML::HD>& w,
                                                float (&o)[ML::Layout::NO], OnlineSoftmax<typename ML::Layout>& sm,
                                                int lane) {
  using L = typename ML::Layout;
  typename ML::P pf;
  bool seen = false;
  auto step = [&](auto maskTag, auto firstTag, int n, int t) {
    constexpr bool MASK = decltype(maskTag)::value, FIRST = decltype(firstTag)::value;
    float s[L::NS];
    ml.qk(s, n);
    if constexpr (FIRST) {
      ml.template qk_wait<0>(s);
    } else {
      ml.pv(o, pf, n - 1);
      ml.template qk_wait<1>(s);
    }
    if constexpr (MASK) mask_tile<ML, T>(s, p, w, t * ML::BN + ml.warp_key0(), lane);
    float alpha[L::ROWS];
    sm.template update<MASK>(s, MASK ? 1.f : p.scale_log2, alpha);
    if constexpr (!FIRST) {
      ml.pv_wait(o, pf);
      rescale<L>(o, alpha);
    }
    pf = ml.pack_p(s);
  };
  for (int n = 0; n < w.tiles(); ++n) {
    const int t = w.tile(n);
    const bool masked = w.masked(t);
    if (ml.stage(n, t, masked)) seen = true;
    if (n == 0) {
      if (masked) step(BoolTag<true>{}, BoolTag<true>{}, n, t);
      else step(BoolTag<false>{}, BoolTag<true>{}, n, t);
    } else {
      if (masked) step(BoolTag<true>{}, BoolTag<false>{}, n, t);
      else step(BoolTag<false>{}, BoolTag<false>{}, n, t);
    }
  }
  if (w.tiles() > 0) {
    ml.pv(o, pf, w.tiles() - 1);
    ml.pv_wait(o, pf);
  }
  return seen;
}

template <class ML, typename T>
__device__ __forceinline__ void attention_forward(const FaFwdParams& p, unsigned char* smem) {
  using L = typename ML::Layout;
  constexpr int HD = ML::HD, BN = ML::BN;
  grid_dependency_wait();  // before any global memory access (programmatic dependent launch)
  if constexpr (ML::PRODUCER_WARPGROUP) {
    if (ML::is_producer()) {
      ML::run_producer(p, smem);  // every copy, then the producer warpgroup leaves
      return;
    }
    ML::consume_registers();
  }
  const int tid = threadIdx.x, lane = tid % 32;
  const CtaWork<T, HD> w(p, ML::BM, BN);
  ML ml(p, w, smem);

  float o[L::NO];
#pragma unroll
  for (int i = 0; i < L::NO; ++i) o[i] = 0.f;
  OnlineSoftmax<L> sm;

  // One k-tile: S = Q K^T, mask, online softmax, O += P V. MASK is a compile-time flag so that FULL
  // tiles (the bulk of every problem) carry no per-element mask work and keep the scale folded into
  // the exp2 argument (one FFMA per element, as FlashAttention-2 does).
  auto step = [&](auto maskTag, int n, int t) {
    constexpr bool MASK = decltype(maskTag)::value;
    float s[L::NS];
    ml.qk(s, n);
    if constexpr (MASK) mask_tile<ML, T>(s, p, w, t * BN + ml.warp_key0(), lane);
    float alpha[L::ROWS];
    if constexpr (ML::PACK_IN_SOFTMAX) {
      typename ML::P pf;
      sm.template update<MASK>(s, MASK ? 1.f : p.scale_log2, alpha, [&](int r) { ml.pack_p_row(pf, s, r); });
      rescale<L>(o, alpha);
      ml.pv(o, pf, n);
    } else {
      sm.template update<MASK>(s, MASK ? 1.f : p.scale_log2, alpha);
      rescale<L>(o, alpha);
      // Packed after the rescale: before it, ampere prefill at hd 128 ran 3-5% slower on the H200.
      auto pf = ml.pack_p(s);
      ml.pv(o, pf, n);
    }
  };

  auto consume = [&]() -> bool {
    if constexpr (ML::OVERLAP) return overlapped_loop<ML, T>(ml, p, w, o, sm, lane);
    bool seen = false;
    for (int n = 0; n < w.tiles(); ++n) {
      const int t = w.tile(n);
      const bool masked = w.masked(t);
      if (ml.stage(n, t, masked)) seen = true;
      if (!ml.warp_active()) continue;
      if (masked) step(BoolTag<true>{}, n, t);
      else step(BoolTag<false>{}, n, t);
    }
    return seen;
  };
  const bool fix = ml.finish(consume());

  if constexpr (ML::KSPLIT) {
    store_rows_ksplit<ML, T>(p, w, ml.scratch(), o, sm, tid);
  } else if constexpr (ML::STAGED_O) {
    if (p.num_splits == 1) {
      store_rows_staged<ML, T>(p, w, ml, o, sm, tid);
      if (fix) body_barrier<ML>();  // fixup_rows reads outputs other threads stored
    } else {
      store_rows<ML, T>(p, w, o, sm, ml.warp_active(), lane);
    }
  } else {
    store_rows<ML, T>(p, w, o, sm, ml.warp_active(), lane);
  }
  if (fix) fixup_rows<ML, T>(p);
  if (p.num_splits > 1 && p.counters) fused_combine<ML, T>(p, w, smem, tid);
}

}  // namespace fa

// Two extern "C" entry points per (configuration, dtype), named by kernel_names.h: dense K/V, and
// a paged cache (the mainloop's PAGED instantiation, <symbol>_paged). Separate kernels, so that the
// dense one carries none of the paged code (measured: one kernel testing at run time cost ampere
// hd-128 prefill 5%, and both bodies in one kernel made ptxas spill). ML is a mainloop template
// <HD, BM, BN, WARPS, STAGES, T, PAGED>; MIN_BLOCKS its blocks-per-SM hint for ptxas. A path may
// qualify the parameters (FA_KERNEL_PARAM_QUALIFIER: hopper's are __grid_constant__).
#ifndef FA_KERNEL_PARAM_QUALIFIER
#define FA_KERNEL_PARAM_QUALIFIER
#endif
#define FA_DEFINE_KERNEL(path, ML, role, HD, BM, BN, W, S, DT, TYPE)                                              \
  extern "C" __global__ void __launch_bounds__(W * 32, (ML<HD, BM, BN, W, S, TYPE>::MIN_BLOCKS))                   \
      FA_KERNEL_SYMBOL(path, role, DT, HD, BM, BN, W, S)(const FA_KERNEL_PARAM_QUALIFIER FaFwdParams p) {                                     \
    extern __shared__ __align__(16) unsigned char fa_smem[];                                                        \
    fa::attention_forward<ML<HD, BM, BN, W, S, TYPE>, TYPE>(p, fa_smem);                                           \
  }                                                                                                                 \
  extern "C" __global__ void __launch_bounds__(W * 32, (ML<HD, BM, BN, W, S, TYPE, true>::MIN_BLOCKS))             \
      FA_KERNEL_SYMBOL_PAGED(path, role, DT, HD, BM, BN, W, S)(const FA_KERNEL_PARAM_QUALIFIER FaFwdParams p) {                               \
    extern __shared__ __align__(16) unsigned char fa_smem[];                                                        \
    fa::attention_forward<ML<HD, BM, BN, W, S, TYPE, true>, TYPE>(p, fa_smem);                                     \
  }
#define FA_DEFINE_KERNELS(path, ML, role, HD, BM, BN, W, S)               \
  FA_DEFINE_KERNEL(path, ML, role, HD, BM, BN, W, S, f16, __half)         \
  FA_DEFINE_KERNEL(path, ML, role, HD, BM, BN, W, S, bf16, __nv_bfloat16)

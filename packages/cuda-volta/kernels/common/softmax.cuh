// The online softmax of FlashAttention-2, in base 2, over any accumulator layout. A layout L says
// how a thread's S elements map to its rows (L::ROWS row slots, L::s_slot(i)) and how a row is
// reduced over the lanes that share it (L::row_max, L::row_sum); everything else is here, once.
#pragma once
#include "numeric.cuh"

namespace fa {

// How far (base 2) a row's max may rise past the offset its exponentials use before the offset
// follows it: P stays at most 2^8 (exact in f16 and bf16, far from their range's end) and a row
// that keeps finding slightly larger scores, as random and real data do for its first k-tiles,
// stops paying O's rescale on each (FlashAttention-4 rescales this way too).
constexpr float kStaleMax = 8.f;

template <class L>
struct OnlineSoftmax {
  float m[L::ROWS];  // the exponentials' offset: the running row max of scale * log2(e) * q.k (base-2
                     // units), or up to kStaleMax below it
  float l[L::ROWS];  // this lane's partial row sum (reduced over the row's lanes at the end)

  __device__ __forceinline__ OnlineSoftmax() {
#pragma unroll
    for (int r = 0; r < L::ROWS; ++r) {
      m[r] = -INFINITY;
      l[r] = 0.f;
    }
  }

  // s holds raw scores (esc = scale * log2(e)) or, on masked tiles, base-2 logits with -inf at
  // hidden keys (esc = 1). Replaces s by exp2(s * esc - m_new) and sets alpha = exp2(m_old -
  // m_new), the factor O must be rescaled by (exactly 1 where the max did not move). on_row(r) runs
  // once row slot r's exponentials are in s (a mainloop may pack them there).
  template <bool MASK, class OnRow>
  __device__ __forceinline__ void update(float (&s)[L::NS], float esc, float (&alpha)[L::ROWS], OnRow&& on_row) {
    constexpr int PER = L::NS / L::ROWS;  // elements of one row slot
#pragma unroll
    for (int r = 0; r < L::ROWS; ++r) {
      // Max and sum as trees, not serial chains: short dependency chains matter with only two
      // warps per scheduler to hide them.
      float v[PER];
      int c = 0;
#pragma unroll
      for (int i = 0; i < L::NS; ++i)
        if (L::s_slot(i) == r) v[c++] = s[i];
#pragma unroll
      for (int w = 1; w < PER; w *= 2)
#pragma unroll
        for (int j = 0; j + w < PER; j += 2 * w) v[j] = fmaxf(v[j], v[j + w]);
      // esc >= 0 here (a negative scale takes the masked body), so max(esc * s) = esc * max(s).
      const float mNew = fmaxf(m[r], L::row_max(v[0]) * esc);
      // The offset moves only when the max grew by more than kStaleMax: below that the stale one
      // keeps every exponential under 2^kStaleMax, and O and l, scaled alike, need no rescale
      // (O's rescale is skipped when no row of the warp moved). From -inf it always moves.
      if (mNew - m[r] > kStaleMax) {
        alpha[r] = fast_exp2(m[r] - mNew);
        m[r] = mNew;
      } else {
        alpha[r] = 1.f;
      }
      // A row with nothing allowed yet (only possible on masked tiles) keeps 0 as its offset.
      const float mUse = (MASK && m[r] == -INFINITY) ? 0.f : m[r];
      c = 0;
#pragma unroll
      for (int i = 0; i < L::NS; ++i)
        if (L::s_slot(i) == r) {
          s[i] = fast_exp2(fmaf(s[i], esc, -mUse));
          v[c++] = s[i];
        }
      on_row(r);
#pragma unroll
      for (int w = 1; w < PER; w *= 2)
#pragma unroll
        for (int j = 0; j + w < PER; j += 2 * w) v[j] += v[j + w];
      l[r] = l[r] * alpha[r] + v[0];
    }
  }

  template <bool MASK>
  __device__ __forceinline__ void update(float (&s)[L::NS], float esc, float (&alpha)[L::ROWS]) {
    update<MASK>(s, esc, alpha, [](int) {});
  }

  // Final sum of row slot r, reduced over the row's lanes; every lane must call it.
  __device__ __forceinline__ float row_total(int r) const { return L::row_sum(l[r]); }
};

// O *= alpha per row, skipped when no row max of the warp moved (alpha is exactly 1 then).
template <class L>
__device__ __forceinline__ void rescale(float (&o)[L::NO], const float (&alpha)[L::ROWS]) {
  bool moved = false;
#pragma unroll
  for (int r = 0; r < L::ROWS; ++r) moved |= alpha[r] != 1.f;
  if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
    for (int i = 0; i < L::NO; ++i) o[i] *= alpha[L::o_slot(i)];
  }
}

// A row's LSE (natural log) from its base-2 max and full sum; -inf for a row with no allowed key,
// NaN stays NaN.
__device__ __forceinline__ float row_lse(float m, float l) { return l != 0.f ? (m + __log2f(l)) * kLn2 : -INFINITY; }
// 1 / l, or 0 for a row with no allowed key (its output is 0).
__device__ __forceinline__ float row_inv(float l) { return l != 0.f ? 1.f / l : 0.f; }

}  // namespace fa

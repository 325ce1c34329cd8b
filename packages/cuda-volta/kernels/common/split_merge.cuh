// Merging partial results over disjoint key ranges (core's mergePartials): each part is a
// normalized output and its LSE; the result is their LSE-weighted sum. One implementation, used by
// the split-KV combine kernel (combine.cu), by the fused combine (the last split CTA merges,
// fwd_body.cuh) and by a CTA whose warps split each k-tile's keys (KSPLIT decode tiles).
#pragma once
#include "numeric.cuh"

namespace fa {

// Online merge of (lse, 4 output columns) parts, in base 2. Parts with lse = -inf (no allowed key)
// weigh 0; a NaN lse (NaN in a visible q or k) makes the row NaN.
struct LseMerge {
  float mx = -INFINITY, sum = 0.f;
  bool nan = false;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);

  // N parts at once (their loads issued before the first use: one memory round trip per batch).
  template <int N>
  __device__ __forceinline__ void add(const float (&lse2)[N], const float4 (&v)[N]) {
    float cm = mx;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      cm = fmaxf(cm, lse2[j]);
      nan |= isnan(lse2[j]);
    }
    if (cm == -INFINITY) return;  // no keys in any part so far
    const float f = fast_exp2(mx - cm);  // 0 while mx is -inf
    sum *= f;
    acc.x *= f;
    acc.y *= f;
    acc.z *= f;
    acc.w *= f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float w = fast_exp2(lse2[j] - cm);  // 0 for an empty part (-inf)
      sum += w;
      acc.x += w * v[j].x;
      acc.y += w * v[j].y;
      acc.z += w * v[j].z;
      acc.w += w * v[j].w;
    }
    mx = cm;
  }

  // The merged output (0 for a row no part saw a key of) and its natural LSE.
  __device__ __forceinline__ float4 out() const {
    const float s = nan ? NAN : sum;
    const float inv = s != 0.f ? 1.f / s : 0.f;
    return make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
  }
  __device__ __forceinline__ float lse() const {
    if (nan) return NAN;
    return sum != 0.f ? (mx + __log2f(sum)) * kLn2 : -INFINITY;
  }
};

// Merges the split-KV partials of one row (natural LSEs at part_lse[s * rows], outputs at
// part_o[(s * rows) * head_dim]) for 4 columns starting at 4 * d4. Loads bypass L1 (__ldcg): the
// partials were written by other CTAs of the same launch.
__device__ __forceinline__ LseMerge merge_splits(const float* part_lse, const float* part_o, int64_t row, int64_t rows,
                                                 int head_dim, int num_splits, int d4) {
  constexpr int CHUNK = 16;  // splits loaded at once, so any split count works
  LseMerge m;
  for (int s0 = 0; s0 < num_splits; s0 += CHUNK) {
    float l[CHUNK];
    float4 v[CHUNK];
#pragma unroll
    for (int j = 0; j < CHUNK; ++j) {
      const bool ok = s0 + j < num_splits;
      const int64_t at = (int64_t)(ok ? s0 + j : 0) * rows + row;
      l[j] = ok ? __ldcg(part_lse + at) * kLog2e : -INFINITY;
      v[j] = ok ? __ldcg(reinterpret_cast<const float4*>(part_o + at * head_dim) + d4) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    m.add(l, v);
  }
  return m;
}

}  // namespace fa

// The model ops of the cuda executor beside attention and the GEMM (cuBLAS): row-wise ops, RoPE,
// the KV append, the LSE merge, strided copies and the block-table check. All memory-bound: each
// element is read once as f32, computed, and stored in its tensor's dtype. Path-independent (built
// for every architecture with the combine kernel).
#include "launch.cuh"
#include "numeric.cuh"
#include "op_elem.cuh"
#include "op_error.cuh"
#include "op_params.h"

using fa::ld;
using fa::st;

namespace {

/** v as its dtype stores it (what a later read of the stored value sees). */
__device__ __forceinline__ float roundTo(int32_t dtype, float v) {
  switch (dtype) {
    case FA_F16:
      return __half2float(__float2half_rn(v));
    case FA_BF16:
      return __uint_as_float(fa::f2bf_bits(v) << 16);
    default:
      return v;
  }
}

__device__ __forceinline__ float at(const FaMat& m, int64_t r, int64_t c) { return ld(m.ptr, m.dtype, r * m.row_stride + c); }
__device__ __forceinline__ void put(const FaMat& m, int64_t r, int64_t c, float v) { st(m.ptr, m.dtype, r * m.row_stride + c, v); }

/** Sum over the CTA (blockDim.x a multiple of 32, at most 1024). */
__device__ float blockSum(float x) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = x;
  __syncthreads();
  x = lane < blockDim.x / 32 ? partial[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Launched as a programmatic dependent (sm_90+), an op kernel waits for the previous kernel before
// it reads anything, then lets the next one be dispatched: its CTAs are all resident by then.
__device__ __forceinline__ void opPrologue() {
  fa::grid_dependency_wait();
  fa::grid_launch_dependents();
}

}  // namespace

/** Column c of a chunk: the kFaOpUnroll columns of thread t are t, t + blockDim.x, ... */
__device__ __forceinline__ int64_t chunkCol(int64_t first, int u) { return first + int64_t(u) * blockDim.x; }

// One CTA per row (the norm needs the whole row): kFaOpUnroll loads in flight per thread, then the
// row's sum of squares, then a second pass over the row (from cache) for the output.
__device__ void rmsNormRow(const FaRowOpParams& p, int64_t r) {
  const bool residual = p.kind == FA_ROW_ADD_RMSNORM;
  const int64_t step = int64_t(blockDim.x) * kFaOpUnroll;
  float ss = 0.0f;
  for (int64_t first = threadIdx.x; first < p.cols; first += step) {
    float v[kFaOpUnroll], add[kFaOpUnroll];
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u) {
      const int64_t c = chunkCol(first, u);
      v[u] = c < p.cols ? at(p.a, r, c) : 0.0f;
      add[u] = residual && c < p.cols ? at(p.c, r, c) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u) {
      const int64_t c = chunkCol(first, u);
      if (residual && c < p.cols) {
        v[u] = roundTo(p.a.dtype, v[u] + add[u]);
        put(p.a, r, c, v[u]);
      }
      ss += v[u] * v[u];
    }
  }
  // blockSum's barrier also orders every read of c (which out may be) before the writes below.
  const float inv = rsqrtf(blockSum(ss) / static_cast<float>(p.cols) + p.eps);
  for (int64_t first = threadIdx.x; first < p.cols; first += step) {
    float v[kFaOpUnroll], w[kFaOpUnroll];
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u) {
      const int64_t c = chunkCol(first, u);
      v[u] = c < p.cols ? at(p.a, r, c) : 0.0f;
      w[u] = c < p.cols ? at(p.b, 0, c) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u) {
      const int64_t c = chunkCol(first, u);
      if (c < p.cols) put(p.out, r, c, v[u] * inv * w[u]);
    }
  }
}

// The vector form: the whole row stays in registers (kFaNormVecs vectors per thread at most), so
// memory is read once; the weight is loaded with the row, before the reduction.
extern "C" __global__ void __launch_bounds__(kFaNormThreads) fa_op_rms_norm_vec(const FaRowOpParams p) {
  opPrologue();
  const int64_t r = blockIdx.x;
  const bool residual = p.kind == FA_ROW_ADD_RMSNORM;
  const int64_t rowA = r * p.a.row_stride, rowC = r * p.c.row_stride;
  float v[kFaNormVecs][kFaVec], w[kFaNormVecs][kFaVec], add[kFaNormVecs][kFaVec];
#pragma unroll
  for (int u = 0; u < kFaNormVecs; ++u) {
    const int64_t c = (threadIdx.x + int64_t(u) * blockDim.x) * kFaVec;
    if (c >= p.cols) continue;
    fa::ldVec(p.a.ptr, p.a.dtype, rowA + c, v[u]);
    fa::ldVec(p.b.ptr, p.b.dtype, c, w[u]);
    if (residual) fa::ldVec(p.c.ptr, p.c.dtype, rowC + c, add[u]);
  }
  float ss = 0.0f;
#pragma unroll
  for (int u = 0; u < kFaNormVecs; ++u) {
    const int64_t c = (threadIdx.x + int64_t(u) * blockDim.x) * kFaVec;
    if (c >= p.cols) continue;
    if (residual) {
#pragma unroll
      for (int e = 0; e < kFaVec; ++e) v[u][e] = roundTo(p.a.dtype, v[u][e] + add[u][e]);
      fa::stVec(p.a.ptr, p.a.dtype, rowA + c, v[u]);
    }
#pragma unroll
    for (int e = 0; e < kFaVec; ++e) ss += v[u][e] * v[u][e];
  }
  // blockSum's barrier also orders every read of c (which out may be) before the writes below.
  const float inv = rsqrtf(blockSum(ss) / static_cast<float>(p.cols) + p.eps);
#pragma unroll
  for (int u = 0; u < kFaNormVecs; ++u) {
    const int64_t c = (threadIdx.x + int64_t(u) * blockDim.x) * kFaVec;
    if (c >= p.cols) continue;
    float o[kFaVec];
#pragma unroll
    for (int e = 0; e < kFaVec; ++e) o[e] = v[u][e] * inv * w[u][e];
    fa::stVec(p.out.ptr, p.out.dtype, r * p.out.row_stride + c, o);
  }
}

__device__ __forceinline__ float rowOp(int32_t kind, float a, float b) {
  switch (kind) {
    case FA_ROW_ADD:
      return a + b;
    case FA_ROW_SWIGLU:
      return a / (1.0f + expf(-a)) * b;
    case FA_ROW_GEGLU_TANH:
      return 0.5f * a * (1.0f + tanhf(0.7978845608028654f * (a + 0.044715f * a * a * a))) * b;
    default:  // FA_ROW_GEGLU_ERF
      return 0.5f * a * (1.0f + erff(a * 0.7071067811865476f)) * b;
  }
}

extern "C" __global__ void __launch_bounds__(1024) fa_op_rows(const FaRowOpParams p) {
  opPrologue();
  if (p.kind == FA_ROW_RMSNORM || p.kind == FA_ROW_ADD_RMSNORM) {
    rmsNormRow(p, blockIdx.x);
    return;
  }
  const int64_t r = blockIdx.x / p.chunks;
  const int64_t chunk = blockIdx.x % p.chunks;
  int64_t src = r;
  if (p.kind == FA_ROW_EMBEDDING) {
    src = p.tokens[r];
    if (src < 0 || src >= p.vocab) {
      if (chunk == 0 && threadIdx.x == 0) fa::reportOpError(p.error, FA_ERR_EMBEDDING_TOKEN, r);
      return;
    }
  }
  if (p.vec) {
    const int64_t c = (chunk * kFaOpChunkThreads + threadIdx.x) * kFaVec;
    if (c >= p.cols) return;
    float a[kFaVec], b[kFaVec];
    fa::ldVec(p.a.ptr, p.a.dtype, src * p.a.row_stride + c, a);
    if (p.kind != FA_ROW_EMBEDDING) {
      fa::ldVec(p.b.ptr, p.b.dtype, r * p.b.row_stride + c, b);
#pragma unroll
      for (int e = 0; e < kFaVec; ++e) a[e] = rowOp(p.kind, a[e], b[e]);
    }
    fa::stVec(p.out.ptr, p.out.dtype, r * p.out.row_stride + c, a);
    return;
  }
  const int64_t first = chunk * kFaOpChunkThreads * kFaOpUnroll + threadIdx.x;
  float a[kFaOpUnroll], b[kFaOpUnroll];
#pragma unroll
  for (int u = 0; u < kFaOpUnroll; ++u) {
    const int64_t c = chunkCol(first, u);
    a[u] = c < p.cols ? at(p.a, src, c) : 0.0f;
    b[u] = c < p.cols && p.kind != FA_ROW_EMBEDDING ? at(p.b, r, c) : 0.0f;
  }
#pragma unroll
  for (int u = 0; u < kFaOpUnroll; ++u) {
    const int64_t c = chunkCol(first, u);
    if (c < p.cols) put(p.out, r, c, p.kind == FA_ROW_EMBEDDING ? a[u] : rowOp(p.kind, a[u], b[u]));
  }
}

// The base of 'dynamic' scaling, which grows past original_max (seq_len 0: the largest position
// + 1); theta otherwise. Every thread of the CTA calls it (it meets at barriers).
__device__ double ropeBase(const FaRopeParams& p) {
  __shared__ double base;
  if (!p.dynamic) return p.theta;
  __shared__ int largest;
  if (threadIdx.x == 0) largest = 0;
  __syncthreads();
  if (p.seq_len == 0) {
    int mine = 0;
    for (int64_t i = threadIdx.x; i < p.tokens; i += blockDim.x) mine = max(mine, p.positions[i] + 1);
    atomicMax(&largest, mine);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const double len = p.seq_len != 0 ? double(p.seq_len) : double(max(largest, 1));
    base = len <= p.original_max
               ? p.theta
               : p.theta * pow(p.factor * len / p.original_max - (p.factor - 1.0), double(p.rotary) / double(p.rotary - 2));
  }
  __syncthreads();
  return base;
}

// Pair j's angle at position `pos`, as (cos, sin) times the attention scaling. In double:
// positions reach 10^5 and more, where an f32 angle is off by 10^-2.
__device__ __forceinline__ void ropeAngle(const FaRopeParams& p, double base, int64_t j, int32_t pos, float* cs, float* sn) {
  const double f = p.dynamic ? pow(base, -double(2 * j) / double(p.rotary)) : p.inv_freq[j];
  double s, c;
  sincos(double(pos) * f, &s, &c);
  *cs = float(c * p.attention_scaling);
  *sn = float(s * p.attention_scaling);
}

// `ctas` CTAs per token; a thread rotates one pair (or copies one dim past the rotary ones) of a
// group of up to kFaRopeHeads heads, so the pair's angle is computed once for them. Few tokens
// (decode): latency matters, not the memory accesses. With the KV append fused (p.slots), a key
// head's results also go to its cache row, and the items past the rotation's copy v there.
extern "C" __global__ void fa_op_rope(const FaRopeParams p) {
  opPrologue();
  const int64_t t = blockIdx.x / p.ctas;
  const int64_t half = p.rotary / 2;
  const double base = ropeBase(p);
  const int64_t perGroup = half + (p.head_dim - p.rotary);  // items per head group
  const int64_t item = (blockIdx.x % p.ctas) * int64_t(blockDim.x) + threadIdx.x;
  const int64_t ropeItems = (p.heads + p.group - 1) / p.group * perGroup;
  int64_t slot = p.slots ? p.slots[t] : -1;
  if (slot >= p.cache_rows) {
    if (item == 0) fa::reportOpError(p.error, FA_ERR_ROPE_SLOT, t);
    slot = -1;
  }
  if (item >= ropeItems) {  // v into the cache
    const int64_t first = (item - ropeItems) * kFaOpUnroll, width = p.append_heads * p.head_dim;
    if (slot < 0 || first >= width) return;
    float v[kFaOpUnroll];
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u) v[u] = first + u < width ? at(p.v, t, first + u) : 0.0f;
#pragma unroll
    for (int u = 0; u < kFaOpUnroll; ++u)
      if (first + u < width) put(p.cache_v, slot, first + u, v[u]);
    return;
  }
  const int64_t h0 = (item / perGroup) * p.group;
  const int64_t j = item % perGroup;
  const int64_t hn = min(int64_t(p.group), p.heads - h0);
  const int64_t firstKey = slot < 0 ? p.heads : p.heads - p.append_heads;
  const int64_t xr = t * p.x.row_stride + h0 * p.x_head_stride;
  const int64_t orow = t * p.out.row_stride + h0 * p.out_head_stride;
  // Element d of head h0 + h, rotated or copied: into out, and into the cache for a key head.
  const auto store = [&](int h, int64_t d, float value) {
    st(p.out.ptr, p.out.dtype, orow + h * p.out_head_stride + d, value);
    if (h0 + h >= firstKey) put(p.cache_k, slot, (h0 + h - firstKey) * p.head_dim + d, value);
  };
  if (j >= half) {  // past the rotary dims: copied (out may be another tensor than x)
    const int64_t d = p.rotary + (j - half);
    float v[kFaRopeHeads];
#pragma unroll
    for (int h = 0; h < kFaRopeHeads; ++h) v[h] = h < hn ? ld(p.x.ptr, p.x.dtype, xr + h * p.x_head_stride + d) : 0.0f;
#pragma unroll
    for (int h = 0; h < kFaRopeHeads; ++h)
      if (h < hn) store(h, d, v[h]);
    return;
  }
  float x1[kFaRopeHeads], x2[kFaRopeHeads];
#pragma unroll
  for (int h = 0; h < kFaRopeHeads; ++h) {
    x1[h] = h < hn ? ld(p.x.ptr, p.x.dtype, xr + h * p.x_head_stride + j) : 0.0f;
    x2[h] = h < hn ? ld(p.x.ptr, p.x.dtype, xr + h * p.x_head_stride + j + half) : 0.0f;
  }
  float cs, sn;
  ropeAngle(p, base, j, p.positions[t], &cs, &sn);
#pragma unroll
  for (int h = 0; h < kFaRopeHeads; ++h) {
    if (h >= hn) continue;
    store(h, j, x1[h] * cs - x2[h] * sn);
    store(h, j + half, x2[h] * cs + x1[h] * sn);
  }
}

// The vector form, for many tokens (prefill), where rows, head strides and both halves of the
// rotary dims are whole 16-byte vectors: one CTA per token computes the token's angles once into
// shared memory, then each thread rotates kFaVec pairs of a head at a time (or copies kFaVec dims
// past the rotary ones). The scalar form reads 2 bytes per access and recomputes each angle for
// every group of heads.
extern "C" __global__ void __launch_bounds__(kFaOpChunkThreads) fa_op_rope_vec(const FaRopeParams p) {
  opPrologue();
  const int64_t t = blockIdx.x;
  const int half = static_cast<int>(p.rotary / 2);
  const double base = ropeBase(p);
  __shared__ float cosOf[128], sinOf[128];
  const int32_t pos = p.positions[t];
  for (int j = threadIdx.x; j < half; j += blockDim.x) ropeAngle(p, base, j, pos, &cosOf[j], &sinOf[j]);
  __syncthreads();
  const int rotVecs = half / kFaVec, perHead = rotVecs + static_cast<int>(p.head_dim - p.rotary) / kFaVec;
  for (int64_t item = threadIdx.x; item < p.heads * perHead; item += blockDim.x) {
    const int64_t h = item / perHead;
    const int c = static_cast<int>(item % perHead);
    const int64_t xr = t * p.x.row_stride + h * p.x_head_stride, orow = t * p.out.row_stride + h * p.out_head_stride;
    if (c >= rotVecs) {  // past the rotary dims: copied (out may be another tensor than x)
      const int64_t d = p.rotary + int64_t(c - rotVecs) * kFaVec;
      float v[kFaVec];
      fa::ldVec(p.x.ptr, p.x.dtype, xr + d, v);
      fa::stVec(p.out.ptr, p.out.dtype, orow + d, v);
      continue;
    }
    const int j0 = c * kFaVec;
    float x1[kFaVec], x2[kFaVec], y1[kFaVec], y2[kFaVec];
    fa::ldVec(p.x.ptr, p.x.dtype, xr + j0, x1);
    fa::ldVec(p.x.ptr, p.x.dtype, xr + j0 + half, x2);
#pragma unroll
    for (int e = 0; e < kFaVec; ++e) {
      const float cs = cosOf[j0 + e], sn = sinOf[j0 + e];
      y1[e] = x1[e] * cs - x2[e] * sn;
      y2[e] = x2[e] * cs + x1[e] * sn;
    }
    fa::stVec(p.out.ptr, p.out.dtype, orow + j0, y1);
    fa::stVec(p.out.ptr, p.out.dtype, orow + j0 + half, y2);
  }
}

// `chunks` CTAs per token, one column chunk each; a negative slot skips the token (padding).
extern "C" __global__ void fa_op_kv_append(const FaKvAppendParams p) {
  opPrologue();
  const int64_t t = blockIdx.x / p.chunks;
  const int64_t chunk = blockIdx.x % p.chunks;
  const int64_t slot = p.slots[t];
  if (slot < 0) return;
  if (slot >= p.cache_rows) {
    if (chunk == 0 && threadIdx.x == 0) fa::reportOpError(p.error, p.slot_error ? p.slot_error : FA_ERR_KV_SLOT, t);
    return;
  }
  if (p.vec) {
    const int64_t c = (chunk * kFaOpChunkThreads + threadIdx.x) * kFaVec;
    if (c >= p.width) return;
    float k[kFaVec], v[kFaVec];
    fa::ldVec(p.k.ptr, p.k.dtype, t * p.k.row_stride + c, k);
    fa::ldVec(p.v.ptr, p.v.dtype, t * p.v.row_stride + c, v);
    fa::stVec(p.cache_k.ptr, p.cache_k.dtype, slot * p.cache_k.row_stride + c, k);
    fa::stVec(p.cache_v.ptr, p.cache_v.dtype, slot * p.cache_v.row_stride + c, v);
    return;
  }
  const int64_t first = chunk * kFaOpChunkThreads * kFaOpUnroll + threadIdx.x;
  float k[kFaOpUnroll], v[kFaOpUnroll];
#pragma unroll
  for (int u = 0; u < kFaOpUnroll; ++u) {
    const int64_t c = chunkCol(first, u);
    k[u] = c < p.width ? at(p.k, t, c) : 0.0f;
    v[u] = c < p.width ? at(p.v, t, c) : 0.0f;
  }
#pragma unroll
  for (int u = 0; u < kFaOpUnroll; ++u) {
    const int64_t c = chunkCol(first, u);
    if (c < p.width) {
      put(p.cache_k, slot, c, k[u]);
      put(p.cache_v, slot, c, v[u]);
    }
  }
}

// One CTA per row: the parts' weights exp(lse - max) / sum in double, then the weighted sum.
extern "C" __global__ void fa_op_lse_merge(const FaLseMergeParams p) {
  opPrologue();
  const int64_t r = blockIdx.x;
  const float ninf = -__int_as_float(0x7f800000);
  float mx = ninf;
  for (int64_t q = 0; q < p.parts; ++q) mx = fmaxf(mx, p.lses[q * p.lses_part_stride + r * p.lses_row_stride]);
  double sum = 0.0;
  if (mx != ninf) {
    for (int64_t q = 0; q < p.parts; ++q) {
      const float l = p.lses[q * p.lses_part_stride + r * p.lses_row_stride];
      if (l != ninf) sum += exp(double(l) - double(mx));
    }
  }
  for (int64_t c = threadIdx.x; c < p.d; c += blockDim.x) {
    float acc = 0.0f;
    if (mx != ninf) {
      for (int64_t q = 0; q < p.parts; ++q) {
        const float l = p.lses[q * p.lses_part_stride + r * p.lses_row_stride];
        if (l == ninf) continue;  // a part that saw no key adds nothing
        acc += float(exp(double(l) - double(mx)) / sum) * p.outs[q * p.outs_part_stride + r * p.outs_row_stride + c];
      }
    }
    put(p.out, r, c, acc);
  }
  if (p.lse != nullptr && threadIdx.x == 0) p.lse[r * p.lse_stride] = mx == ninf ? mx : float(double(mx) + log(sum));
}

extern "C" __global__ void fa_op_copy(const FaCopyParams p) {
  opPrologue();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < p.count; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, s = 0, d = 0;
    for (int k = 3; k >= 0; --k) {
      const int64_t c = rest % p.shape[k];
      rest /= p.shape[k];
      s += c * p.src_strides[k];
      d += c * p.dst_strides[k];
    }
    if (p.src_dtype == 3) {
      static_cast<int32_t*>(p.dst)[d] = static_cast<const int32_t*>(p.src)[s];
    } else {
      st(p.dst, p.dst_dtype, d, ld(p.src, p.src_dtype, s));
    }
  }
}

// One CTA per batch row.
extern "C" __global__ void fa_op_check_attention(const FaAttentionCheckParams p) {
  opPrologue();
  const int64_t b = blockIdx.x;
  const int32_t len = p.seqlens[b];
  const bool badLen = len < 0 || len > p.seq_k;
  if (threadIdx.x == 0) {
    if (badLen) fa::reportOpError(p.error, FA_ERR_SEQ_LENS, b);
    p.seqlens_out[b] = badLen ? 0 : len;
  }
  if (p.table == nullptr) return;
  const int64_t used = badLen ? 0 : (int64_t(len) + p.block_size - 1) / p.block_size;
  for (int64_t j = threadIdx.x; j < p.blocks_per_seq; j += blockDim.x) {
    const int32_t e = p.table[b * p.blocks_per_seq + j];
    const bool bad = j < used && (e < 0 || e >= p.num_blocks);
    if (bad) fa::reportOpError(p.error, FA_ERR_BLOCK_TABLE, b);
    p.table_out[b * p.blocks_per_seq + j] = j < used && !bad ? e : 0;
  }
}

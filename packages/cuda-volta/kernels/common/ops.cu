// The model ops of the cuda executor beside attention and the GEMM (cuBLAS): row-wise ops, RoPE,
// the KV append, the LSE merge, strided copies and the block-table check. All memory-bound: each
// element is read once as f32, computed, and stored in its tensor's dtype. Path-independent (built
// for every architecture with the combine kernel).
#include "numeric.cuh"
#include "op_error.cuh"
#include "op_params.h"

namespace {

__device__ __forceinline__ float ld(const void* p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case FA_F16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case FA_BF16:
      return __uint_as_float(uint32_t(static_cast<const uint16_t*>(p)[i]) << 16);
    default:
      return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ void st(void* p, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case FA_F16:
      static_cast<__half*>(p)[i] = __float2half_rn(v);
      break;
    case FA_BF16:
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(fa::f2bf_bits(v));
      break;
    default:
      static_cast<float*>(p)[i] = v;
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

}  // namespace

extern "C" __global__ void fa_op_rows(const FaRowOpParams p) {
  const int64_t r = blockIdx.x;
  if (p.kind == FA_ROW_EMBEDDING) {
    const int64_t token = p.tokens[r];
    if (token < 0 || token >= p.vocab) {
      if (threadIdx.x == 0) fa::reportOpError(p.error, FA_ERR_EMBEDDING_TOKEN, r);
      return;
    }
    for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) put(p.out, r, c, at(p.a, token, c));
    return;
  }
  if (p.kind == FA_ROW_RMSNORM) {
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
      const float x = at(p.a, r, c);
      ss += x * x;
    }
    const float inv = rsqrtf(blockSum(ss) / static_cast<float>(p.cols) + p.eps);
    for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) put(p.out, r, c, at(p.a, r, c) * inv * at(p.b, 0, c));
    return;
  }
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    const float a = at(p.a, r, c), b = at(p.b, r, c);
    float y;
    switch (p.kind) {
      case FA_ROW_ADD:
        y = a + b;
        break;
      case FA_ROW_SWIGLU:
        y = a / (1.0f + expf(-a)) * b;
        break;
      case FA_ROW_GEGLU_TANH:
        y = 0.5f * a * (1.0f + tanhf(0.7978845608028654f * (a + 0.044715f * a * a * a))) * b;
        break;
      default:  // FA_ROW_GEGLU_ERF
        y = 0.5f * a * (1.0f + erff(a * 0.7071067811865476f)) * b;
    }
    put(p.out, r, c, y);
  }
}

// One CTA per token. Angles in double: positions reach 10^5 and more, where an f32 angle is off by 10^-2.
extern "C" __global__ void fa_op_rope(const FaRopeParams p) {
  const int64_t t = blockIdx.x;
  const int64_t half = p.rotary / 2;
  __shared__ double base;
  if (p.dynamic) {
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
  }
  const double pos = double(p.positions[t]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double f = p.dynamic ? pow(base, -double(2 * i) / double(p.rotary)) : p.inv_freq[i];
    double s, c;
    sincos(pos * f, &s, &c);
    const float cs = float(c * p.attention_scaling), sn = float(s * p.attention_scaling);
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t xi = t * p.x.row_stride + h * p.x_head_stride;
      const int64_t oi = t * p.out.row_stride + h * p.out_head_stride;
      const float x1 = ld(p.x.ptr, p.x.dtype, xi + i), x2 = ld(p.x.ptr, p.x.dtype, xi + i + half);
      st(p.out.ptr, p.out.dtype, oi + i, x1 * cs - x2 * sn);
      st(p.out.ptr, p.out.dtype, oi + i + half, x2 * cs + x1 * sn);
    }
  }
  // Dims past the rotary ones are copied (out may be another tensor than x).
  for (int64_t h = 0; h < p.heads; ++h) {
    const int64_t xi = t * p.x.row_stride + h * p.x_head_stride;
    const int64_t oi = t * p.out.row_stride + h * p.out_head_stride;
    for (int64_t d = p.rotary + threadIdx.x; d < p.head_dim; d += blockDim.x)
      st(p.out.ptr, p.out.dtype, oi + d, ld(p.x.ptr, p.x.dtype, xi + d));
  }
}

// One CTA per token; a negative slot skips the token (padding).
extern "C" __global__ void fa_op_kv_append(const FaKvAppendParams p) {
  const int64_t t = blockIdx.x;
  const int64_t slot = p.slots[t];
  if (slot < 0) return;
  if (slot >= p.cache_rows) {
    if (threadIdx.x == 0) fa::reportOpError(p.error, FA_ERR_KV_SLOT, t);
    return;
  }
  for (int64_t c = threadIdx.x; c < p.width; c += blockDim.x) {
    put(p.cache_k, slot, c, at(p.k, t, c));
    put(p.cache_v, slot, c, at(p.v, t, c));
  }
}

// One CTA per row: the parts' weights exp(lse - max) / sum in double, then the weighted sum.
extern "C" __global__ void fa_op_lse_merge(const FaLseMergeParams p) {
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

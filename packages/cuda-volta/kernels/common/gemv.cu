// The linear op at decode sizes (src/exec/ops.ts picks it for a few rows): a matrix-vector product
// that reads the weight once. One warp per output column n: its lanes stream w's row n in 16-byte
// loads (kept out of L1, which holds x), kUnroll loads in flight per lane, multiply them with each
// row of x and reduce over the warp. f32 accumulation.
//
// Launched as a programmatic dependent (sm_90, src/exec/ops.ts): the weight does not depend on the
// kernel before it, so each warp issues its first loads of w, then waits for that kernel (whose x
// it reads) to complete. A short product is mostly latency; this way the latency of its first
// wave of weight loads hides behind the tail of the kernel before it.
#include "launch.cuh"
#include "op_elem.cuh"

namespace {

constexpr int kUnroll = 16;  // 16-byte loads of w in flight per lane: a 4096-wide f16 row per warp

// 16 bytes of the weight, streamed: read once, not kept in L1.
__device__ __forceinline__ uint4 ldStream(const uint4* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

template <bool BF16>
__device__ __forceinline__ void unpack(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (BF16) {
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    } else {
      const float2 h = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = h.x;
      f[2 * i + 1] = h.y;
    }
  }
}

template <int M, bool BF16>
__device__ __forceinline__ void gemv(const FaGemvParams& p) {
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kFaGemvWarps + threadIdx.x / 32;
  const bool live = n < p.n;
  const int64_t chunks = p.k / 8;
  const uint4* w = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.w.ptr) + (live ? n : 0) * p.w.row_stride);
  const uint4* x[M];
#pragma unroll
  for (int m = 0; m < M; ++m)
    x[m] = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.x.ptr) + m * p.x.row_stride);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  uint4 wv[kUnroll];
  const auto issue = [&](int64_t first) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = first + 32 * u;
      wv[u] = live && c < chunks ? ldStream(w + c) : make_uint4(0, 0, 0, 0);
    }
  };
  issue(lane);
  fa::grid_dependency_wait();  // x is the previous kernel's output
  for (int64_t first = lane; first < chunks; first += 32 * kUnroll) {
    if (first != lane) issue(first);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = first + 32 * u;
      if (c >= chunks) break;
      float wf[8];
      unpack<BF16>(wv[u], wf);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        unpack<BF16>(__ldg(x[m] + c), xf);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[m] = fmaf(wf[j], xf[j], acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
    for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
  if (live && lane == 0) {
    const float b = p.bias != nullptr ? fa::ld(p.bias, p.bias_dtype, n) : 0.0f;
#pragma unroll
    for (int m = 0; m < M; ++m) fa::st(p.out.ptr, p.out.dtype, m * p.out.row_stride + n, acc[m] + b);
  }
}

}  // namespace

// One entry point per row count and dtype (a kernel's registers are its largest case's):
// fa_gemv_f16_1 ... fa_gemv_bf16_8.
#define FA_GEMV(M)                                                                                         \
  extern "C" __global__ void __launch_bounds__(kFaGemvWarps * 32) fa_gemv_f16_##M(const FaGemvParams p) {  \
    gemv<M, false>(p);                                                                                     \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(kFaGemvWarps * 32) fa_gemv_bf16_##M(const FaGemvParams p) { \
    gemv<M, true>(p);                                                                                      \
  }
FA_GEMV(1)
FA_GEMV(2)
FA_GEMV(3)
FA_GEMV(4)
FA_GEMV(5)
FA_GEMV(6)
FA_GEMV(7)
FA_GEMV(8)

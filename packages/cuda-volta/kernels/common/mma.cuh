// The tile/mma abstraction: the attention kernel is written against these fragment types and
// calls, not against a particular instruction. The ampere path (sm_80+) implements them with
// mma.sync.m16n8k16, ldmatrix and cp.async; a volta (m8n8k4) or turing (m16n8k8) path adds its
// own implementation of the same calls (two m16n8k8 per k16 on Turing; quad-pair layouts on Volta)
// without touching the kernel body.
//
// Register layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), lane = 4 * g + t:
//   A 16x16 (row-major): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..), a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)
//   B 16x8  (k x n):     b[0] = (k 2t..2t+1, n g), b[1] = (k 2t+8..2t+9, n g)
//   C 16x8  (f32):       c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..2t+1)
// So the C fragments of two neighbouring n-tiles are exactly one A fragment: attention's P = softmax(S)
// goes from the first mma's accumulators to the second mma's operand without touching shared memory.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa {

struct FragA { uint32_t x[4]; };   // 16x16 operand, 8 elements per lane
struct FragB { uint32_t x[2]; };   // 16x8 operand, 4 elements per lane
struct FragC { float x[4]; };      // 16x8 f32 accumulator

// Storage types: how two floats become one 32-bit register of the operand type, and the mma flavour.
template <typename T> struct Elem;
template <> struct Elem<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ __half from_float(float x) { return __float2half_rn(x); }
  static __device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
};
template <> struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
  static __device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
};

// D = A * B + D.
template <typename T> __device__ __forceinline__ void mma(FragC& d, const FragA& a, const FragB& b);
template <> __device__ __forceinline__ void mma<__half>(FragC& d, const FragA& a, const FragB& b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d.x[0]), "+f"(d.x[1]), "+f"(d.x[2]), "+f"(d.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
}
template <> __device__ __forceinline__ void mma<__nv_bfloat16>(FragC& d, const FragA& a, const FragB& b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d.x[0]), "+f"(d.x[1]), "+f"(d.x[2]), "+f"(d.x[3])
      : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[0]), "r"(b.x[1]));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// A 16x16 tile of a row-major shared-memory matrix (row stride `ld` elements) as an A fragment.
template <typename T>
__device__ __forceinline__ void load_a(FragA& a, const T* tile, int ld, int lane) {
  const T* p = tile + (lane % 16) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(a.x[0]), "=r"(a.x[1]), "=r"(a.x[2]), "=r"(a.x[3])
               : "r"(smem_addr(p)));
}

// Two B fragments (n-tiles n0..n0+7 and n0+8..n0+15, one k16 step) from an [n][k] row-major matrix
// (K in S = Q K^T: rows are keys, columns the head dim).
template <typename T>
__device__ __forceinline__ void load_b_nk(FragB& b0, FragB& b1, const T* tile, int ld, int lane) {
  const T* p = tile + ((lane % 8) + (lane / 16) * 8) * ld + ((lane / 8) % 2) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}

// Two B fragments from a [k][n] row-major matrix (V in O = P V: rows are keys), transposed on load.
template <typename T>
__device__ __forceinline__ void load_b_kn(FragB& b0, FragB& b1, const T* tile, int ld, int lane) {
  const T* p = tile + ((lane % 8) + ((lane / 8) % 2) * 8) * ld + (lane / 16) * 8;
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b0.x[0]), "=r"(b0.x[1]), "=r"(b1.x[0]), "=r"(b1.x[1])
               : "r"(smem_addr(p)));
}

// Row/column of accumulator element e (0..3) of a 16x8 C fragment, relative to the tile.
__device__ __forceinline__ int c_row(int lane, int e) { return lane / 4 + (e >= 2 ? 8 : 0); }
__device__ __forceinline__ int c_col(int lane, int e) { return 2 * (lane % 4) + (e & 1); }

// The A fragment made of two neighbouring C fragments (columns 0..7 and 8..15 of a k16 step).
template <typename T>
__device__ __forceinline__ FragA c_to_a(const FragC& lo, const FragC& hi) {
  FragA a;
  a.x[0] = Elem<T>::pack(lo.x[0], lo.x[1]);
  a.x[1] = Elem<T>::pack(lo.x[2], lo.x[3]);
  a.x[2] = Elem<T>::pack(hi.x[0], hi.x[1]);
  a.x[3] = Elem<T>::pack(hi.x[2], hi.x[3]);
  return a;
}

// 16-byte asynchronous global->shared copy; with `valid` false the destination is zero-filled
// (src-size 0), so padded rows hold zeros and never NaN garbage that 0 * NaN would spread.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
// The same copy with all 16 bytes valid (no source-size operand).
__device__ __forceinline__ void cp_async16_full(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace fa

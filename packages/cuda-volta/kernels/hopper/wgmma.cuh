// The hopper tile layer (sm_90a): warpgroup MMA (wgmma.mma_async m64nNk16, f32 accumulators) on
// shared-memory tiles stored in the 128-byte swizzled layout, described by 64-bit matrix
// descriptors. The hopper attention kernel is written against these calls, as the older paths are
// against common/mma_m16n8.cuh.
//
// Shared-memory tile layout ("SW128", PTX ISA "Shared memory matrix layout", swizzle mode 128B): a
// tile of R rows x C elements (16-bit) is stored as C / 64 column blocks of R rows x 128 bytes; in
// row r, 16-byte chunk c (0..7) of a block sits at chunk position c ^ (r % 8). Every block starts at
// a multiple of 1024 bytes (the swizzle repeats every 8 rows). Q and K tiles are read K-major (rows
// = M or N, contiguous along the reduction dim); V tiles are the same layout read MN-major (rows =
// keys = the reduction dim, contiguous along the head dim), which wgmma transposes on the fly.
//
// Accumulator layout of m64nNk16 (f32): warp w of the warpgroup owns rows 16w..16w+15; for each
// n8 block j, d[4j + e] holds row 16w + lane/4 + 8 (e >= 2), column 8j + 2 (lane % 4) + (e & 1): per
// warp, the m16n8 C-fragment layout of mma.sync. So, as on the ampere path, the accumulators of
// two neighbouring n8 blocks packed to 16 bits are one A fragment of the next (register-A) wgmma.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace fa {
namespace hopper {

// Byte offset of 16-byte chunk `ch` (0..C/8-1) of row `r` in an SW128 tile of R rows.
template <int R>
__device__ __forceinline__ uint32_t sw128_offset(int r, int ch) {
  return (ch / 8) * (R * 128) + r * 128 + (((ch % 8) ^ (r % 8)) << 4);
}

// Matrix descriptor of an SW128 tile region starting at shared address `addr` (bytes).
// lbo: byte stride between 64-element column blocks along M/N of an MN-major operand (unused for
// K-major); sbo: byte stride between 8-row groups (1024 for SW128).
__device__ __forceinline__ uint64_t sw128_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) |
         ((uint64_t)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared memory written through the generic proxy (cp.async, st.shared) becomes visible to
// wgmma's async proxy only after this fence in each writing thread (then a barrier).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Keeps the compiler from moving accesses to accumulator registers across wgmma issue and wait
// (the asm statements only name them as operands of the issuing instruction).
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_regs(uint32_t (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

// m64nNk16 with f32 accumulators for element type T: ss (A and B from shared memory) and rs (A
// from registers, the m16n8k16 A-fragment layout per warp). Inline PTX has no register-list syntax,
// so the accumulator lists are spelled out once per N below and FA_WGMMA_SPEC writes both calls for
// a (type, N) pair.
template <typename T, int N> struct Wgmma;

#define FA_WGMMA_D64 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define FA_WGMMA_OPS64 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define FA_WGMMA_SS_ARGS64 "%32, %33, p, 1, 1, 0, %35;\n}\n"
#define FA_WGMMA_SS_PRED64 "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
#define FA_WGMMA_RS_ARGS64 "{%32, %33, %34, %35}, %36, 1, 1, 1, %37;\n"
#define FA_WGMMA_D128 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define FA_WGMMA_OPS128 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define FA_WGMMA_SS_ARGS128 "%64, %65, p, 1, 1, 0, %67;\n}\n"
#define FA_WGMMA_SS_PRED128 "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
#define FA_WGMMA_RS_ARGS128 "{%64, %65, %66, %67}, %68, 1, 1, 1, %69;\n"
#define FA_WGMMA_D256 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define FA_WGMMA_OPS256 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define FA_WGMMA_SS_ARGS256 "%128, %129, p, 1, 1, 0, %131;\n}\n"
#define FA_WGMMA_SS_PRED256 "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
#define FA_WGMMA_RS_ARGS256 "{%128, %129, %130, %131}, %132, 1, 1, 1, %133;\n"

#define FA_WGMMA_SPEC(TYPE, TY, N)                                                                          \
  template <> struct Wgmma<TYPE, N> {                                                                       \
    /* D (+)= A(shared, K-major) * B(shared, K-major or, with TRANS_B, MN-major) */                         \
    template <int TRANS_B>                                                                                  \
    static __device__ __forceinline__ void ss(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate) {   \
      asm volatile(FA_WGMMA_SS_PRED##N "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " "       \
                   FA_WGMMA_D##N ", " FA_WGMMA_SS_ARGS##N                                                  \
                   : FA_WGMMA_OPS##N                                                                        \
                   : "l"(a), "l"(b), "r"(accumulate), "n"(TRANS_B));                                        \
    }                                                                                                       \
    /* D += A(registers) * B(shared) */                                                                     \
    template <int TRANS_B>                                                                                  \
    static __device__ __forceinline__ void rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b) {       \
      asm volatile("wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TY "." TY " " FA_WGMMA_D##N ", "          \
                   FA_WGMMA_RS_ARGS##N                                                                      \
                   : FA_WGMMA_OPS##N                                                                        \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(TRANS_B));                     \
    }                                                                                                       \
  };
FA_WGMMA_SPEC(__half, "f16", 64)
FA_WGMMA_SPEC(__nv_bfloat16, "bf16", 64)
FA_WGMMA_SPEC(__half, "f16", 128)
FA_WGMMA_SPEC(__nv_bfloat16, "bf16", 128)
FA_WGMMA_SPEC(__half, "f16", 256)
FA_WGMMA_SPEC(__nv_bfloat16, "bf16", 256)

}  // namespace hopper
}  // namespace fa

// The model ops of the cpu executor (everything but attention): their parameters, and the table of
// kernels each ISA translation unit provides (ops_impl.inc, compiled beside flash_fwd_impl.inc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/flash_fwd.h"

namespace fastattn {

/** A matrix in a tensor's storage: `rows` rows of `cols` elements, row r at data + r·rowStride. */
struct Mat {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0, rowStride = 0;
};

/** A matrix an op writes. */
struct OutMat {
  void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0, rowStride = 0;
};

/** out[m, n] = sum_k x[m, k] · w[n, k] (+ bias[n]), accumulated in f32. */
struct GemmParams {
  Mat x;      // [m, k]
  Mat w;      // [n, k]
  Mat bias;   // [1, n], or data == nullptr
  OutMat out; // [m, n]
  int64_t nBlock = 0;  // output columns per work item (a multiple of the kernel's panel width)
  bool dot = false;    // few rows: dot products along k instead of packed panels
};

/** Row-wise ops: each work item is a range of rows [r0, r1). */
enum class RowOp : int { RmsNorm = 0, Add = 1, Swiglu = 2, GegluTanh = 3, GegluErf = 4, Copy = 5, Embedding = 6 };

struct RowParams {
  RowOp op = RowOp::Copy;
  Mat a;       // x (rmsNorm), a (add), gate (swiglu/geglu), src (copy), table (embedding)
  Mat b;       // weight [1, d] (rmsNorm), b (add), up (gated)
  OutMat out;
  const int32_t* tokens = nullptr;  // embedding: the table row of each output row
  float eps = 0.0f;
  int64_t rowsPerItem = 1;
};

/** Rotary embedding of [tokens][heads][headDim] rows (half-split pairs). */
struct RopeParams {
  Mat x;       // [tokens · heads, headDim], row (t, h) at t·tokenStride + h·headStride
  OutMat out;  // same geometry
  int64_t tokens = 0, heads = 0, headDim = 0, rotary = 0;  // rotary: leading dims rotated (even)
  int64_t xTokenStride = 0, xHeadStride = 0, outTokenStride = 0, outHeadStride = 0;
  const int32_t* positions = nullptr;
  const double* invFreq = nullptr;  // [rotary / 2]
  double attentionFactor = 1.0;     // cos and sin are scaled by it
  int64_t tokensPerItem = 1;
};

/** Writes k and v rows into a paged cache: token t to row slots[t] (a negative slot skips it). */
struct KvAppendParams {
  Mat k, v;               // [tokens, headsKV · headDim]
  OutMat cacheK, cacheV;  // [numBlocks · blockSize, headsKV · headDim]
  const int32_t* slots = nullptr;
  int64_t tokensPerItem = 1;
  const char* slotsField = "kvAppend.slots";  // what a slot past the cache is reported as
};

/** Merges partial attention rows by their LSE: outs [parts][rows][d], lses [parts][rows]. */
struct LseMergeParams {
  const float* outs = nullptr;
  const float* lses = nullptr;
  int64_t parts = 0, rows = 0, d = 0;
  int64_t outsPartStride = 0, outsRowStride = 0, lsesPartStride = 0, lsesRowStride = 0;
  OutMat out;
  float* lse = nullptr;  // [rows], or nullptr
  int64_t lseStride = 1;
  int64_t rowsPerItem = 1;
};

/** The op kernels of one ISA. */
struct OpKernels {
  /** Output columns a packed GEMM item is a multiple of. */
  int gemmPanel;
  /** Plans a GEMM for `threads` workers (nBlock, dot); returns its work items. */
  int64_t (*planGemm)(GemmParams& p, int threads);
  void (*gemmItem)(const GemmParams& p, int64_t item, Scratch& scratch);
  void (*rowItem)(const RowParams& p, int64_t item, Scratch& scratch);
  void (*ropeItem)(const RopeParams& p, int64_t item, Scratch& scratch);
  void (*kvAppendItem)(const KvAppendParams& p, int64_t item, Scratch& scratch);
  void (*lseMergeItem)(const LseMergeParams& p, int64_t item, Scratch& scratch);
};

}  // namespace fastattn

namespace fastattn {

namespace isa_generic { const OpKernels& opKernels(); }
#if defined(FASTATTN_X86)
namespace isa_avx2 { const OpKernels& opKernels(); }
namespace isa_avx512 { const OpKernels& opKernels(); }
#endif

/** The op kernels compiled for the same ISA as an attention kernel table. */
const OpKernels& opKernelsFor(const KernelTable& kernel);

}  // namespace fastattn

// Parameters of the model-op kernels (ops.cu), shared with the addon that fills them
// (native/src/context_ops.cpp). Plain C++: the host side compiles without CUDA headers.
#pragma once
#include <stdint.h>

// Element types of op tensors.
enum FaOpDType : int32_t { FA_F32 = 0, FA_F16 = 1, FA_BF16 = 2 };

// What the device error word (two int32s: code, detail) holds after a kernel found bad data.
enum FaOpError : int32_t {
  FA_ERR_NONE = 0,
  FA_ERR_EMBEDDING_TOKEN = 1,  // detail: the row
  FA_ERR_KV_SLOT = 2,          // detail: the token
  FA_ERR_BLOCK_TABLE = 3,      // detail: the batch row
  FA_ERR_SEQ_LENS = 4,         // detail: the batch row
  FA_ERR_SAMPLE_PARAMS = 5,    // detail: the row (a parameter outside its range, a negative counter or count)
  FA_ERR_ROPE_SLOT = 6,        // detail: the token (rope's fused KV append)
};

// A matrix inside a tensor's storage: row r starts at ptr + r * row_stride elements.
struct FaMat {
  void* ptr;
  int64_t row_stride;
  int32_t dtype;
  int32_t pad;
};

// Memory-bound kernels keep several loads in flight per thread: each thread handles kFaOpUnroll
// columns of a chunk, and a chunk is kFaOpChunkThreads * kFaOpUnroll columns (one CTA).
constexpr int32_t kFaOpUnroll = 4;
constexpr int32_t kFaOpChunkThreads = 256;
// Vector kernels (chosen when every tensor's address and row stride allow 16-byte accesses, and
// the columns are a multiple of kFaVec): a thread reads kFaVec consecutive elements at once. A
// chunk is then kFaOpChunkThreads * kFaVec columns, and a norm keeps up to kFaNormVecs vectors
// per thread in registers (one pass over memory) with at most kFaNormThreads threads.
constexpr int32_t kFaVec = 8;
constexpr int32_t kFaNormVecs = 4;
constexpr int32_t kFaNormThreads = 512;

enum FaRowOp : int32_t {
  FA_ROW_RMSNORM = 0,
  FA_ROW_ADD = 1,
  FA_ROW_SWIGLU = 2,
  FA_ROW_GEGLU_TANH = 3,
  FA_ROW_GEGLU_ERF = 4,
  FA_ROW_EMBEDDING = 5,
  FA_ROW_ADD_RMSNORM = 6,  // a += c (stored in a's dtype), then out = rmsNorm(a)
};

// rmsNorm (b: the weight row; c: the residual added first) runs one CTA per row. The others
// (add/gated: b the second operand; embedding: a the table, row tokens[r]) run `chunks` CTAs per
// row, one column chunk each (vec: chunks of vectors).
struct FaRowOpParams {
  FaMat a, b, c, out;
  const int32_t* tokens;
  int32_t* error;
  int64_t rows, cols, vocab, chunks;
  float eps;
  int32_t kind;
  int32_t vec;
  int32_t pad;
};

// Rotary embedding of [tokens][heads][head_dim] rows: row (t, h) at t * row_stride + h * head_stride.
// A token's work items are (group of `group` heads, rotated pair or copied dim); `ctas` CTAs of
// kFaOpChunkThreads threads per token cover them. A group (up to kFaRopeHeads) shares one angle
// computation; a few tokens get groups of one head, for more threads.
constexpr int32_t kFaRopeHeads = 8;
struct FaRopeParams {
  FaMat x, out;
  int64_t x_head_stride, out_head_stride;
  const int32_t* positions;
  int64_t tokens, heads, head_dim, rotary, ctas;
  double attention_scaling;
  // 'dynamic' scaling: the base grows past original_max (seq_len 0: the largest position + 1).
  int32_t dynamic;
  int32_t group;
  double theta, factor, original_max;
  int64_t seq_len;
  // The KV append fused in (fa_op_rope only; slots nullptr: none): the last append_heads heads of
  // out are keys, written with v to cache row slots[t] after the rotation; v is copied by
  // kFaOpUnroll columns per item after the rotation's items.
  FaMat v, cache_k, cache_v;
  const int32_t* slots;
  int32_t* error;
  int64_t append_heads, cache_rows;
  double inv_freq[128];  // rotary / 2 pairs (for 'dynamic': unused, computed from the base)
};

// `chunks` CTAs per token, one column chunk each (vec: chunks of vectors); a negative slot skips
// the token.
struct FaKvAppendParams {
  FaMat k, v, cache_k, cache_v;
  const int32_t* slots;
  int32_t* error;
  int64_t tokens, width, cache_rows, chunks;
  int32_t vec;
  int32_t slot_error;  // what a slot past the cache reports (0: FA_ERR_KV_SLOT; rope's append: FA_ERR_ROPE_SLOT)
};

struct FaLseMergeParams {
  const float* outs;
  const float* lses;
  FaMat out;
  float* lse;
  int64_t parts, rows, d;
  int64_t outs_part_stride, outs_row_stride, lses_part_stride, lses_row_stride, lse_stride;
};

// dst = src over any layouts of one shape (up to 4 dims), converting float dtypes; i32 as raw bits.
struct FaCopyParams {
  const void* src;
  void* dst;
  int32_t src_dtype, dst_dtype;  // FaOpDType, or 3 for i32
  int64_t shape[4], src_strides[4], dst_strides[4];
  int64_t count;
};

// An attention op's device-side inputs, checked and copied before it runs: seqLensK must be in
// [0, seq_k], and the entries of a paged cache's block table a row uses must name a block in
// [0, num_blocks). A bad value is replaced (length 0, block 0) and reported, so attention never
// reads outside its tensors.
struct FaAttentionCheckParams {
  const int32_t* seqlens;
  int32_t* seqlens_out;
  const int32_t* table;  // nullptr: a dense cache
  int32_t* table_out;
  int32_t* error;
  int64_t batch, seq_k, blocks_per_seq, block_size, num_blocks;
};

// The sample op (core's exec/sampling.ts, in double precision), in two kernels. The first runs
// one CTA per slice of kFaSampleSlice tokens of a row: it writes the penalized logits and the
// slice's FaSampleSlice. The second runs one CTA per row: it merges the slices (the row's
// largest logit, its first token, the log of the softmax's sum) and picks the token.
// `work` holds [rows][vocab] doubles (the penalized logits), then [rows][slices] FaSampleSlice.
constexpr int32_t kFaSampleThreads = 256;
constexpr int32_t kFaSampleSlice = kFaSampleThreads * 8;
struct FaSampleSlice {
  double max;    // the slice's largest penalized logit
  double sum;    // sum of exp((y - max) / T) over the slice (the count of y == max if max is infinite)
  int64_t first; // the first token holding max
  int64_t bad;   // a negative count was seen
};
struct FaSampleParams {
  const float* logits;
  int64_t logits_row_stride;
  int64_t rows, vocab;
  const float* temperature;
  const int32_t* top_k;
  const float* top_p;
  const float* min_p;
  const float* repetition_penalty;
  const float* presence_penalty;
  const float* frequency_penalty;
  const int32_t* seed;
  const int32_t* counters;
  const int32_t* counts;  // nullptr: no penalties
  int64_t counts_row_stride;
  int32_t* tokens;
  float* logprobs;  // nullptr: not wanted
  double* work;
  int32_t* error;
  int64_t slices;  // kFaSampleSlice tokens each
};

// Standard attention (kernels/common/standard.cu), the materialized baseline, one batch row b at a
// time. The gather writes row b's keys and values for every query head (GQA repeats a KV head)
// as dense [heads_q][seq_k][head_dim] matrices for the batched GEMMs. A key at or past the row's
// length is written as zeros: a cache's unused slots may hold anything, and 0 · NaN would reach
// the output through P · V.
struct FaStdGatherParams {
  const void* k;  // dense [batch][seq_k][heads_kv][head_dim], or paged [blocks][block_size][heads_kv][head_dim]
  const void* v;
  void* k_out;
  void* v_out;
  const int32_t* seqlens;  // checked (fa_op_check_attention)
  const int32_t* table;    // checked; nullptr: dense
  int64_t b, seq_k, heads_q, heads_kv, head_dim, blocks_per_seq, block_size;
  int64_t units;       // 16-byte (or 2-byte) units per key row of one head
  int32_t unit_bytes;  // 16, or 2 when a row is not a multiple of 16 bytes
  int32_t pad;
};

// The softmax over row b's scaled scores [heads_q][seq_q][seq_k] (f32) into P (q's dtype), with
// the mask applied: key j of query row i is allowed iff j < len and -left <= j - (i + len - seq_q)
// <= right (a negative bound: unbounded). One CTA per (head, query row). lse: [batch][heads_q][seq_q].
struct FaStdSoftmaxParams {
  const float* scores;
  void* probs;
  float* lse;  // nullptr: not wanted
  const int32_t* seqlens;
  int64_t b, heads_q, seq_q, seq_k, left, right;
  int32_t dtype;
  int32_t pad;
};

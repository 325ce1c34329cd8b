// Launch parameters of the forward kernels, shared by the host addon (plain C++) and the kernels
// (nvcc). Plain C types only: the addon is built without any CUDA header.
#pragma once
#include <stdint.h>

// A band side of "Infinity" (mask 'none', causal's left side). Kept far from INT32 overflow: the
// tile formulas add it to row offsets, which they do in 64-bit anyway.
#define FA_BAND_INF (1 << 30)

// A copy-engine tensor map (CUtensorMap: 128 opaque bytes), encoded by the host per launch.
struct alignas(128) FaTensorMap {
  unsigned long long opaque[16];
};

struct FaFwdParams {
  const void* q;        // [batch, seq_q, heads_q, head_dim]
  const void* k;        // [batch, seq_k, heads_kv, head_dim], or paged [blocks, block_size, heads_kv, head_dim]
  const void* v;        // like k
  void* out;            // like q
  float* lse;           // [batch, heads_q, seq_q]
  float* part_o;        // split-KV: [splits][batch][heads_q][seq_q][head_dim] (f32), else null
  float* part_lse;      // split-KV: [splits][batch][heads_q][seq_q], else null
  const int* seqlens_k; // [batch] valid keys per batch row, or null (= seq_k)
  int64_t q_batch_stride, q_row_stride;  // elements (q; out has its own below)
  int64_t k_batch_stride, k_row_stride;  // elements (v shares k's layout)
  int batch, seq_q, seq_k, heads_q, heads_kv, group;
  int head_dim;
  int band_left, band_right;  // FA_BAND_INF for an unbounded side
  float scale;        // softmax scale
  float scale_log2;   // scale * log2(e): the kernels use exp2
  int pack_gqa;       // 1: a tile's rows are (query row, query head of the KV head) pairs (decode)
  int rows_total;     // seq_q, or seq_q * group when pack_gqa
  int num_splits;     // split-KV partitions; 1 writes out/lse directly
  // Fused split-KV combine (ampere path, run 6): one int per (batch, head, q-tile) CTA row of the
  // grid, zero between launches. Each split CTA adds 1 after writing its partials; the last one
  // merges them into out/lse and resets the counter to 0. Null: the separate combine kernel merges.
  int* counters;
  // Paged KV (null: dense): key j of batch row b is row (block_table[b * blocks_per_seq + (j >>
  // block_shift)] << block_shift) + (j & (2^block_shift - 1)) of k and v. Entries past a row's
  // valid length are never read; nor are keys at or past it (their table entries may be garbage).
  const int* block_table;
  int block_shift, blocks_per_seq;
  // out's strides (elements). q may be a view of wider rows (a fused QKV product's output, read
  // in place); out is laid out on its own.
  int64_t o_batch_stride, o_row_stride;
  // Kernels that copy K/V with the copy engine (the hopper path, hopper/mainloop.cuh): k and v as 4-d tensors
  // (head dim, KV head, row, batch), and q (head dim, head, row, batch) unless pack_gqa; else unset.
  // Their kernels take the parameters __grid_constant__, so the maps are read in place.
  FaTensorMap tma_k, tma_v, tma_q;
};

struct FaCombineParams {
  const float* part_o;
  const float* part_lse;
  void* out;
  float* lse;
  int batch, seq_q, heads_q, head_dim, num_splits;
  int64_t o_batch_stride, o_row_stride;  // out's strides (elements)
};

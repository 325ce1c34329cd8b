#include "launch_desc.h"

#include "js_args.h"

namespace fa {

Launch parseLaunch(const Napi::Object& d) {
  Launch l;
  auto num = [&](const char* k) { return d.Get(k).As<Napi::Number>(); };
  auto ptr = [&](const char* k) { return ptrArg(d.Get(k)); };
  l.module = d.Get("module").As<Napi::String>().Utf8Value();
  l.kernel = d.Get("kernel").As<Napi::String>().Utf8Value();
  if (d.Get("combine").IsString()) l.combine = d.Get("combine").As<Napi::String>().Utf8Value();
  Napi::Array g = d.Get("grid").As<Napi::Array>();
  for (uint32_t i = 0; i < 3; ++i) l.grid[i] = g.Get(i).As<Napi::Number>().Uint32Value();
  l.threads = num("threads").Uint32Value();
  l.smem = num("smem").Int32Value();
  l.pdl = d.Has("pdl") && d.Get("pdl").ToBoolean().Value();
  FaFwdParams& p = l.p;
  p.q = reinterpret_cast<const void*>(ptr("q"));
  p.k = reinterpret_cast<const void*>(ptr("k"));
  p.v = reinterpret_cast<const void*>(ptr("v"));
  p.out = reinterpret_cast<void*>(ptr("out"));
  p.lse = reinterpret_cast<float*>(ptr("lse"));
  p.part_o = reinterpret_cast<float*>(ptr("partO"));
  p.part_lse = reinterpret_cast<float*>(ptr("partLse"));
  p.seqlens_k = reinterpret_cast<const int*>(ptr("seqLensK"));
  p.q_batch_stride = num("qBatchStride").Int64Value();
  p.q_row_stride = num("qRowStride").Int64Value();
  p.o_batch_stride = num("outBatchStride").Int64Value();
  p.o_row_stride = num("outRowStride").Int64Value();
  p.k_batch_stride = num("kBatchStride").Int64Value();
  p.k_row_stride = num("kRowStride").Int64Value();
  p.batch = num("batch").Int32Value();
  p.seq_q = num("seqQ").Int32Value();
  p.seq_k = num("seqK").Int32Value();
  p.heads_q = num("headsQ").Int32Value();
  p.heads_kv = num("headsKV").Int32Value();
  p.group = p.heads_q / p.heads_kv;
  p.head_dim = num("headDim").Int32Value();
  p.band_left = num("bandLeft").Int32Value();
  p.band_right = num("bandRight").Int32Value();
  p.scale = num("scale").FloatValue();
  p.scale_log2 = static_cast<float>(num("scale").DoubleValue() * 1.4426950408889634);
  p.pack_gqa = num("packGqa").Int32Value();
  p.rows_total = p.pack_gqa ? p.seq_q * p.group : p.seq_q;
  p.num_splits = num("numSplits").Int32Value();
  p.counters = d.Has("counters") && !d.Get("counters").IsUndefined() ? reinterpret_cast<int*>(ptr("counters")) : nullptr;
  p.block_table = nullptr;
  p.block_shift = 0;
  p.blocks_per_seq = 0;
  if (d.Has("blockTable") && !d.Get("blockTable").IsUndefined()) {  // a paged cache (checked in TypeScript)
    p.block_table = reinterpret_cast<const int*>(ptr("blockTable"));
    const uint32_t blockSize = num("blockSize").Uint32Value();
    while ((1u << p.block_shift) < blockSize) ++p.block_shift;
    p.blocks_per_seq = num("blocksPerSeq").Int32Value();
  }
  if (d.Has("tma") && d.Get("tma").IsObject()) {
    const Napi::Object t = d.Get("tma").As<Napi::Object>();
    l.tma = true;
    l.bf16 = t.Get("bf16").ToBoolean().Value();
    l.kvRows = t.Get("kvRows").As<Napi::Number>().Int64Value();
    l.boxRows = t.Get("boxRows").As<Napi::Number>().Uint32Value();
    l.qRows = t.Get("qRows").As<Napi::Number>().Uint32Value();
  }
  FaCombineParams& c = l.c;
  c.part_o = p.part_o;
  c.part_lse = p.part_lse;
  c.out = p.out;
  c.lse = p.lse;
  c.batch = p.batch;
  c.seq_q = p.seq_q;
  c.heads_q = p.heads_q;
  c.head_dim = p.head_dim;
  c.num_splits = p.num_splits;
  c.o_batch_stride = p.o_batch_stride;
  c.o_row_stride = p.o_row_stride;
  return l;
}

}  // namespace fa

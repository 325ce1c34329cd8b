// Attention launches: the forward kernel, then (split-KV without the fused merge) the combine kernel.
#include <cstdint>
#include <memory>

#include "context.h"

namespace fa {

// pdl: programmatic dependent launch (sm_90+): the grid may be dispatched while the previous
// kernel of the stream finishes; the kernel then waits (griddepcontrol.wait) before touching
// memory. Only for kernels built with that wait (the ampere and hopper paths, sm_90+ code).
void Context::launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, int smem, void* arg,
                     const char* what, bool pdl, CUstream stream) {
  if (!stream) stream = stream_;
  if (smem > 48 * 1024) {
    std::lock_guard<std::mutex> lock(fnMu_);
    auto it = smemSet_.find(f);
    if (it == smemSet_.end() || it->second < smem) {
      FA_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute");
      smemSet_[f] = smem;
    }
  }
  void* args[] = {arg};
  if (pdl && driver().cuLaunchKernelEx) {
    CUlaunchAttribute attr{};
    attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig cfg{gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream, &attr, 1};
    FA_CU(cuLaunchKernelEx(&cfg, f, args, nullptr), what);
    return;
  }
  FA_CU(cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream, args, nullptr), what);
}

// The tensor maps of a copy-engine kernel: k and v as (head dim, KV head, row, batch), boxes of 64
// elements (one 128-byte swizzle row) x 1 head x boxRows rows, swizzled as wgmma reads them; q the
// same over query heads, in boxes of the CTA's qRows rows, unless its rows are packed GQA pairs.
static void encodeMap(FaTensorMap* map, int type, const void* base, const unsigned long long (&dims)[4],
                      const unsigned long long (&strides)[3], unsigned rows) {
  const unsigned box[4] = {64, 1, rows, 1};
  const unsigned one[4] = {1, 1, 1, 1};
  FA_CU(cuTensorMapEncodeTiled(map, type, 4, const_cast<void*>(base), dims, strides, box, one,
                                        CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
        "cuTensorMapEncodeTiled");
}

static void encodeMaps(Launch& l) {
  const Driver& d = driver();
  if (!d.cuTensorMapEncodeTiled) throw FaError("UNSUPPORTED", "tma: this CUDA driver has no cuTensorMapEncodeTiled");
  const FaFwdParams& p = l.p;
  const unsigned long long e = 2;  // bytes per element (f16, bf16)
  const bool paged = p.block_table != nullptr;
  if (l.kvRows <= 0 || l.kvRows >= (int64_t(1) << 31) || l.boxRows == 0 || l.boxRows > 256 || l.qRows == 0 ||
      l.qRows > 256)
    throw FaError("INVALID_ARGUMENT", "tma: kvRows, boxRows or qRows out of range");
  const int type = l.bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const unsigned long long hd = static_cast<unsigned long long>(p.head_dim);
  const unsigned long long kvRowBytes = static_cast<unsigned long long>(p.k_row_stride) * e;
  const unsigned long long kvDims[4] = {hd, static_cast<unsigned long long>(p.heads_kv),
                                        static_cast<unsigned long long>(l.kvRows),
                                        paged ? 1ull : static_cast<unsigned long long>(p.batch)};
  const unsigned long long kvStrides[3] = {hd * e, kvRowBytes,
                                           paged ? kvRowBytes * l.kvRows : static_cast<unsigned long long>(p.k_batch_stride) * e};
  encodeMap(&l.p.tma_k, type, p.k, kvDims, kvStrides, l.boxRows);
  encodeMap(&l.p.tma_v, type, p.v, kvDims, kvStrides, l.boxRows);
  if (p.pack_gqa) return;
  const unsigned long long qRowBytes = static_cast<unsigned long long>(p.q_row_stride) * e;
  const unsigned long long qDims[4] = {hd, static_cast<unsigned long long>(p.heads_q),
                                       static_cast<unsigned long long>(p.seq_q), static_cast<unsigned long long>(p.batch)};
  // One batch row: any stride will do, and a view's may not be a multiple of 16 bytes.
  const unsigned long long qBatchBytes =
      p.batch == 1 ? qRowBytes * static_cast<unsigned long long>(p.seq_q) : static_cast<unsigned long long>(p.q_batch_stride) * e;
  const unsigned long long qStrides[3] = {hd * e, qRowBytes, qBatchBytes};
  encodeMap(&l.p.tma_q, type, p.q, qDims, qStrides, l.qRows);
}

void Context::enqueue(Launch& l, CUstream stream) {
  if (l.tma) encodeMaps(l);
  launch(function(l.module, l.kernel), l.grid[0], l.grid[1], l.grid[2], l.threads, l.smem, &l.p, "cuLaunchKernel(attention)",
         l.pdl, stream);
  if (l.p.num_splits > 1 && !l.p.counters) {  // with counters the last split CTA merges (fused)
    const unsigned rows = static_cast<unsigned>(int64_t(l.p.batch) * l.p.heads_q * l.p.seq_q);
    launch(function("common/combine", l.combine), rows, 1, 1, 128, 0, &l.c, "cuLaunchKernel(combine)", false, stream);
  }
}

// attention(desc): one launch, then the stream is synchronized.
Napi::Value Context::Attention(const Napi::CallbackInfo& info) {
  auto l = std::make_shared<Launch>(parseLaunch(info[0].As<Napi::Object>()));
  return submit(info, [this, l]() {
    enqueue(*l);
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize(attention)");
  });
}

}  // namespace fa

// The model ops enqueued on a stream (src/exec/ops.ts): the op kernels of kernels/common (row ops,
// RoPE, the KV append, copies, the attention checks, sampling, standard attention's gather and
// softmax), the cuBLAS products, and memsets. Each call reads its arguments from a plain object
// that mirrors a parameter struct of kernels/common/op_params.h.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "../../kernels/common/op_params.h"
#include "context.h"
#include "js_args.h"

namespace fa {

namespace {

double num(const Napi::Object& o, const char* k) { return o.Get(k).As<Napi::Number>().DoubleValue(); }
int64_t i64(const Napi::Object& o, const char* k) { return static_cast<int64_t>(num(o, k)); }

/** { ptr: bigint, rowStride, dtype } */
FaMat mat(const Napi::Object& args, const char* name) {
  if (!args.Get(name).IsObject()) return FaMat{nullptr, 0, 0, 0};
  const Napi::Object o = args.Get(name).As<Napi::Object>();
  return FaMat{reinterpret_cast<void*>(ptrArg(o.Get("ptr"))), i64(o, "rowStride"), static_cast<int32_t>(num(o, "dtype")), 0};
}

template <typename T>
T* devicePtr(const Napi::Object& o, const char* k) {
  return reinterpret_cast<T*>(ptrArg(o.Get(k)));
}

unsigned rowThreads(int64_t cols) {
  return static_cast<unsigned>(std::min<int64_t>(256, std::max<int64_t>(32, (cols + 31) / 32 * 32)));
}

// Column chunks of a row for the chunked kernels (op_params.h), scalar or vector.
int64_t columnChunks(int64_t cols, bool vec = false) {
  const int64_t chunk = int64_t(kFaOpChunkThreads) * (vec ? kFaVec : kFaOpUnroll);
  return std::max<int64_t>(1, (cols + chunk - 1) / chunk);
}

// Whether the vector kernels may read `cols` columns of each matrix: 16-byte-aligned rows.
bool vectorizable(int64_t cols, std::initializer_list<FaMat> ms) {
  if (cols % kFaVec != 0) return false;
  for (const FaMat& m : ms) {
    if (m.ptr == nullptr) continue;
    if (reinterpret_cast<uintptr_t>(m.ptr) % 16 != 0 || m.row_stride % kFaVec != 0) return false;
  }
  return true;
}

// A one-dimensional grid of rows * per-row CTAs, refused past CUDA's limit before anything runs.
unsigned gridOf(int64_t rows, int64_t perRow, const char* op) {
  if (rows * perRow > int64_t(0x7fffffff)) throw FaError("UNSUPPORTED", std::string(op) + ": too many rows for one launch");
  return static_cast<unsigned>(rows * perRow);
}

}  // namespace

// setOpPdl(enabled): whether the op kernels are launched as programmatic dependents (sm_90+ code,
// which waits for the previous kernel before reading; the caller checked the build has it).
Napi::Value Context::SetOpPdl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    opPdl_ = info[0].ToBoolean().Value();
    return env.Undefined();
  });
}

// enqueueOp(stream, kind, args): one op kernel of common/ops (kernels/common/ops.cu), common/sample
// or common/standard. The TypeScript side checked the op against the contract and the tensors' bounds.
Napi::Value Context::EnqueueOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const std::string kind = info[1].As<Napi::String>().Utf8Value();
    const Napi::Object a = info[2].As<Napi::Object>();
    int32_t* error = reinterpret_cast<int32_t*>(errorWord(s));
    const auto run = [&](const char* name, unsigned grid, unsigned threads, void* params) {
      if (grid == 0) return;
      launch(function("common/ops", name), grid, 1, 1, threads, 0, params, name, opPdl_, s);
    };
    if (kind == "rows") {
      const int32_t rowKind = static_cast<int32_t>(num(a, "kind"));
      const bool norm = rowKind == FA_ROW_RMSNORM || rowKind == FA_ROW_ADD_RMSNORM;
      const int64_t cols = i64(a, "cols");
      FaRowOpParams p{mat(a, "a"), mat(a, "b"), mat(a, "c"), mat(a, "out"), devicePtr<const int32_t>(a, "tokens"), error, i64(a, "rows"), cols,
                      i64(a, "vocab"), 1, static_cast<float>(num(a, "eps")), rowKind, 0, 0};
      const bool vec = vectorizable(cols, {p.a, p.b, p.c, p.out});
      if (norm) {
        // The vector norm holds its row in registers: 2 vectors per thread, or up to kFaNormVecs
        // past kFaNormThreads threads. Else kFaOpUnroll columns per thread, up to 1024 threads.
        const int64_t vecs = cols / kFaVec;
        int64_t threads = (vecs + 1) / 2;
        if (threads > kFaNormThreads) threads = (vecs + kFaNormVecs - 1) / kFaNormVecs;
        if (vec && threads <= kFaNormThreads) {
          const unsigned t = static_cast<unsigned>(std::max<int64_t>(32, (threads + 31) / 32 * 32));
          run("fa_op_rms_norm_vec", gridOf(p.rows, 1, "rows"), t, &p);
        } else {
          const unsigned t =
              static_cast<unsigned>(std::min<int64_t>(1024, ((cols + kFaOpUnroll - 1) / kFaOpUnroll + 31) / 32 * 32));
          run("fa_op_rows", gridOf(p.rows, 1, "rows"), std::max(32u, t), &p);
        }
      } else {
        p.vec = vec ? 1 : 0;
        p.chunks = columnChunks(cols, vec);
        run("fa_op_rows", gridOf(p.rows, p.chunks, "rows"), kFaOpChunkThreads, &p);
      }
    } else if (kind == "rope") {
      FaRopeParams p{};
      p.x = mat(a, "x");
      p.out = mat(a, "out");
      p.x_head_stride = i64(a, "xHeadStride");
      p.out_head_stride = i64(a, "outHeadStride");
      p.positions = devicePtr<const int32_t>(a, "positions");
      p.tokens = i64(a, "tokens");
      p.heads = i64(a, "heads");
      p.head_dim = i64(a, "headDim");
      p.rotary = i64(a, "rotaryDim");
      p.attention_scaling = num(a, "attentionScaling");
      p.dynamic = a.Get("dynamic").ToBoolean().Value() ? 1 : 0;
      p.theta = num(a, "theta");
      p.factor = num(a, "factor");
      p.original_max = num(a, "originalMax");
      p.seq_len = i64(a, "seqLen");
      const Napi::Float64Array inv = a.Get("invFreq").As<Napi::Float64Array>();
      if (p.rotary / 2 > 128 || inv.ElementLength() != static_cast<size_t>(p.rotary / 2)) {
        throw FaError("UNSUPPORTED", "rope: at most 256 rotary dims");
      }
      for (size_t i = 0; i < inv.ElementLength(); ++i) p.inv_freq[i] = inv[i];
      // The fused KV append: { v, cacheK, cacheV, slots, heads, cacheRows } (src/exec/ops.ts checked
      // that out's key heads, v and the caches are row matrices of heads * headDim columns).
      const bool append = a.Get("append").IsObject();
      if (append) {
        const Napi::Object ap = a.Get("append").As<Napi::Object>();
        p.v = mat(ap, "v");
        p.cache_k = mat(ap, "cacheK");
        p.cache_v = mat(ap, "cacheV");
        p.slots = devicePtr<const int32_t>(ap, "slots");
        p.error = error;
        p.append_heads = i64(ap, "heads");
        p.cache_rows = i64(ap, "cacheRows");
      }
      // Many tokens (prefill) whose rows, head strides and rotary halves are whole 16-byte vectors
      // take the vector form: one CTA per token.
      const bool vec = p.tokens > 64 && (p.rotary / 2) % kFaVec == 0 && (p.head_dim - p.rotary) % kFaVec == 0 &&
                       p.x_head_stride % kFaVec == 0 && p.out_head_stride % kFaVec == 0 &&
                       vectorizable(p.head_dim, {p.x, p.out});
      if (vec) {
        // Prefill: the append after the rotation, as its own kernel over out's key heads.
        FaRopeParams rotation = p;
        rotation.slots = nullptr;
        run("fa_op_rope_vec", gridOf(p.tokens, 1, "rope"), kFaOpChunkThreads, &rotation);
        if (append) {
          const int64_t width = p.append_heads * p.head_dim;
          FaMat keys = p.out;
          keys.ptr = static_cast<char*>(p.out.ptr) + (p.heads - p.append_heads) * p.out_head_stride * (p.out.dtype == FA_F32 ? 4 : 2);
          FaKvAppendParams k{keys, p.v, p.cache_k, p.cache_v, p.slots, error, p.tokens, width, p.cache_rows, 0, 0, FA_ERR_ROPE_SLOT};
          k.vec = vectorizable(width, {k.k, k.v, k.cache_k, k.cache_v}) ? 1 : 0;
          k.chunks = columnChunks(width, k.vec != 0);
          run("fa_op_kv_append", gridOf(p.tokens, k.chunks, "rope"), kFaOpChunkThreads, &k);
        }
      } else {
        // A few tokens (decode) get a thread per head and pair: the angle is cheap, latency is not.
        p.group = p.tokens <= 64 ? 1 : kFaRopeHeads;
        int64_t items = (p.heads + p.group - 1) / p.group * (p.rotary / 2 + p.head_dim - p.rotary);
        if (append) items += (p.append_heads * p.head_dim + kFaOpUnroll - 1) / kFaOpUnroll;
        p.ctas = std::max<int64_t>(1, (items + kFaOpChunkThreads - 1) / kFaOpChunkThreads);
        run("fa_op_rope", gridOf(p.tokens, p.ctas, "rope"), kFaOpChunkThreads, &p);
      }
    } else if (kind == "kvAppend") {
      FaKvAppendParams p{mat(a, "k"), mat(a, "v"), mat(a, "cacheK"), mat(a, "cacheV"), devicePtr<const int32_t>(a, "slots"),
                         error, i64(a, "tokens"), i64(a, "width"), i64(a, "cacheRows"), 0, 0, 0};
      p.vec = vectorizable(p.width, {p.k, p.v, p.cache_k, p.cache_v}) ? 1 : 0;
      p.chunks = columnChunks(p.width, p.vec != 0);
      run("fa_op_kv_append", gridOf(p.tokens, p.chunks, "kvAppend"), kFaOpChunkThreads, &p);
    } else if (kind == "lseMerge") {
      FaLseMergeParams p{devicePtr<const float>(a, "outs"), devicePtr<const float>(a, "lses"), mat(a, "out"),
                         devicePtr<float>(a, "lse"), i64(a, "parts"), i64(a, "rows"), i64(a, "d"),
                         i64(a, "outsPartStride"), i64(a, "outsRowStride"), i64(a, "lsesPartStride"),
                         i64(a, "lsesRowStride"), i64(a, "lseStride")};
      run("fa_op_lse_merge", static_cast<unsigned>(p.rows), rowThreads(p.d), &p);
    } else if (kind == "copy") {
      FaCopyParams p{};
      p.src = devicePtr<const void>(a, "src");
      p.dst = devicePtr<void>(a, "dst");
      p.src_dtype = static_cast<int32_t>(num(a, "srcDtype"));
      p.dst_dtype = static_cast<int32_t>(num(a, "dstDtype"));
      const Napi::Array shape = a.Get("shape").As<Napi::Array>();
      const Napi::Array ss = a.Get("srcStrides").As<Napi::Array>();
      const Napi::Array ds = a.Get("dstStrides").As<Napi::Array>();
      p.count = 1;
      for (uint32_t k = 0; k < 4; ++k) {
        p.shape[k] = shape.Get(k).As<Napi::Number>().Int64Value();
        p.src_strides[k] = ss.Get(k).As<Napi::Number>().Int64Value();
        p.dst_strides[k] = ds.Get(k).As<Napi::Number>().Int64Value();
        p.count *= p.shape[k];
      }
      const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((p.count + 255) / 256, int64_t(sms_) * 8));
      run("fa_op_copy", blocks, 256, &p);
    } else if (kind == "checkAttention") {
      FaAttentionCheckParams p{devicePtr<const int32_t>(a, "seqLens"), devicePtr<int32_t>(a, "seqLensOut"),
                               devicePtr<const int32_t>(a, "table"), devicePtr<int32_t>(a, "tableOut"), error,
                               i64(a, "batch"), i64(a, "seqK"), i64(a, "blocksPerSeq"), i64(a, "blockSize"),
                               i64(a, "numBlocks")};
      run("fa_op_check_attention", static_cast<unsigned>(p.batch), 128, &p);
    } else if (kind == "standardGather") {
      FaStdGatherParams p{devicePtr<const void>(a, "k"), devicePtr<const void>(a, "v"), devicePtr<void>(a, "kOut"),
                          devicePtr<void>(a, "vOut"), devicePtr<const int32_t>(a, "seqLens"),
                          devicePtr<const int32_t>(a, "table"), i64(a, "b"), i64(a, "seqK"), i64(a, "headsQ"),
                          i64(a, "headsKV"), i64(a, "headDim"), i64(a, "blocksPerSeq"), i64(a, "blockSize"), 0, 0, 0};
      const int64_t rowBytes = p.head_dim * 2;
      p.unit_bytes = rowBytes % 16 == 0 ? 16 : 2;
      p.units = rowBytes / p.unit_bytes;
      const unsigned blocks = gridOf((p.heads_q * p.seq_k * p.units + 255) / 256, 1, "attention");
      if (blocks > 0) launch(function("common/standard", "fa_std_gather"), blocks, 2, 1, 256, 0, &p, "fa_std_gather", false, s);
    } else if (kind == "standardSoftmax") {
      FaStdSoftmaxParams p{devicePtr<const float>(a, "scores"), devicePtr<void>(a, "probs"), devicePtr<float>(a, "lse"),
                           devicePtr<const int32_t>(a, "seqLens"), i64(a, "b"), i64(a, "headsQ"), i64(a, "seqQ"),
                           i64(a, "seqK"), i64(a, "left"), i64(a, "right"), static_cast<int32_t>(num(a, "dtype")), 0};
      const unsigned rows = gridOf(p.heads_q * p.seq_q, 1, "attention");
      if (rows > 0) launch(function("common/standard", "fa_std_softmax"), rows, 1, 1, 256, 0, &p, "fa_std_softmax", false, s);
    } else if (kind == "sample") {
      FaSampleParams p{};
      p.logits = devicePtr<const float>(a, "logits");
      p.logits_row_stride = i64(a, "logitsRowStride");
      p.rows = i64(a, "rows");
      p.vocab = i64(a, "vocab");
      p.temperature = devicePtr<const float>(a, "temperature");
      p.top_k = devicePtr<const int32_t>(a, "topK");
      p.top_p = devicePtr<const float>(a, "topP");
      p.min_p = devicePtr<const float>(a, "minP");
      p.repetition_penalty = devicePtr<const float>(a, "repetitionPenalty");
      p.presence_penalty = devicePtr<const float>(a, "presencePenalty");
      p.frequency_penalty = devicePtr<const float>(a, "frequencyPenalty");
      p.seed = devicePtr<const int32_t>(a, "seed");
      p.counters = devicePtr<const int32_t>(a, "counters");
      p.counts = devicePtr<const int32_t>(a, "counts");
      p.counts_row_stride = i64(a, "countsRowStride");
      p.tokens = devicePtr<int32_t>(a, "tokens");
      p.logprobs = devicePtr<float>(a, "logprobs");
      p.work = devicePtr<double>(a, "work");
      p.error = error;
      p.slices = (p.vocab + kFaSampleSlice - 1) / kFaSampleSlice;
      if (p.slices > 65535) throw FaError("UNSUPPORTED", "sample: a vocabulary of more than 65535 slices");
      const unsigned rows = gridOf(p.rows, 1, "sample");
      if (rows > 0 && p.vocab > 0) {
        launch(function("common/sample", "fa_op_sample_slices"), rows, static_cast<unsigned>(p.slices), 1,
               kFaSampleThreads, 0, &p, "fa_op_sample_slices", opPdl_, s);
        launch(function("common/sample", "fa_op_sample"), rows, 1, 1, kFaSampleThreads, 0, &p, "fa_op_sample", opPdl_, s);
      }
    } else {
      throw FaError("INVALID_INPUT", "op: no kernel for '" + kind + "'");
    }
    return env.Undefined();
  });
}

// prepareBlas(path): loads cuBLAS and makes its handles and workspace now (a capture cannot).
Napi::Value Context::PrepareBlas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    gemm_.prepare(info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "");
    return env.Undefined();
  });
}

// enqueueGemm(stream, { x, w, out, m, n, k, beta, api, cublasPath }): out[m, n] = x[m, k] · w[n, k]ᵀ
// (+ beta · out) with f32 accumulation, through cuBLASLt (api 0) or cublasGemmEx (api 1). A batch of
// products adds batched: { alpha, wKN, batch, xStride, wStride, outStride } (gemm.h).
Napi::Value Context::EnqueueGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const Napi::Object a = info[1].As<Napi::Object>();
    gemm_.prepare(a.Get("cublasPath").IsString() ? a.Get("cublasPath").As<Napi::String>().Utf8Value() : "");
    GemmProblem p{mat(a, "x"), mat(a, "w"), mat(a, "out"), i64(a, "m"), i64(a, "n"), i64(a, "k"),
                  static_cast<float>(num(a, "beta"))};
    if (a.Get("batched").IsObject()) {
      const Napi::Object b = a.Get("batched").As<Napi::Object>();
      p.alpha = static_cast<float>(num(b, "alpha"));
      p.wKN = b.Get("wKN").ToBoolean().Value();
      p.batch = i64(b, "batch");
      p.xStride = i64(b, "xStride");
      p.wStride = i64(b, "wStride");
      p.outStride = i64(b, "outStride");
    }
    const int64_t limit = (int64_t(1) << 31) - 1;
    if (p.m > limit || p.n > limit || p.k > limit || p.x.row_stride > limit || p.w.row_stride > limit ||
        p.out.row_stride > limit || p.batch < 1 || p.batch > limit) {
      throw FaError("UNSUPPORTED", "gemm: sizes, row strides and the batch must be below 2^31");
    }
    gemm_.run(p, num(a, "api") == 1 ? GemmApi::GemmEx : GemmApi::Lt, s);
    return env.Undefined();
  });
}

// enqueueMemset(stream, ptr, bytes): zeros (capturable, unlike a host copy).
Napi::Value Context::EnqueueMemset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    if (bytes > 0) FA_CU(cuMemsetD8Async(ptrArg(info[1]), 0, bytes, s), "cuMemsetD8Async");
    return env.Undefined();
  });
}

// captureBegin(stream): the work enqueued on the stream from here on is recorded, not run.
Napi::Value Context::CaptureBegin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    if (!driver().cuStreamBeginCapture || !driver().cuGraphInstantiateWithFlags) {
      throw FaError("UNSUPPORTED", "record: this CUDA driver has no graph capture (CUDA 11.4+ needed)");
    }
    FA_CU(cuStreamBeginCapture(streamArg(info[0]), CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    return env.Undefined();
  });
}

// captureEnd(stream): ends the capture and instantiates it; returns the graph's handle.
Napi::Value Context::CaptureEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUgraph graph = nullptr;
    FA_CU(cuStreamEndCapture(streamArg(info[0]), &graph), "cuStreamEndCapture");
    CUgraphExec exec = nullptr;
    const CUresult r = driver().cuGraphInstantiateWithFlags(&exec, graph, 0);
    driver().cuGraphDestroy(graph);
    check(r, "cuGraphInstantiateWithFlags");
    const uint32_t id = nextHandle_++;
    graphs_[id] = exec;
    return Napi::Number::New(env, id);
  });
}

// graphLaunch(stream, graph): one launch replays every op of the graph, in order.
Napi::Value Context::GraphLaunch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    auto it = graphs_.find(info[1].As<Napi::Number>().Uint32Value());
    if (it == graphs_.end()) throw FaError("DISPOSED", "the step graph was disposed");
    FA_CU(cuGraphLaunch(it->second, s), "cuGraphLaunch");
    return env.Undefined();
  });
}

Napi::Value Context::GraphDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!ctx_) return env.Undefined();
    current();
    auto it = graphs_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it != graphs_.end()) {
      FA_CU(cuGraphExecDestroy(it->second), "cuGraphExecDestroy");  // deferred by the driver while running
      graphs_.erase(it);
    }
    return env.Undefined();
  });
}

}  // namespace fa

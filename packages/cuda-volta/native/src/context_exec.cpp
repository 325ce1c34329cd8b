// The execution contract on CUDA (src/exec/executor.ts): streams and events by handle, host copies
// through pinned buffers, and ops enqueued from the JS thread without waiting. A read or a
// synchronization waits on libuv's pool for an event, then checks the device error word the op
// kernels set when they find bad data (a token outside the table, a slot outside the cache).
#include <algorithm>
#include <cstring>
#include <string>

#include "../../kernels/common/op_params.h"
#include "context.h"
#include "js_args.h"
#include "launch_desc.h"

namespace fa {

namespace {


size_t sizeClass(size_t bytes) {
  size_t c = 4096;
  while (c < bytes) c <<= 1;
  return c;
}

const char* errorField(int32_t code) {
  switch (code) {
    case FA_ERR_EMBEDDING_TOKEN:
      return "embedding.tokens";
    case FA_ERR_KV_SLOT:
      return "kvAppend.slots";
    case FA_ERR_BLOCK_TABLE:
      return "attention.paged.blockTable";
    case FA_ERR_SEQ_LENS:
      return "attention.seqLensK";
    case FA_ERR_SAMPLE_PARAMS:
      return "sample.params";
    case FA_ERR_ROPE_SLOT:
      return "rope.append.slots";
  }
  return "op";
}

}  // namespace

void* PinnedPool::take(size_t bytes, size_t& klass) {
  klass = sizeClass(bytes);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = idle.find(klass);
    if (it != idle.end()) {
      void* p = it->second;
      idle.erase(it);
      return p;
    }
  }
  void* p = nullptr;
  FA_CU(cuMemAllocHost(&p, klass), "cuMemAllocHost_v2");
  return p;
}

void PinnedPool::give(void* p, size_t klass) {
  std::lock_guard<std::mutex> lock(mu);
  idle.emplace(klass, p);
}

void PinnedPool::clear() {
  std::lock_guard<std::mutex> lock(mu);
  for (auto& e : idle) driver().cuMemFreeHost(e.second);
  idle.clear();
}

CUstream Context::streamArg(const Napi::Value& v) {
  const uint32_t id = v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 0;
  auto it = streams_.find(id);
  if (it == streams_.end()) throw FaError("INVALID_INPUT", "stream: not a stream of this context");
  return it->second;
}

// The stream's error word, made (zeroed) on first use: streams make theirs when created, since a
// capture cannot allocate.
CUdeviceptr Context::errorWord(CUstream s) {
  auto it = errorWords_.find(s);
  if (it != errorWords_.end()) return it->second;
  CUdeviceptr word = 0;
  FA_CU(cuMemAlloc(&word, 8), "cuMemAlloc_v2");
  FA_CU(cuMemsetD8Async(word, 0, 8, s), "cuMemsetD8Async");
  FA_CU(cuStreamSynchronize(s), "cuStreamSynchronize");
  errorWords_[s] = word;
  return word;
}

void Context::releaseExec() {
  const Driver& d = driver();
  for (auto& e : streams_) {
    d.cuStreamSynchronize(e.second);
    d.cuStreamDestroy(e.second);
  }
  streams_.clear();
  for (auto& e : events_) d.cuEventDestroy(e.second);
  events_.clear();
  for (auto& g : graphs_) d.cuGraphExecDestroy(g.second);
  graphs_.clear();
  gemm_.release();
  for (auto& e : errorWords_) d.cuMemFree(e.second);
  errorWords_.clear();
  pinned_.clear();
}

// allocAsync(stream, bytes): device memory in the stream's order (the driver's memory pool);
// OOM at once when the pool cannot grow.
Napi::Value Context::AllocAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const double bytes = info[1].As<Napi::Number>().DoubleValue();
    if (!driver().cuMemAllocAsync) {
      throw FaError("UNSUPPORTED", "executor: this CUDA driver has no stream-ordered allocation (CUDA 11.2+ needed)");
    }
    CUdeviceptr p = 0;
    FA_CU(cuMemAllocAsync(&p, static_cast<size_t>(std::max(bytes, 1.0)), s), "cuMemAllocAsync");
    return Napi::BigInt::New(env, static_cast<uint64_t>(p));
  });
}

// freeAsync(stream, ptr): freed once the stream's work enqueued so far is done.
Napi::Value Context::FreeAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!ctx_) return env.Undefined();  // the context's release freed everything
    current();
    CUstream s = streamArg(info[0]);
    FA_CU(cuMemFreeAsync(ptrArg(info[1]), s), "cuMemFreeAsync");
    return env.Undefined();
  });
}

Napi::Value Context::StreamCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = nullptr;
    FA_CU(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    errorWord(s);
    const uint32_t id = nextHandle_++;
    streams_[id] = s;
    return Napi::Number::New(env, id);
  });
}

// streamDestroy(id): the stream is destroyed once its work has finished (the driver defers it).
Napi::Value Context::StreamDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!ctx_) return env.Undefined();
    current();
    const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
    auto it = streams_.find(id);
    if (it != streams_.end()) {
      auto word = errorWords_.find(it->second);
      if (word != errorWords_.end()) {
        FA_CU(cuMemFreeAsync(word->second, it->second), "cuMemFreeAsync");
        errorWords_.erase(word);
      }
      FA_CU(cuStreamDestroy(it->second), "cuStreamDestroy_v2");
      streams_.erase(it);
    }
    return env.Undefined();
  });
}

// Waits (on libuv's pool) for `event`, runs `after`, then checks `seen`, the copy of the error word
// enqueued just before the event (see snapshotError): rejects with INVALID_INPUT naming the op's
// field. With `clearOn` (a synchronization) the device word is reset, so an error is reported
// once; reads and events leave it for the synchronization.
static Napi::Value awaitEvent(Napi::Env env, CUcontext ctx, CUevent event, bool destroy, CUdeviceptr word,
                              ErrorSlot seen, CUstream clearOn, std::function<void()> after,
                              std::vector<Napi::Object> keep, Napi::Value owner) {
  auto job = new Job(
      env,
      [ctx, event, destroy, word, seen, clearOn, after]() {
        FA_CU(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        CUresult r = driver().cuEventSynchronize(event);
        if (destroy) driver().cuEventDestroy(event);
        int32_t e[2] = {FA_ERR_NONE, 0};
        if (seen.slot) {
          e[0] = seen.slot[0];
          e[1] = seen.slot[1];
          seen.pool->give(seen.slot, seen.klass);
        }
        check(r, "cuEventSynchronize");
        if (after) after();
        if (e[0] == FA_ERR_NONE) return;
        if (clearOn) {
          FA_CU(cuMemsetD8Async(word, 0, 8, clearOn), "cuMemsetD8Async");
          FA_CU(cuStreamSynchronize(clearOn), "cuStreamSynchronize");
        }
        const std::string field = errorField(e[0]);
        const std::string what = e[0] == FA_ERR_KV_SLOT || e[0] == FA_ERR_ROPE_SLOT ? "token " : "row ";
        throw FaError("INVALID_INPUT", field + ": " + what + std::to_string(e[1]) + " is outside its range", field);
      },
      nullptr);
  job->keep.emplace_back(Napi::Persistent(owner.As<Napi::Object>()));
  for (auto& o : keep) job->keep.emplace_back(Napi::Persistent(o));
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

// The stream's error word at this point of the stream, copied in stream order to a pinned slot of
// this wait's own, so the waiter reads it from the host after its event without a transfer.
ErrorSlot Context::snapshotError(CUstream s) {
  ErrorSlot slot{&pinned_, nullptr, 0};
  slot.slot = static_cast<int32_t*>(pinned_.take(8, slot.klass));
  FA_CU(cuMemcpyDtoHAsync(slot.slot, errorWord(s), 8, s), "cuMemcpyDtoHAsync_v2");
  return slot;
}

// allocPinned(bytes): page-locked host memory that kernels and copies reach through unified
// addressing (the host pointer is the device pointer), and an ArrayBuffer over it, with no copy.
// Freed by freePinned only: the buffer has no finalizer.
Napi::Value Context::AllocPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    const size_t bytes = std::max<size_t>(1, static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()));
    void* p = nullptr;
    FA_CU(cuMemAllocHost(&p, bytes), "cuMemAllocHost_v2");
    Napi::Object o = Napi::Object::New(env);
    o.Set("ptr", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p))));
    o.Set("buffer", Napi::ArrayBuffer::New(env, p, bytes));
    return o;
  });
}

// freePinned(stream, ptr, buffer): detaches the ArrayBuffer now (every view of it becomes empty,
// so JS cannot touch freed memory), then frees the memory once the stream's work so far is done.
Napi::Value Context::FreePinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::ArrayBuffer buffer = info[2].As<Napi::ArrayBuffer>();
    if (!buffer.IsDetached()) buffer.Detach();
    void* p = reinterpret_cast<void*>(ptrArg(info[1]));
    if (!ctx_) return Napi::Promise::Deferred::New(env).Promise();  // released with the context
    current();
    CUevent e = nullptr;
    FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    FA_CU(cuEventRecord(e, streamArg(info[0])), "cuEventRecord");
    return awaitEvent(env, ctx_, e, true, 0, ErrorSlot{}, nullptr, [p]() { driver().cuMemFreeHost(p); }, {}, Value());
  });
}

// streamSynchronize(id): resolves once the stream's work has finished; rejects (once) with what
// a kernel found wrong in the data since the last synchronization.
Napi::Value Context::StreamSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const ErrorSlot seen = snapshotError(s);
    CUevent e = nullptr;
    FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    FA_CU(cuEventRecord(e, s), "cuEventRecord");
    // Cleared on the context's own stream: waiting on `s` would wait for work enqueued later.
    return awaitEvent(env, ctx_, e, true, errorWord(s), seen, stream_, nullptr, {}, Value());
  });
}

// streamWait(stream, event): work enqueued on the stream after this waits for the event.
Napi::Value Context::StreamWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    auto it = events_.find(info[1].As<Napi::Number>().Uint32Value());
    if (it == events_.end()) throw FaError("INVALID_INPUT", "event: not an event of this context");
    FA_CU(cuStreamWaitEvent(s, it->second, 0), "cuStreamWaitEvent");
    return env.Undefined();
  });
}

Napi::Value Context::EventRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    CUevent e = nullptr;
    FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    FA_CU(cuEventRecord(e, s), "cuEventRecord");
    const uint32_t id = nextHandle_++;
    events_[id] = e;
    return Napi::Number::New(env, id);
  });
}

// eventSynchronize(id): resolves once the work before the event has finished.
Napi::Value Context::EventSynchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    auto it = events_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == events_.end()) throw FaError("INVALID_INPUT", "event: not an event of this context");
    return awaitEvent(env, ctx_, it->second, false, 0, ErrorSlot{}, nullptr, nullptr, {}, Value());
  });
}

Napi::Value Context::EventDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!ctx_) return env.Undefined();
    current();
    auto it = events_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it != events_.end()) {
      FA_CU(cuEventDestroy(it->second), "cuEventDestroy_v2");  // deferred by the driver while pending
      events_.erase(it);
    }
    return env.Undefined();
  });
}

struct PinnedReturn {
  PinnedPool* pool;
  void* p;
  size_t klass;
};

// enqueueWrite(stream, ptr, data): the host bytes are copied into a pinned buffer now (the caller
// may reuse its array at once), and from there to the device in stream order.
Napi::Value Context::EnqueueWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const CUdeviceptr dst = ptrArg(info[1]);
    Napi::TypedArray src = info[2].As<Napi::TypedArray>();
    const size_t bytes = src.ByteLength();
    if (bytes == 0) return env.Undefined();
    size_t klass = 0;
    void* stage = pinned_.take(bytes, klass);
    std::memcpy(stage, viewData(src), bytes);
    FA_CU(cuMemcpyAsync(dst, reinterpret_cast<CUdeviceptr>(stage), bytes, s), "cuMemcpyAsync");
    auto* ret = new PinnedReturn{&pinned_, stage, klass};
    FA_CU(cuLaunchHostFunc(
              s,
              [](void* user) {
                auto* r = static_cast<PinnedReturn*>(user);
                r->pool->give(r->p, r->klass);
                delete r;
              },
              ret),
          "cuLaunchHostFunc");
    return env.Undefined();
  });
}

// enqueueRead(stream, ptr, out): copies into `out` (a typed array of the bytes to read) once the
// stream gets there; resolves then, or rejects with a pending data error.
Napi::Value Context::EnqueueRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const CUdeviceptr src = ptrArg(info[1]);
    Napi::TypedArray out = info[2].As<Napi::TypedArray>();
    const size_t bytes = out.ByteLength();
    char* host = viewData(out);
    size_t klass = 0;
    void* stage = pinned_.take(std::max<size_t>(bytes, 1), klass);
    if (bytes > 0) FA_CU(cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(stage), src, bytes, s), "cuMemcpyAsync");
    const ErrorSlot seen = snapshotError(s);
    CUevent e = nullptr;
    FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
    FA_CU(cuEventRecord(e, s), "cuEventRecord");
    PinnedPool* pool = &pinned_;
    return awaitEvent(
        env, ctx_, e, true, errorWord(s), seen, nullptr,
        [pool, stage, klass, host, bytes]() {
          std::memcpy(host, stage, bytes);
          pool->give(stage, klass);
        },
        {out}, Value());
  });
}

// enqueueCopy(stream, dst, src, bytes): device to device.
Napi::Value Context::EnqueueCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    const size_t bytes = static_cast<size_t>(info[3].As<Napi::Number>().DoubleValue());
    if (bytes > 0) FA_CU(cuMemcpyAsync(ptrArg(info[1]), ptrArg(info[2]), bytes, s), "cuMemcpyAsync");
    return env.Undefined();
  });
}

// enqueueAttention(stream, desc): the attention launch of src/launch.ts, on the stream.
Napi::Value Context::EnqueueAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUstream s = streamArg(info[0]);
    Launch l = parseLaunch(info[1].As<Napi::Object>());
    enqueue(l, s);
    return env.Undefined();
  });
}

}  // namespace fa

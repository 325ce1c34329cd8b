// A CUDA context per backend: the device's primary context, one non-blocking stream, pinned
// staging, the loaded modules. Its methods are split by concern: context.cpp (lifetime, jobs),
// context_memory.cpp (device memory and copies), context_modules.cpp (modules, kernels,
// occupancy), context_launch.cpp (attention launches), context_timing.cpp (CUDA-event timing).
// Everything that waits on the device runs as a Job on libuv's thread pool and settles a promise;
// the JS thread only allocates, frees and reads attributes.
#pragma once
#include <napi.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gemm.h"
#include "driver.h"
#include "job.h"
#include "js_errors.h"
#include "launch_desc.h"

namespace fa {

// Page-locked host buffers by size class, reused: the executor's host copies go through them.
struct PinnedPool {
  std::mutex mu;
  std::multimap<size_t, void*> idle;  // by size class
  void* take(size_t bytes, size_t& klass);
  void give(void* p, size_t klass);
  void clear();
};

// A pinned slot one wait's copy of its stream's error word lands in; returned to the pool once read.
struct ErrorSlot {
  PinnedPool* pool = nullptr;
  int32_t* slot = nullptr;
  size_t klass = 0;
};


class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Context(const Napi::CallbackInfo& info);
  ~Context() override;

 private:
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  bool retained_ = false;
  bool opPdl_ = false;  // the op kernels launched as programmatic dependents (setOpPdl)
  int sms_ = 1;
  std::mutex mu_;  // one device job at a time: they share the stream and the staging buffers
  std::map<std::string, CUmodule> modules_;  // by name: '<path>/<file>' without .fatbin
  std::map<std::string, CUfunction> functions_;
  std::map<CUfunction, int> smemSet_;
  std::mutex fnMu_;  // functions_ and smemSet_: the executor looks kernels up on the JS thread
  void* staging_ = nullptr;
  size_t stagingBytes_ = 0;
  static constexpr size_t kStagingChunk = size_t(64) << 20;

  // context.cpp: lifetime and jobs.
  void current() { FA_CU(cuCtxSetCurrent(ctx_), "cuCtxSetCurrent"); }
  void alive() {
    if (!ctx_) throw FaError("DISPOSED", "the CUDA context was disposed");
  }
  void release();
  Napi::Value run(const Napi::CallbackInfo& info, std::unique_ptr<Job> job);

  // Queues `work` as a Job that holds the context (and `keep`) alive and runs with the context
  // current, one job at a time; `done` makes the promise's value.
  template <typename W>
  Napi::Value submit(const Napi::CallbackInfo& info, W work, std::function<Napi::Value(Napi::Env)> done = nullptr,
                     std::vector<Napi::Object> keep = {}) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      alive();
      auto job = std::make_unique<Job>(
          env,
          [this, work]() {
            std::lock_guard<std::mutex> lock(mu_);
            alive();
            current();
            work();
          },
          std::move(done));
      job->keep.emplace_back(Napi::Persistent(Value()));  // the context outlives its jobs
      for (auto& o : keep) job->keep.emplace_back(Napi::Persistent(o));
      return run(info, std::move(job));
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info);

  // context_memory.cpp
  void* staging();
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value MemInfo(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Memset(const Napi::CallbackInfo& info);
  Napi::Value Copy(const Napi::CallbackInfo& info);
  Napi::Value Fill(const Napi::CallbackInfo& info);

  // context_modules.cpp
  CUfunction function(const std::string& module, const std::string& name);
  Napi::Value LoadModules(const Napi::CallbackInfo& info);
  Napi::Value HasFunction(const Napi::CallbackInfo& info);
  Napi::Value FunctionInfo(const Napi::CallbackInfo& info);

  // context_launch.cpp
  void launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, int smem, void* arg,
              const char* what, bool pdl = false, CUstream stream = nullptr);
  void enqueue(Launch& l, CUstream stream = nullptr);
  Napi::Value Attention(const Napi::CallbackInfo& info);

  // context_exec.cpp: the execution contract's streams, events and copies; context_ops.cpp: its
  // op kernels, GEMMs and memsets. Everything is enqueued from the JS thread without waiting; only
  // the promises of reads and synchronizations wait, on libuv's pool, and report what a kernel
  // found wrong in the data (the error word).
  PinnedPool pinned_;
  std::map<uint32_t, CUstream> streams_;
  std::map<uint32_t, CUevent> events_;
  uint32_t nextHandle_ = 1;
  // Per stream, two int32s: FaOpError code and detail (kernels/common/op_params.h). Each wait
  // copies its stream's word, in stream order, into a pinned slot of its own (pinned_).
  std::map<CUstream, CUdeviceptr> errorWords_;
  Gemm gemm_;  // the linear op's cuBLAS / cuBLASLt state
  std::map<uint32_t, CUgraphExec> graphs_;
  CUstream streamArg(const Napi::Value& v);
  CUdeviceptr errorWord(CUstream s);
  ErrorSlot snapshotError(CUstream s);
  void releaseExec();
  Napi::Value AllocAsync(const Napi::CallbackInfo& info);
  Napi::Value FreeAsync(const Napi::CallbackInfo& info);
  Napi::Value AllocPinned(const Napi::CallbackInfo& info);
  Napi::Value FreePinned(const Napi::CallbackInfo& info);
  Napi::Value StreamCreate(const Napi::CallbackInfo& info);
  Napi::Value StreamDestroy(const Napi::CallbackInfo& info);
  Napi::Value StreamSynchronize(const Napi::CallbackInfo& info);
  Napi::Value StreamWait(const Napi::CallbackInfo& info);
  Napi::Value EventRecord(const Napi::CallbackInfo& info);
  Napi::Value EventSynchronize(const Napi::CallbackInfo& info);
  Napi::Value EventDestroy(const Napi::CallbackInfo& info);
  Napi::Value EnqueueWrite(const Napi::CallbackInfo& info);
  Napi::Value EnqueueRead(const Napi::CallbackInfo& info);
  Napi::Value EnqueueCopy(const Napi::CallbackInfo& info);
  Napi::Value EnqueueAttention(const Napi::CallbackInfo& info);
  // context_ops.cpp
  Napi::Value EnqueueOp(const Napi::CallbackInfo& info);
  Napi::Value SetOpPdl(const Napi::CallbackInfo& info);
  Napi::Value EnqueueGemm(const Napi::CallbackInfo& info);
  Napi::Value EnqueueMemset(const Napi::CallbackInfo& info);
  Napi::Value PrepareBlas(const Napi::CallbackInfo& info);
  Napi::Value CaptureBegin(const Napi::CallbackInfo& info);
  Napi::Value CaptureEnd(const Napi::CallbackInfo& info);
  Napi::Value GraphLaunch(const Napi::CallbackInfo& info);
  Napi::Value GraphDestroy(const Napi::CallbackInfo& info);

  // context_timing.cpp
  std::vector<double> timed(int warmup, int iters, const std::function<void()>& fn);
  Napi::Value TimeAttention(const Napi::CallbackInfo& info);
  Napi::Value TimeAttentionSets(const Napi::CallbackInfo& info);
  Napi::Value TimeCopy(const Napi::CallbackInfo& info);
};

}  // namespace fa

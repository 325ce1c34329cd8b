#include "context.h"

#include "probe.h"

namespace fa {

Napi::Function Context::Init(Napi::Env env) {
  return DefineClass(env, "Context",
                     {
                         InstanceMethod("loadModules", &Context::LoadModules),
                         InstanceMethod("hasFunction", &Context::HasFunction),
                         InstanceMethod("functionInfo", &Context::FunctionInfo),
                         InstanceMethod("alloc", &Context::Alloc),
                         InstanceMethod("free", &Context::Free),
                         InstanceMethod("memInfo", &Context::MemInfo),
                         InstanceMethod("upload", &Context::Upload),
                         InstanceMethod("download", &Context::Download),
                         InstanceMethod("memset", &Context::Memset),
                         InstanceMethod("fill", &Context::Fill),
                         InstanceMethod("copy", &Context::Copy),
                         InstanceMethod("attention", &Context::Attention),
                         InstanceMethod("timeAttention", &Context::TimeAttention),
                         InstanceMethod("timeAttentionSets", &Context::TimeAttentionSets),
                         InstanceMethod("timeCopy", &Context::TimeCopy),
                         InstanceMethod("allocAsync", &Context::AllocAsync),
                         InstanceMethod("freeAsync", &Context::FreeAsync),
                         InstanceMethod("allocPinned", &Context::AllocPinned),
                         InstanceMethod("freePinned", &Context::FreePinned),
                         InstanceMethod("streamCreate", &Context::StreamCreate),
                         InstanceMethod("streamDestroy", &Context::StreamDestroy),
                         InstanceMethod("streamSynchronize", &Context::StreamSynchronize),
                         InstanceMethod("streamWait", &Context::StreamWait),
                         InstanceMethod("eventRecord", &Context::EventRecord),
                         InstanceMethod("eventSynchronize", &Context::EventSynchronize),
                         InstanceMethod("eventDestroy", &Context::EventDestroy),
                         InstanceMethod("enqueueWrite", &Context::EnqueueWrite),
                         InstanceMethod("enqueueRead", &Context::EnqueueRead),
                         InstanceMethod("enqueueCopy", &Context::EnqueueCopy),
                         InstanceMethod("enqueueAttention", &Context::EnqueueAttention),
                         InstanceMethod("enqueueOp", &Context::EnqueueOp),
                         InstanceMethod("setOpPdl", &Context::SetOpPdl),
                         InstanceMethod("enqueueGemm", &Context::EnqueueGemm),
                         InstanceMethod("enqueueMemset", &Context::EnqueueMemset),
                         InstanceMethod("prepareBlas", &Context::PrepareBlas),
                         InstanceMethod("captureBegin", &Context::CaptureBegin),
                         InstanceMethod("captureEnd", &Context::CaptureEnd),
                         InstanceMethod("graphLaunch", &Context::GraphLaunch),
                         InstanceMethod("graphDestroy", &Context::GraphDestroy),
                         InstanceMethod("dispose", &Context::Dispose),
                     });
}

Context::Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
  Napi::Env env = info.Env();
  guarded(env, [&]() -> Napi::Value {
    const int ordinal = info[0].As<Napi::Number>().Int32Value();
    FA_CU(cuDeviceGet(&dev_, ordinal), "cuDeviceGet");
    FA_CU(cuDevicePrimaryCtxRetain(&ctx_, dev_), "cuDevicePrimaryCtxRetain");
    retained_ = true;
    FA_CU(cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
    // Non-blocking: our work never serializes with the legacy default stream of other libraries.
    FA_CU(cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    sms_ = attr(dev_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    return env.Undefined();
  });
}

Context::~Context() { release(); }

void Context::release() {
  if (!ctx_) return;
  const Driver& d = driver();
  d.cuCtxSetCurrent(ctx_);
  if (stream_) d.cuStreamSynchronize(stream_);
  releaseExec();
  for (auto& m : modules_) d.cuModuleUnload(m.second);
  modules_.clear();
  functions_.clear();
  if (staging_) d.cuMemFreeHost(staging_);
  staging_ = nullptr;
  if (stream_) d.cuStreamDestroy(stream_);
  stream_ = nullptr;
  if (retained_) d.cuDevicePrimaryCtxRelease(dev_);
  retained_ = false;
  ctx_ = nullptr;
}

Napi::Value Context::run(const Napi::CallbackInfo& info, std::unique_ptr<Job> job) {
  Job* raw = job.release();
  Napi::Promise p = raw->Promise();
  raw->Queue();
  return p;
}

Napi::Value Context::Dispose(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  try {
    release();
  } catch (...) {
    // release() is best effort: a dead context must not keep the process from going on
  }
  return info.Env().Undefined();
}

}  // namespace fa

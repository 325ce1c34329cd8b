// N-API entry point: the Pool class (pool_binding.cpp) that runs attention calls on its own
// threads, and the machine probes used by the benchmark.
#include <napi.h>

#include <functional>
#include <string>

#include "call_args.h"
#include "kernel/flash_fwd.h"
#include "microbench.h"
#include "pool_binding.h"

namespace fastattn {

namespace {

/** Runs a machine probe on a libuv thread and resolves with its figure. */
class ProbeWorker : public Napi::AsyncWorker {
 public:
  ProbeWorker(Napi::Env env, std::function<double()> probe)
      : Napi::AsyncWorker(env), probe_(std::move(probe)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = probe_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(codedError(Env(), "INTERNAL", e.Message()).Value());
  }

 private:
  std::function<double()> probe_;
  Napi::Promise::Deferred deferred_;
  double result_ = 0.0;
};

const KernelTable& kernelArg(const Napi::CallbackInfo& info, size_t index) {
  const std::string isa = info[index].IsString() ? info[index].As<Napi::String>().Utf8Value() : "auto";
  const KernelTable* k = selectKernel(isa.c_str());
  if (k == nullptr) throw codedError(info.Env(), "UNSUPPORTED", "isa: this CPU cannot run '" + isa + "'", "isa");
  return *k;
}

int threadsArg(const Napi::CallbackInfo& info, size_t index) {
  const int t = info[index].IsNumber() ? info[index].As<Napi::Number>().Int32Value() : 1;
  if (t < 1 || t > 1024) throwInvalid(info.Env(), "threads", "expected an integer in [1, 1024]");
  return t;
}

Napi::Value MeasureFmaPeak(const Napi::CallbackInfo& info) {
  const KernelTable& k = kernelArg(info, 0);
  const int threads = threadsArg(info, 1);
  const double seconds = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0.3;
  auto* w = new ProbeWorker(info.Env(), [&k, threads, seconds] { return measureFmaPeak(k, threads, seconds); });
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info) {
  const KernelTable& k = kernelArg(info, 0);
  const int threads = threadsArg(info, 1);
  const double bytes = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : double(1 << 29);
  const int reps = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 5;
  auto* w = new ProbeWorker(info.Env(), [&k, threads, bytes, reps] {
    return measureReadBandwidth(k, threads, size_t(bytes), reps < 1 ? 1 : reps);
  });
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Value Kernels(const Napi::CallbackInfo& info) {
  int count = 0;
  const char* const* names = runnableKernels(&count);
  Napi::Array out = Napi::Array::New(info.Env(), size_t(count));
  for (int i = 0; i < count; ++i) out.Set(uint32_t(i), Napi::String::New(info.Env(), names[i]));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Pool", definePool(env));
  exports.Set("kernels", Napi::Function::New(env, Kernels));
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth));
  return exports;
}

}  // namespace

}  // namespace fastattn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return fastattn::Init(env, exports); }

NODE_API_MODULE(fastattn_cpu, InitAddon)

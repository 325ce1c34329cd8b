// The native side of @fastattention/cuda-volta: a CUDA context per backend (primary context,
// one non-blocking stream, pinned staging), device memory, module loading, and kernel launches.
// Everything that waits on the device runs on libuv's thread pool (Napi::AsyncWorker) and settles
// a promise; the JS thread only allocates, frees and reads attributes. Every driver error becomes
// a JS Error with `code` (DEVICE, OOM, UNAVAILABLE, ...), `cudaError` and `call`.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../../kernels/ampere/configs.h"
#include "../../kernels/common/kernel_names.h"
#include "../../kernels/hopper/configs.h"
#include "../../kernels/turing/configs.h"
#include "../../kernels/volta/configs.h"
#include "../../kernels/common/params.h"
#include "../../kernels/common/tile_mask.cuh"
#include "driver.h"

namespace fa {
namespace {

Napi::Error toJsError(Napi::Env env, const std::string& message, const std::string& code, const std::string& cudaError,
                      const std::string& call) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (!cudaError.empty()) err.Set("cudaError", Napi::String::New(env, cudaError));
  if (!call.empty()) err.Set("call", Napi::String::New(env, call));
  return err;
}

// Runs `work` on the thread pool; `done` turns its result into a JS value on the JS thread.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, "fastattention-cuda"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), done_(std::move(done)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  std::vector<Napi::ObjectReference> keep;  // JS objects whose memory the work reads or writes

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const CudaError& e) {
      code_ = e.code, cudaError_ = e.name, call_ = e.call, SetError(e.what());
    } catch (const FaError& e) {
      code_ = e.code, SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "OOM", SetError("host allocation failed");
    } catch (const std::exception& e) {
      code_ = "INTERNAL", SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(toJsError(Env(), e.Message(), code_, cudaError_, call_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::string code_ = "INTERNAL", cudaError_, call_;
};

// The first byte of a typed array's elements, whatever backs it. TypedArray::ArrayBuffer() goes
// through napi_get_arraybuffer_info, which refuses a SharedArrayBuffer ("Invalid argument");
// napi_get_typedarray_info hands out the data pointer for both kinds of buffer.
char* viewData(const Napi::TypedArray& a) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  const napi_status status = napi_get_typedarray_info(a.Env(), a, &type, &length, &data, &buffer, &offset);
  if (status != napi_ok) NAPI_THROW(Napi::Error::New(a.Env()), nullptr);
  return static_cast<char*>(data);
}

// Runs fn on the JS thread, turning native exceptions into JS exceptions with codes.
template <typename F>
Napi::Value guarded(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const CudaError& e) {
    throw toJsError(env, e.what(), e.code, e.name, e.call);
  } catch (const FaError& e) {
    throw toJsError(env, e.what(), e.code, "", "");
  }
}

int attr(CUdevice dev, int a) {
  int v = 0;
  FA_CU(cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute");
  return v;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Driver& d = driver();
    int version = 0, count = 0;
    FA_CU(cuDriverGetVersion(&version), "cuDriverGetVersion");
    FA_CU(cuDeviceGetCount(&count), "cuDeviceGetCount");
    Napi::Object out = Napi::Object::New(env);
    out.Set("driverVersion", version);
    Napi::Array devices = Napi::Array::New(env, count);
    for (int i = 0; i < count; ++i) {
      CUdevice dev;
      FA_CU(cuDeviceGet(&dev, i), "cuDeviceGet");
      char name[256] = {0};
      FA_CU(cuDeviceGetName(name, sizeof(name) - 1, dev), "cuDeviceGetName");
      size_t mem = 0;
      FA_CU(cuDeviceTotalMem(&mem, dev), "cuDeviceTotalMem_v2");
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", i);
      o.Set("name", name);
      o.Set("major", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR));
      o.Set("minor", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
      o.Set("multiprocessors", attr(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
      o.Set("sharedPerBlockOptin", attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
      o.Set("sharedPerMultiprocessor", attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR));
      o.Set("l2Bytes", attr(dev, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE));
      o.Set("clockKHz", attr(dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE));
      o.Set("memoryClockKHz", attr(dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE));
      o.Set("memoryBusBits", attr(dev, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH));
      o.Set("memoryBytes", static_cast<double>(mem));
      devices[i] = o;
    }
    (void)d;
    out.Set("devices", devices);
    return out;
  });
}

// Host side of the kernels' tiling-mask formulas (tests compare them with core's classifyTiles).
Napi::Value TileKind(const Napi::CallbackInfo& info) {
  auto n = [&](int i) { return static_cast<int64_t>(info[i].As<Napi::Number>().Int64Value()); };
  return Napi::Number::New(info.Env(), fa_tile_kind(n(0), n(1), n(2), n(3), n(4), n(5), n(6)));
}
Napi::Value KRange(const Napi::CallbackInfo& info) {
  auto n = [&](int i) { return static_cast<int64_t>(info[i].As<Napi::Number>().Int64Value()); };
  int s = 0, e = 0;
  fa_k_range(n(0), n(1), n(2), n(3), n(4), static_cast<int>(n(5)), &s, &e);
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a[0u] = s;
  a[1u] = e;
  return a;
}

Napi::Object configRow(Napi::Env env, const std::string& path, const char* role, int headDim, int blockQ, int blockK,
                       int warps, int stages, int sharedBytes, const char* name, const char* kernelF16,
                       const char* kernelBf16) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", path);
  o.Set("role", role);
  o.Set("headDim", headDim);
  o.Set("blockQ", blockQ);
  o.Set("blockK", blockK);
  o.Set("warps", warps);
  o.Set("stages", stages);
  o.Set("sharedBytes", sharedBytes);
  o.Set("suffix", name);
  Napi::Object kernels = Napi::Object::New(env);
  kernels.Set("f16", kernelF16);
  kernels.Set("bf16", kernelBf16);
  o.Set("kernels", kernels);
  return o;
}

// configs(path): the compiled configurations of one architecture path, read from its configs.h
// table, so kernel names and shared-memory sizes have one source of truth (kernel_names.h).
Napi::Value Configs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
#define FA_CONFIG_ROW(PATH, SMEM, role, HD, BM, BN, W, S)                                                      \
  out[i++] = configRow(env, path, #role, HD, BM, BN, W, S, SMEM(HD, BM, BN, W, S), FA_CONFIG_NAME_STR(HD, BM, BN, W, S), \
                       FA_KERNEL_SYMBOL_STR(PATH, role, f16, HD, BM, BN, W, S),                                \
                       FA_KERNEL_SYMBOL_STR(PATH, role, bf16, HD, BM, BN, W, S));
#define FA_AMPERE_ROW(...) FA_CONFIG_ROW(ampere, FA_AMPERE_SMEM, __VA_ARGS__)
#define FA_HOPPER_ROW(...) FA_CONFIG_ROW(hopper, FA_HOPPER_SMEM, __VA_ARGS__)
#define FA_VOLTA_ROW(...) FA_CONFIG_ROW(volta, FA_VOLTA_SMEM, __VA_ARGS__)
#define FA_TURING_ROW(...) FA_CONFIG_ROW(turing, FA_TURING_SMEM, __VA_ARGS__)
  if (path == "ampere") {
    FA_AMPERE_CONFIGS(FA_AMPERE_ROW)
  } else if (path == "hopper") {
    FA_HOPPER_CONFIGS(FA_HOPPER_ROW)
  } else if (path == "volta") {
    FA_VOLTA_CONFIGS(FA_VOLTA_ROW)
  } else if (path == "turing") {
    FA_TURING_CONFIGS(FA_TURING_ROW)
  } else {
    Napi::Error err = Napi::Error::New(env, "path: unknown architecture path '" + path + "'");
    err.Set("code", "UNSUPPORTED");
    err.Set("field", "path");
    throw err;
  }
#undef FA_CONFIG_ROW
#undef FA_AMPERE_ROW
#undef FA_HOPPER_ROW
#undef FA_VOLTA_ROW
#undef FA_TURING_ROW
  return out;
}

CUdeviceptr ptrArg(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return static_cast<CUdeviceptr>(v.As<Napi::BigInt>().Uint64Value(&lossless));
  }
  if (v.IsNumber()) return static_cast<CUdeviceptr>(v.As<Napi::Number>().Int64Value());
  return 0;
}

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env) {
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
                           InstanceMethod("dispose", &Context::Dispose),
                       });
  }

  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
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
  ~Context() override { release(); }

 private:
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  bool retained_ = false;
  int sms_ = 1;
  std::mutex mu_;  // one device job at a time: they share the stream and the staging buffers
  std::map<std::string, CUmodule> modules_;  // by name: '<path>/<file>' without .fatbin
  std::map<std::string, CUfunction> functions_;
  std::map<CUfunction, int> smemSet_;
  void* staging_ = nullptr;
  size_t stagingBytes_ = 0;
  static constexpr size_t kStagingChunk = size_t(64) << 20;

  void current() { FA_CU(cuCtxSetCurrent(ctx_), "cuCtxSetCurrent"); }
  void alive() {
    if (!ctx_) throw FaError("DISPOSED", "the CUDA context was disposed");
  }

  void release() {
    if (!ctx_) return;
    const Driver& d = driver();
    d.cuCtxSetCurrent(ctx_);
    if (stream_) d.cuStreamSynchronize(stream_);
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

  void* staging() {
    if (!staging_) {
      FA_CU(cuMemAllocHost(&staging_, kStagingChunk), "cuMemAllocHost_v2");
      stagingBytes_ = kStagingChunk;
    }
    return staging_;
  }

  // Kernels are looked up in the module the caller names (each fatbin is one module), so no
  // failing cuModuleGetFunction calls are made (compute-sanitizer reports those as API errors).
  CUfunction function(const std::string& module, const std::string& name) {
    const std::string key = module + ":" + name;
    auto it = functions_.find(key);
    if (it != functions_.end()) return it->second;
    auto m = modules_.find(module);
    if (m == modules_.end()) throw FaError("UNAVAILABLE", "kernels not built: no module " + module);
    CUfunction f = nullptr;
    FA_CU(cuModuleGetFunction(&f, m->second, name.c_str()), "cuModuleGetFunction");
    functions_[key] = f;
    return f;
  }

  // pdl: programmatic dependent launch (sm_90+): the grid may be dispatched while the previous
  // kernel of the stream finishes; the kernel then waits (griddepcontrol.wait) before touching
  // memory. Only for kernels built with that wait (the ampere and hopper paths, sm_90+ code).
  void launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, int smem, void* arg,
              const char* what, bool pdl = false) {
    if (smem > 48 * 1024) {
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
      CUlaunchConfig cfg{gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream_, &attr, 1};
      FA_CU(cuLaunchKernelEx(&cfg, f, args, nullptr), what);
      return;
    }
    FA_CU(cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream_, args, nullptr), what);
  }

  Napi::Value run(const Napi::CallbackInfo& info, std::unique_ptr<Job> job) {
    Job* raw = job.release();
    Napi::Promise p = raw->Promise();
    raw->Queue();
    return p;
  }

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

  // loadModules([{ name, data: Buffer }]): one module per fatbin.
  Napi::Value LoadModules(const Napi::CallbackInfo& info) {
    Napi::Array images = info[0].As<Napi::Array>();
    auto data = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    for (uint32_t i = 0; i < images.Length(); ++i) {
      Napi::Object o = images.Get(i).As<Napi::Object>();
      Napi::Buffer<char> b = o.Get("data").As<Napi::Buffer<char>>();
      data->emplace_back(o.Get("name").As<Napi::String>().Utf8Value(), std::string(b.Data(), b.Length()));
    }
    return submit(info, [this, data]() {
      for (const auto& [name, image] : *data) {
        CUmodule m = nullptr;
        FA_CU(cuModuleLoadData(&m, image.data()), "cuModuleLoadData");
        modules_[name] = m;
      }
    });
  }

  // hasFunction(module, name): whether the module is loaded and holds the kernel.
  Napi::Value HasFunction(const Napi::CallbackInfo& info) {
    const std::string module = info[0].As<Napi::String>().Utf8Value();
    const std::string name = info[1].As<Napi::String>().Utf8Value();
    try {
      current();
      auto m = modules_.find(module);
      if (m == modules_.end()) return Napi::Boolean::New(info.Env(), false);
      function(module, name);
      return Napi::Boolean::New(info.Env(), true);
    } catch (const std::exception&) {
      return Napi::Boolean::New(info.Env(), false);
    }
  }

  Napi::Value FunctionInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      alive();
      current();
      CUfunction f = function(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
      const int threads = info[2].As<Napi::Number>().Int32Value();
      const int smem = info[3].As<Napi::Number>().Int32Value();
      int regs = 0, local = 0, blocks = 0;
      FA_CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f), "cuFuncGetAttribute");
      FA_CU(cuFuncGetAttribute(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, f), "cuFuncGetAttribute");
      if (smem > 48 * 1024) {
        FA_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute");
        smemSet_[f] = std::max(smemSet_[f], smem);
      }
      FA_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, threads, smem),
            "cuOccupancyMaxActiveBlocksPerMultiprocessor");
      Napi::Object o = Napi::Object::New(env);
      o.Set("registers", regs);
      o.Set("localBytes", local);
      o.Set("blocksPerSM", blocks);
      return o;
    });
  }

  Napi::Value Alloc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      alive();
      current();
      const double bytes = info[0].As<Napi::Number>().DoubleValue();
      CUdeviceptr p = 0;
      FA_CU(cuMemAlloc(&p, static_cast<size_t>(std::max(bytes, 1.0))), "cuMemAlloc_v2");
      return Napi::BigInt::New(env, static_cast<uint64_t>(p));
    });
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (!ctx_) return env.Undefined();  // the context already released everything
      std::lock_guard<std::mutex> lock(mu_);  // never free under a running job
      current();
      FA_CU(cuMemFree(ptrArg(info[0])), "cuMemFree_v2");
      return env.Undefined();
    });
  }

  Napi::Value MemInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      alive();
      current();
      size_t free = 0, total = 0;
      FA_CU(cuMemGetInfo(&free, &total), "cuMemGetInfo_v2");
      Napi::Object o = Napi::Object::New(env);
      o.Set("free", static_cast<double>(free));
      o.Set("total", static_cast<double>(total));
      return o;
    });
  }

  // Host <-> device through pinned staging, in chunks, so pageable JS memory never needs pinning.
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    const CUdeviceptr dst = ptrArg(info[0]);
    Napi::TypedArray src = info[1].As<Napi::TypedArray>();
    const char* host = viewData(src);
    const size_t bytes = src.ByteLength();
    return submit(
        info,
        [this, dst, host, bytes]() {
          char* stage = static_cast<char*>(staging());
          for (size_t off = 0; off < bytes; off += stagingBytes_) {
            const size_t n = std::min(stagingBytes_, bytes - off);
            std::memcpy(stage, host + off, n);
            FA_CU(cuMemcpyHtoDAsync(dst + off, stage, n, stream_), "cuMemcpyHtoDAsync_v2");
            FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
          }
        },
        nullptr, {src});
  }

  Napi::Value Download(const Napi::CallbackInfo& info) {
    const CUdeviceptr src = ptrArg(info[0]);
    Napi::TypedArray dst = info[1].As<Napi::TypedArray>();
    char* host = viewData(dst);
    const size_t bytes = dst.ByteLength();
    return submit(
        info,
        [this, src, host, bytes]() {
          char* stage = static_cast<char*>(staging());
          for (size_t off = 0; off < bytes; off += stagingBytes_) {
            const size_t n = std::min(stagingBytes_, bytes - off);
            FA_CU(cuMemcpyDtoHAsync(stage, src + off, n, stream_), "cuMemcpyDtoHAsync_v2");
            FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
            std::memcpy(host + off, stage, n);
          }
        },
        nullptr, {dst});
  }

  Napi::Value Memset(const Napi::CallbackInfo& info) {
    const CUdeviceptr dst = ptrArg(info[0]);
    const unsigned char value = static_cast<unsigned char>(info[1].As<Napi::Number>().Uint32Value());
    const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    return submit(info, [this, dst, value, bytes]() {
      FA_CU(cuMemsetD8Async(dst, value, bytes, stream_), "cuMemsetD8Async");
      FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
    });
  }

  // copy(dst, src, bytes): device-to-device, stream-ordered, then synchronized (byte offsets are
  // applied by the caller to the addresses: 64-bit BigInt arithmetic, so > 4 GiB offsets are fine).
  Napi::Value Copy(const Napi::CallbackInfo& info) {
    const CUdeviceptr dst = ptrArg(info[0]), src = ptrArg(info[1]);
    const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    return submit(info, [this, dst, src, bytes]() {
      if (bytes > 0) FA_CU(cuMemcpyDtoDAsync(dst, src, bytes, stream_), "cuMemcpyDtoDAsync_v2");
      FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
    });
  }

  Napi::Value Fill(const Napi::CallbackInfo& info) {
    const CUdeviceptr dst = ptrArg(info[0]);
    const uint64_t count = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
    const std::string dtype = info[2].As<Napi::String>().Utf8Value();
    const uint64_t seed = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
    return submit(info, [this, dst, count, dtype, seed]() {
      CUfunction f = function("common/combine", "fa_fill_" + dtype);
      struct {
        CUdeviceptr x;
        uint64_t n, seed;
      } a{dst, count, seed};
      void* args[] = {&a.x, &a.n, &a.seed};
      const unsigned blocks = static_cast<unsigned>(std::min<uint64_t>((count + 255) / 256, uint64_t(sms_) * 16));
      FA_CU(cuLaunchKernel(f, std::max(blocks, 1u), 1, 1, 256, 1, 1, 0, stream_, args, nullptr), "cuLaunchKernel(fill)");
      FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize");
    });
  }

  struct Launch {
    std::string module, kernel, combine;
    unsigned grid[3] = {1, 1, 1};
    unsigned threads = 128;
    int smem = 0;
    bool pdl = false;
    FaFwdParams p{};
    FaCombineParams c{};
  };

  static Launch parseLaunch(const Napi::Object& d) {
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
    c.q_batch_stride = p.q_batch_stride;
    c.q_row_stride = p.q_row_stride;
    return l;
  }

  void enqueue(Launch& l) {
    launch(function(l.module, l.kernel), l.grid[0], l.grid[1], l.grid[2], l.threads, l.smem, &l.p, "cuLaunchKernel(attention)",
           l.pdl);
    if (l.p.num_splits > 1 && !l.p.counters) {  // with counters the last split CTA merges (fused)
      const unsigned rows = static_cast<unsigned>(int64_t(l.p.batch) * l.p.heads_q * l.p.seq_q);
      launch(function("common/combine", l.combine), rows, 1, 1, 128, 0, &l.c, "cuLaunchKernel(combine)");
    }
  }

  Napi::Value Attention(const Napi::CallbackInfo& info) {
    auto l = std::make_shared<Launch>(parseLaunch(info[0].As<Napi::Object>()));
    return submit(info, [this, l]() {
      enqueue(*l);
      FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize(attention)");
    });
  }

  // Times `fn` with events on the stream: one (start, stop) pair per iteration, after warm-up.
  std::vector<double> timed(int warmup, int iters, const std::function<void()>& fn) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<CUevent> ev(2 * iters, nullptr);
    std::vector<double> ms(iters, 0.0);
    try {
      for (auto& e : ev) FA_CU(cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate");
      for (int i = 0; i < iters; ++i) {
        FA_CU(cuEventRecord(ev[2 * i], stream_), "cuEventRecord");
        fn();
        FA_CU(cuEventRecord(ev[2 * i + 1], stream_), "cuEventRecord");
      }
      FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize(timing)");
      for (int i = 0; i < iters; ++i) {
        float t = 0;
        FA_CU(cuEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]), "cuEventElapsedTime");
        ms[i] = t;
      }
    } catch (...) {
      for (auto e : ev)
        if (e) driver().cuEventDestroy(e);
      throw;
    }
    for (auto e : ev) driver().cuEventDestroy(e);
    return ms;
  }

  static Napi::Value toArray(Napi::Env env, const std::vector<double>& v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
    return a;
  }

  Napi::Value TimeAttention(const Napi::CallbackInfo& info) {
    auto l = std::make_shared<Launch>(parseLaunch(info[0].As<Napi::Object>()));
    const int warmup = info[1].As<Napi::Number>().Int32Value(), iters = info[2].As<Napi::Number>().Int32Value();
    auto result = std::make_shared<std::vector<double>>();
    return submit(
        info, [this, l, warmup, iters, result]() { *result = timed(warmup, iters, [&] { enqueue(*l); }); },
        [result](Napi::Env env) { return toArray(env, *result); });
  }

  // timeAttentionSets([desc...], warmup, rounds, perFigure = 1): rounds x (every desc once),
  // enqueued back to back, one figure per perFigure launches (an event pair around them, the time
  // divided by perFigure). The host enqueues ahead of the device (as a decode loop does), so the
  // host's launch latency is not in the figures; the descs rotate over input sets so that problems
  // smaller than L2 are still read from memory. perFigure > 1 leaves no event between most launches,
  // so programmatic dependent launch can overlap one launch's start with the previous one's end.
  Napi::Value TimeAttentionSets(const Napi::CallbackInfo& info) {
    Napi::Array arr = info[0].As<Napi::Array>();
    auto ls = std::make_shared<std::vector<Launch>>();
    for (uint32_t i = 0; i < arr.Length(); ++i) ls->push_back(parseLaunch(arr.Get(i).As<Napi::Object>()));
    const int warmup = info[1].As<Napi::Number>().Int32Value(), rounds = info[2].As<Napi::Number>().Int32Value();
    const int perFigure = info.Length() > 3 && info[3].IsNumber() ? std::max(1, info[3].As<Napi::Number>().Int32Value()) : 1;
    auto result = std::make_shared<std::vector<double>>();
    return submit(
        info,
        [this, ls, warmup, rounds, perFigure, result]() {
          for (int w = 0; w < warmup; ++w)
            for (auto& l : *ls) enqueue(l);
          size_t n = 0;
          const int launches = rounds * static_cast<int>(ls->size());
          *result = timed(0, std::max(1, launches / perFigure), [&] {
            for (int i = 0; i < perFigure; ++i) enqueue((*ls)[n++ % ls->size()]);
          });
          for (auto& ms : *result) ms /= perFigure;
        },
        [result](Napi::Env env) { return toArray(env, *result); });
  }

  Napi::Value TimeCopy(const Napi::CallbackInfo& info) {
    const CUdeviceptr dst = ptrArg(info[0]), src = ptrArg(info[1]);
    const size_t bytes = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    const int warmup = info[3].As<Napi::Number>().Int32Value(), iters = info[4].As<Napi::Number>().Int32Value();
    auto result = std::make_shared<std::vector<double>>();
    return submit(
        info,
        [this, dst, src, bytes, warmup, iters, result]() {
          *result = timed(warmup, iters, [&] { FA_CU(cuMemcpyDtoDAsync(dst, src, bytes, stream_), "cuMemcpyDtoDAsync_v2"); });
        },
        [result](Napi::Env env) { return toArray(env, *result); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      release();
    } catch (...) {
      // release() is best effort: a dead context must not keep the process from going on
    }
    return info.Env().Undefined();
  }
};

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("probe", Napi::Function::New(env, Probe));
  exports.Set("tileKind", Napi::Function::New(env, TileKind));
  exports.Set("kRange", Napi::Function::New(env, KRange));
  exports.Set("configs", Napi::Function::New(env, Configs));
  exports.Set("Context", Context::Init(env));
  return exports;
}

}  // namespace
}  // namespace fa

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return fa::InitAddon(env, exports); }
NODE_API_MODULE(fa_cuda, InitModule)

// N-API bindings: the Pool class (one per backend) that runs planned attention calls on its own
// threads and settles a promise per call, plus the machine probes used by the benchmark.
//
// The TypeScript side validates and plans every call (core's validateAttentionInput, planTiles,
// classifyBatch); the checks here are a second line of defence so that no argument, however
// wrong, can make a worker read or write out of bounds.
#include <napi.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>
#include <atomic>
#include <functional>

#include "attention_job.h"
#include "kernel/flash_fwd.h"
#include "microbench.h"
#include "thread_pool.h"

namespace fastattn {

namespace {

Napi::Error codedError(Napi::Env env, const std::string& code, const std::string& message,
                       const std::string& field = "") {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (!field.empty()) err.Set("field", Napi::String::New(env, field));
  return err;
}

[[noreturn]] void throwInvalid(Napi::Env env, const std::string& field, const std::string& message) {
  throw codedError(env, "INVALID_INPUT", field + ": " + message, field);
}

int64_t intField(Napi::Env env, const Napi::Object& o, const char* name, int64_t min, int64_t max) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwInvalid(env, name, "expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(min) && d <= double(max)) || std::floor(d) != d) {
    throwInvalid(env, name, "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return int64_t(d);
}

/** A window side: a non-negative integer, or Infinity (unbounded). */
int64_t bandField(Napi::Env env, const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throwInvalid(env, name, "expected a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d) || d < 0) throwInvalid(env, name, "expected a non-negative integer or Infinity");
  if (d >= double(kInfiniteBand)) return kInfiniteBand;
  return int64_t(d);
}

template <typename T>
T* typedField(Napi::Env env, const Napi::Object& o, const char* name, napi_typedarray_type type, size_t length) {
  const Napi::Value v = o.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throwInvalid(env, name, "wrong typed array type");
  }
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  if (a.ElementLength() != length) {
    throwInvalid(env, name, "expected " + std::to_string(length) + " elements, got " + std::to_string(a.ElementLength()));
  }
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

constexpr int64_t kMaxDim = int64_t(1) << 32;

}  // namespace

class Pool : public Napi::ObjectWrap<Pool> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Pool",
                       {InstanceMethod<&Pool::Run>("run"), InstanceMethod<&Pool::ReadProbe>("readProbe"),
                        InstanceMethod<&Pool::Cancel>("cancel"),
                        InstanceMethod<&Pool::Close>("close"), InstanceAccessor<&Pool::Threads>("threads"),
                        InstanceAccessor<&Pool::Isa>("isa"), InstanceAccessor<&Pool::Lanes>("lanes")});
  }

  Pool(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pool>(info) {
    Napi::Env env = info.Env();
    const int threads = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
    if (threads < 1 || threads > 1024) throwInvalid(env, "threads", "expected an integer in [1, 1024]");
    const std::string isa = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "auto";
    kernel_ = selectKernel(isa.c_str());
    if (kernel_ == nullptr) {
      throw codedError(env, "UNSUPPORTED", "isa: this CPU cannot run the '" + isa + "' kernel", "isa");
    }
    pool_ = std::make_unique<ThreadPool>(threads);
  }

  ~Pool() override {
    if (pool_) pool_->shutdown();
  }

 private:
  /** What the JS thread keeps for a call until it settles: its promise and everything it reads. */
  struct Pending {
    Pool* pool;
    uint32_t id;
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference keep;  // inputs, output buffers and the pool: alive until settled
    std::shared_ptr<AttentionJob> job;
    DType dtype;
    size_t outLength;
    size_t lseLength;
  };

  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), threads_()); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernel_->isa); }
  Napi::Value Lanes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kernel_->lanes); }
  int threads_() const { return pool_ ? pool_->threads() : 0; }

  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!pool_) throw codedError(env, "DISPOSED", "the cpu backend was disposed");
    if (!info[0].IsObject()) throwInvalid(env, "input", "expected an object");
    const Napi::Object a = info[0].As<Napi::Object>();

    AttnParams p;
    p.dtype = DType(intField(env, a, "dtype", 0, 2));
    p.batch = intField(env, a, "batch", 1, kMaxDim);
    p.seqQ = intField(env, a, "seqQ", 1, kMaxDim);
    p.seqK = intField(env, a, "seqK", 1, kMaxDim);
    p.headsQ = intField(env, a, "headsQ", 1, kMaxDim);
    p.headsKV = intField(env, a, "headsKV", 1, kMaxDim);
    p.headDim = intField(env, a, "headDim", 1, 1 << 16);
    if (p.headsQ % p.headsKV != 0) throwInvalid(env, "headsKV", "must divide headsQ");
    const double qLen = double(p.batch) * double(p.seqQ) * double(p.headsQ) * double(p.headDim);
    const double kvLen = double(p.batch) * double(p.seqK) * double(p.headsKV) * double(p.headDim);
    if (qLen > double(kMaxDim) || kvLen > double(kMaxDim)) throwInvalid(env, "q", "larger than 2^32 elements");
    const Napi::Value scale = a.Get("scale");
    if (!scale.IsNumber() || !std::isfinite(scale.As<Napi::Number>().DoubleValue())) {
      throwInvalid(env, "scale", "expected a finite number");
    }
    p.scale = float(scale.As<Napi::Number>().DoubleValue());
    p.left = bandField(env, a, "left");
    p.right = bandField(env, a, "right");
    p.blockQ = intField(env, a, "blockQ", 1, 1 << 20);
    p.blockK = intField(env, a, "blockK", 1, 1 << 20);
    p.stack = intField(env, a, "stack", 1, p.headsQ);
    p.splitKV = intField(env, a, "splitKV", 1, 1 << 12);
    const Napi::Value allHeads = a.Get("allHeads");
    p.allHeads = allHeads.IsBoolean() && allHeads.As<Napi::Boolean>().Value();
    if (p.stack != 1 && p.stack != p.headsQ / p.headsKV) throwInvalid(env, "stack", "expected 1 or headsQ / headsKV");
    const Napi::Value decode = a.Get("decode");
    p.decode = decode.IsBoolean() && decode.As<Napi::Boolean>().Value();
    if (p.decode && !(p.allHeads && p.stack == p.headsQ / p.headsKV)) {
      throwInvalid(env, "decode", "the decode kernel needs allHeads and stack = headsQ / headsKV");
    }
    if (p.decode && p.headDim > kMaxDecodeHeadDim) throwInvalid(env, "headDim", "too large for the decode kernel");
    p.qTiles = (p.seqQ + p.blockQ - 1) / p.blockQ;
    p.kTiles = (p.seqK + p.blockK - 1) / p.blockK;

    const napi_typedarray_type storage = p.dtype == DType::F32 ? napi_float32_array : napi_uint16_array;
    p.q = typedField<const void>(env, a, "q", storage, size_t(qLen));
    p.k = typedField<const void>(env, a, "k", storage, size_t(kvLen));
    p.v = typedField<const void>(env, a, "v", storage, size_t(kvLen));
    p.seqLensK = typedField<const int32_t>(env, a, "seqLensK", napi_int32_array, size_t(p.batch));
    for (int64_t b = 0; b < p.batch; ++b) {
      if (p.seqLensK[b] < 0 || p.seqLensK[b] > p.seqK) {
        throwInvalid(env, "seqLensK[" + std::to_string(b) + "]", "outside [0, seqK]");
      }
    }
    const size_t tileRows = size_t(p.batch * p.qTiles);
    p.kinds = typedField<const uint8_t>(env, a, "kinds", napi_uint8_array, tileRows * size_t(p.kTiles));
    p.kStart = typedField<const int32_t>(env, a, "kStart", napi_int32_array, tileRows);
    p.kEnd = typedField<const int32_t>(env, a, "kEnd", napi_int32_array, tileRows);
    for (size_t t = 0; t < tileRows; ++t) {
      if (p.kStart[t] < 0 || p.kEnd[t] > p.kTiles || p.kStart[t] > p.kEnd[t]) {
        throwInvalid(env, "kStart", "tile range outside [0, kTiles]");
      }
    }
    for (size_t t = 0; t < tileRows * size_t(p.kTiles); ++t) {
      if (p.kinds[t] > kTilePartial) throwInvalid(env, "kinds", "unknown tile kind");
    }

    // Native allocates the outputs and poisons them with NaN: an element the kernel fails to
    // write cannot pass the tests by accident.
    const size_t outLength = size_t(qLen);
    const size_t lseLength = size_t(p.batch * p.headsQ * p.seqQ);
    const size_t elem = p.dtype == DType::F32 ? 4 : 2;
    Napi::ArrayBuffer outBuf = Napi::ArrayBuffer::New(env, outLength * elem);
    Napi::ArrayBuffer lseBuf = Napi::ArrayBuffer::New(env, lseLength * 4);
    if (p.dtype == DType::F32) {
      std::fill_n(static_cast<float*>(outBuf.Data()), outLength, std::numeric_limits<float>::quiet_NaN());
    } else {
      std::fill_n(static_cast<uint16_t*>(outBuf.Data()), outLength, uint16_t(p.dtype == DType::F16 ? 0x7e00 : 0x7fc0));
    }
    std::fill_n(static_cast<float*>(lseBuf.Data()), lseLength, std::numeric_limits<float>::quiet_NaN());
    p.out = outBuf.Data();
    p.lse = static_cast<float*>(lseBuf.Data());

    Napi::Object keep = Napi::Object::New(env);
    keep.Set("input", a);
    keep.Set("out", outBuf);
    keep.Set("lse", lseBuf);
    keep.Set("pool", Value());

    const uint32_t id = nextId_++;
    auto* pending = new Pending{this, id, Napi::Promise::Deferred::New(env), Napi::Persistent(keep), nullptr,
                                p.dtype, outLength, lseLength};
    Napi::Promise promise = pending->deferred.Promise();
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "fastattn.cpu.attention", 0, 1);
    pending->job = std::make_shared<AttentionJob>(p, *kernel_, threads_(), [tsfn, pending]() mutable {
      tsfn.BlockingCall(pending, [](Napi::Env env, Napi::Function, Pending* pd) { Settle(env, pd); });
      tsfn.Release();
    });
    jobs_.emplace(id, pending->job);
    try {
      pool_->submit(pending->job);
    } catch (const std::exception& e) {
      jobs_.erase(id);
      tsfn.Release();
      delete pending;
      throw codedError(env, "DISPOSED", e.what());
    }

    Napi::Object handle = Napi::Object::New(env);
    handle.Set("promise", promise);
    handle.Set("id", Napi::Number::New(env, id));
    return handle;
  }

  /**
   * readProbe(arrays, items): streams every byte of the given typed arrays on this pool's
   * workers, as `items` work items (item i reads the i-th of `items` equal contiguous parts of
   * each array: the split of a split-KV decode call with splitKV = items over K and V). Resolves
   * with the bytes read. The bandwidth anchor of the decode benchmark: same threads, pinning,
   * scheduling, pages and bytes as the kernel, timed the same way from JS.
   */
  Napi::Value ReadProbe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!pool_) throw codedError(env, "DISPOSED", "the cpu backend was disposed");
    if (!info[0].IsArray()) throwInvalid(env, "arrays", "expected an array of typed arrays");
    const Napi::Array list = info[0].As<Napi::Array>();
    const int64_t items = info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value() : int64_t(threads_());
    if (items < 1 || items > (1 << 16)) throwInvalid(env, "items", "expected an integer in [1, 65536]");
    std::vector<StreamJob::Range> ranges;
    double total = 0.0;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const Napi::Value v = list.Get(i);
      if (!v.IsTypedArray()) throwInvalid(env, "arrays", "expected typed arrays");
      Napi::TypedArray a = v.As<Napi::TypedArray>();
      const auto* base = static_cast<const char*>(a.ArrayBuffer().Data()) + a.ByteOffset();
      ranges.push_back({base, a.ByteLength()});
      total += double(a.ByteLength() / 8 * 8);
    }
    auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
    auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info[0]));
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "fastattn.cpu.readProbe", 0, 1);
    auto job = std::make_shared<StreamJob>(std::move(ranges), items, [tsfn, deferred, keep, total]() mutable {
      tsfn.BlockingCall([deferred, keep, total](Napi::Env e, Napi::Function) {
        deferred->Resolve(Napi::Number::New(e, total));
        keep->Reset();
      });
      tsfn.Release();
    });
    Napi::Promise promise = deferred->Promise();
    try {
      pool_->submit(job);
    } catch (const std::exception& e) {
      tsfn.Release();
      throw codedError(env, "DISPOSED", e.what());
    }
    return promise;
  }

  /** A read probe: item i XOR-streams the i-th part of every range. */
  class StreamJob : public Job {
   public:
    struct Range {
      const char* data;
      size_t bytes;
    };
    StreamJob(std::vector<Range> ranges, int64_t items, std::function<void()> done)
        : Job(items), ranges_(std::move(ranges)), parts_(items), done_(std::move(done)) {}

   protected:
    void runItem(int64_t item, Scratch&) override {
      uint64_t x = 0;
      for (const Range& r : ranges_) {
        const size_t words = r.bytes / 8;
        const size_t w0 = words * size_t(item) / size_t(parts_);
        const size_t w1 = words * size_t(item + 1) / size_t(parts_);
        x ^= xorStream(r.data + w0 * 8, (w1 - w0) * 8);
      }
      sink_.fetch_xor(x, std::memory_order_relaxed);  // keeps the loads
    }
    void finish() override { done_(); }

   private:
    std::vector<Range> ranges_;
    int64_t parts_;
    std::function<void()> done_;
    std::atomic<uint64_t> sink_{0};
  };

  /** On the JS thread, once a call's last item has finished. */
  static void Settle(Napi::Env env, Pending* pd) {
    if (env == nullptr) return;  // the environment is being torn down: nothing left to settle
    Napi::HandleScope scope(env);
    pd->pool->jobs_.erase(pd->id);
    std::string code;
    std::string message;
    pd->job->error(code, message);
    if (!code.empty()) {
      pd->deferred.Reject(codedError(env, code, message).Value());
    } else if (pd->job->aborted()) {
      pd->deferred.Reject(codedError(env, "ABORTED", "attention was aborted before it finished").Value());
    } else {
      Napi::Object keep = pd->keep.Value();
      Napi::ArrayBuffer outBuf = keep.Get("out").As<Napi::ArrayBuffer>();
      Napi::ArrayBuffer lseBuf = keep.Get("lse").As<Napi::ArrayBuffer>();
      Napi::Object result = Napi::Object::New(env);
      if (pd->dtype == DType::F32) {
        result.Set("out", Napi::Float32Array::New(env, pd->outLength, outBuf, 0));
      } else {
        result.Set("out", Napi::Uint16Array::New(env, pd->outLength, outBuf, 0));
      }
      result.Set("lse", Napi::Float32Array::New(env, pd->lseLength, lseBuf, 0));
      result.Set("workspaceBytes", Napi::Number::New(env, double(pd->job->workspaceBytes())));
      pd->deferred.Resolve(result);
    }
    pd->keep.Reset();
    delete pd;
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    const uint32_t id = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return Napi::Boolean::New(info.Env(), false);
    if (auto job = it->second.lock()) job->cancel();
    return Napi::Boolean::New(info.Env(), true);
  }

  /** Joins the workers. The TypeScript side calls it once no call is in flight. */
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (pool_) pool_->shutdown();
    return info.Env().Undefined();
  }

  const KernelTable* kernel_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  std::unordered_map<uint32_t, std::weak_ptr<AttentionJob>> jobs_;
  uint32_t nextId_ = 1;
};

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
  exports.Set("Pool", Pool::Define(env));
  exports.Set("kernels", Napi::Function::New(env, Kernels));
  exports.Set("measureFmaPeak", Napi::Function::New(env, MeasureFmaPeak));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, MeasureReadBandwidth));
  return exports;
}

}  // namespace

}  // namespace fastattn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return fastattn::Init(env, exports); }

NODE_API_MODULE(fastattn_cpu, InitAddon)

#include "pool_binding.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "attention_job.h"
#include "call_args.h"
#include "microbench.h"
#include "ops/op_chain.h"
#include "ops/op_job.h"
#include "standard_job.h"
#include "thread_pool.h"

namespace fastattn {

namespace {

/** Physical memory in bytes, or 0 where the system does not say. */
double physicalMemoryBytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) return double(pages) * double(page);
#endif
  return 0.0;
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

class Pool : public Napi::ObjectWrap<Pool> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Pool",
                       {InstanceMethod<&Pool::Run>("run"), InstanceMethod<&Pool::RunStandard>("runStandard"),
                        InstanceMethod<&Pool::RunOp>("runOp"), InstanceMethod<&Pool::RunOps>("runOps"),
                        InstanceMethod<&Pool::PrepareOps>("prepareOps"),
                        InstanceMethod<&Pool::RunPrepared>("runPrepared"),
                        InstanceMethod<&Pool::ReadProbe>("readProbe"), InstanceMethod<&Pool::Cancel>("cancel"),
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
    Napi::ObjectReference keep;  // the call's arguments and the pool: alive until settled
    std::shared_ptr<CallJob> job;
  };

  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), threads_()); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernel_->isa); }
  Napi::Value Lanes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kernel_->lanes); }
  int threads_() const { return pool_ ? pool_->threads() : 0; }

  const Napi::Object callArg(const Napi::CallbackInfo& info) {
    if (!pool_) throw codedError(info.Env(), "DISPOSED", "the cpu backend was disposed");
    if (!info[0].IsObject()) throwInvalid(info.Env(), "input", "expected an object");
    return info[0].As<Napi::Object>();
  }

  /** run(call): a planned FlashAttention call. Resolves with { out, lse, workspaceBytes }. */
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Napi::Object a = callArg(info);
    AttnParams p = readProblem(env, a);
    readPlan(env, a, p);
    return Submit(env, a, [&](std::function<void()> done) {
      return std::make_shared<AttentionJob>(p, *kernel_, threads_(), std::move(done));
    });
  }

  /** runStandard(call): standard attention (materialized scores). Resolves like run(). */
  Napi::Value RunStandard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Napi::Object a = callArg(info);
    // (a paged cache's table and lengths were checked by readProblem; the kernel gathers its blocks)
    const AttnParams p = readProblem(env, a);
    // Linux overcommits: a score matrix beyond memory would be "allocated" and then get the
    // process killed as the workers touch it. Half of physical memory is the limit.
    const double bytes = double(StandardJob::scoreBytes(p, *kernel_));
    const double limit = physicalMemoryBytes() / 2;
    if (limit > 0 && bytes > limit) {
      throw codedError(env, "OOM",
                       "standard attention would materialize a " + std::to_string(int64_t(bytes / 1048576)) +
                           " MiB score matrix, more than half of physical memory");
    }
    return Submit(env, a, [&](std::function<void()> done) {
      return std::make_shared<StandardJob>(p, *kernel_, threads_(), std::move(done));
    });
  }

  /**
   * runOp(kind, args): a model op (ops/op_args.cpp reads its arguments). Resolves with undefined
   * once its outputs are written; the arrays in `args` are kept alive until then.
   */
  Napi::Value RunOp(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!pool_) throw codedError(env, "DISPOSED", "the cpu backend was disposed");
    if (!info[0].IsString()) throwInvalid(env, "kind", "expected a string");
    if (!info[1].IsObject()) throwInvalid(env, "args", "expected an object");
    const std::string kind = info[0].As<Napi::String>().Utf8Value();
    auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
    auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(info[1]));
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "fastattn.cpu.op", 0, 1);
    auto job = std::make_shared<std::shared_ptr<OpJob>>();
    std::shared_ptr<OpJob> made;
    try {
      made = makeOpJob(env, kind, info[1].As<Napi::Object>(), *kernel_, threads_(), [tsfn, deferred, keep, job]() mutable {
        tsfn.BlockingCall([deferred, keep, job](Napi::Env e, Napi::Function) {
          std::string code;
          std::string message;
          std::string field;
          (*job)->error(code, message, field);
          if (!code.empty()) {
            deferred->Reject(codedError(e, code, message, field).Value());
          } else {
            deferred->Resolve(e.Undefined());
          }
          keep->Reset();
          job->reset();  // the job holds this callback: break the cycle
        });
        tsfn.Release();
      });
    } catch (...) {
      tsfn.Release();
      throw;
    }
    Napi::Promise promise = deferred->Promise();
    if (!made) {  // nothing to compute
      tsfn.Release();
      deferred->Resolve(env.Undefined());
      return promise;
    }
    *job = made;
    try {
      pool_->submit(made);
    } catch (const std::exception& e) {
      job->reset();
      tsfn.Release();
      throw codedError(env, "DISPOSED", e.what());
    }
    return promise;
  }

  /**
   * runOps(list): model ops, [kind, args] each, run in order on the pool with no return to
   * JavaScript between them (the straight-line part of a recorded step). Every op's arguments are
   * read first (a bad one throws, naming it, before any runs). Resolves once the last op has
   * written its outputs; rejects with the first failing op's error, and the ops after it do not run.
   */
  Napi::Value RunOps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ThreadPool& pool = livePool(env);
    return runOpChain(env, pool, readOpRecipes(env, info[0], *kernel_, threads_()), info[0]);
  }

  /**
   * prepareOps(list): runOps' list read and checked once, for a recorded step replayed many
   * times: runPrepared(prepared) runs it as runOps would, with no argument to read again. The
   * calls' arrays are kept alive by the prepared object; the values in them are read when it runs.
   */
  Napi::Value PrepareOps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    livePool(env);
    return prepareOpChain(env, info[0], *kernel_, threads_());
  }

  Napi::Value RunPrepared(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return runPreparedOpChain(env, livePool(env), info[0]);
  }

  ThreadPool& livePool(Napi::Env env) {
    if (!pool_) throw codedError(env, "DISPOSED", "the cpu backend was disposed");
    return *pool_;
  }

  /** Queues the job `make` builds; returns { promise, id } (id for cancel()). */
  template <typename Make>
  Napi::Value Submit(Napi::Env env, const Napi::Object& call, Make make) {
    Napi::Object keep = Napi::Object::New(env);
    keep.Set("call", call);
    keep.Set("pool", Value());
    const uint32_t id = nextId_++;
    auto* pending = new Pending{this, id, Napi::Promise::Deferred::New(env), Napi::Persistent(keep), nullptr};
    Napi::Promise promise = pending->deferred.Promise();
    auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                              "fastattn.cpu.attention", 0, 1);
    pending->job = make([tsfn, pending]() mutable {
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
    } else if (pd->job->aborted() || !pd->job->output().allocated()) {
      pd->deferred.Reject(codedError(env, "ABORTED", "attention was aborted before it finished").Value());
    } else {
      Napi::Object result = Napi::Object::New(env);
      result.Set("out", pd->job->output().takeOut(env));
      result.Set("lse", pd->job->output().takeLse(env));
      result.Set("workspaceBytes", Napi::Number::New(env, double(pd->job->workspaceBytes())));
      pd->deferred.Resolve(result);
    }
    pd->keep.Reset();
    delete pd;
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
      size_t bytes = 0;
      const void* data = typedArrayData(env, list.Get(i), "arrays", &bytes);
      ranges.push_back({static_cast<const char*>(data), bytes});
      total += double(bytes / 8 * 8);
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
  std::unordered_map<uint32_t, std::weak_ptr<CallJob>> jobs_;
  uint32_t nextId_ = 1;
};

}  // namespace

Napi::Function definePool(Napi::Env env) { return Pool::Define(env); }

}  // namespace fastattn

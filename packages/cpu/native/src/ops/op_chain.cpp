#include "ops/op_chain.h"

#include <functional>
#include <memory>
#include <string>

#include "call_args.h"
#include "ops/attention_op.h"

namespace fastattn {

namespace {

struct OpChain {
  std::vector<std::shared_ptr<OpJob>> jobs;
  ThreadPool* pool = nullptr;
  std::function<void()> settle;
  std::string code;
  std::string message;
  std::string field;
};

/** On a worker, once op i has finished: the next op, or the end of the chain (its first error). */
void advanceChain(const std::shared_ptr<OpChain>& chain, size_t i) {
  if (i < chain->jobs.size()) chain->jobs[i]->error(chain->code, chain->message, chain->field);
  size_t next = i + 1;
  while (chain->code.empty() && next < chain->jobs.size() && !chain->jobs[next]) ++next;
  if (!chain->code.empty() || next >= chain->jobs.size()) {
    chain->settle();
    return;
  }
  try {
    chain->pool->submit(chain->jobs[next]);
  } catch (const std::exception& e) {
    chain->code = "DISPOSED";
    chain->message = e.what();
    chain->settle();
  }
}

/** A list of ops read once, with the arrays its recipes point into kept alive. */
struct PreparedOps {
  std::vector<OpRecipe> recipes;
  Napi::Reference<Napi::Value> keep;
};

}  // namespace

std::vector<OpRecipe> readOpRecipes(Napi::Env env, const Napi::Value& value, const KernelTable& kernel, int threads) {
  if (!value.IsArray()) throwInvalid(env, "ops", "expected an array of [kind, args]");
  const Napi::Array list = value.As<Napi::Array>();
  std::vector<OpRecipe> recipes;
  recipes.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value entry = list.Get(i);
    const std::string field = "ops[" + std::to_string(i) + "]";
    if (!entry.IsArray() || entry.As<Napi::Array>().Length() != 2) throwInvalid(env, field, "expected [kind, args]");
    const Napi::Array pair = entry.As<Napi::Array>();
    if (!pair.Get(0u).IsString() || !pair.Get(1u).IsObject()) throwInvalid(env, field, "expected [kind, args]");
    const std::string kind = pair.Get(0u).As<Napi::String>().Utf8Value();
    if (kind == "attention") {
      appendAttentionRecipes(env, pair.Get(1u).As<Napi::Object>(), kernel, recipes);
    } else {
      recipes.push_back(makeOpRecipe(env, kind, pair.Get(1u).As<Napi::Object>(), kernel, threads));
    }
  }
  return recipes;
}

Napi::Value runOpChain(Napi::Env env, ThreadPool& pool, const std::vector<OpRecipe>& recipes, const Napi::Value& keepValue) {
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  Napi::Promise promise = deferred->Promise();
  auto chain = std::make_shared<OpChain>();
  chain->pool = &pool;
  const size_t n = recipes.size();
  chain->jobs.resize(n);
  for (size_t i = 0; i < n; ++i) {
    std::weak_ptr<OpChain> weak = chain;
    chain->jobs[i] = jobFrom(recipes[i], [weak, i]() {
      if (auto c = weak.lock()) advanceChain(c, i);
    });
  }
  size_t first = 0;
  while (first < n && !chain->jobs[first]) ++first;
  if (first == n) {  // nothing to compute
    deferred->Resolve(env.Undefined());
    return promise;
  }
  auto keep = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(keepValue));
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                            "fastattn.cpu.ops", 0, 1);
  // The chain stays alive until it settles on the JS thread (the jobs hold it only weakly).
  auto self = std::make_shared<std::shared_ptr<OpChain>>(chain);
  chain->settle = [tsfn, deferred, keep, self]() mutable {
    tsfn.BlockingCall([deferred, keep, self](Napi::Env e, Napi::Function) {
      const OpChain& c = **self;
      if (!c.code.empty()) {
        deferred->Reject(codedError(e, c.code, c.message, c.field).Value());
      } else {
        deferred->Resolve(e.Undefined());
      }
      keep->Reset();
      self->reset();
    });
    tsfn.Release();
  };
  try {
    pool.submit(chain->jobs[first]);
  } catch (const std::exception& e) {
    chain->settle = nullptr;
    tsfn.Release();
    self->reset();
    throw codedError(env, "DISPOSED", e.what());
  }
  return promise;
}

Napi::Value prepareOpChain(Napi::Env env, const Napi::Value& list, const KernelTable& kernel, int threads) {
  auto* prepared = new PreparedOps{readOpRecipes(env, list, kernel, threads), Napi::Persistent(list)};
  return Napi::External<PreparedOps>::New(env, prepared, [](Napi::Env, PreparedOps* p) { delete p; });
}

Napi::Value runPreparedOpChain(Napi::Env env, ThreadPool& pool, const Napi::Value& prepared) {
  if (!prepared.IsExternal()) throwInvalid(env, "prepared", "expected what prepareOps returned");
  return runOpChain(env, pool, prepared.As<Napi::External<PreparedOps>>().Data()->recipes, prepared);
}

}  // namespace fastattn

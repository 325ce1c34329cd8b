// A model op as a job on the pool: its parameters read from JavaScript (op_args.cpp) with every
// bound checked, its items run on the workers, and a callback once it is done.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>

#include "ops/op_kernels.h"
#include "thread_pool.h"

namespace fastattn {

class OpJob : public Job {
 public:
  OpJob(int64_t items, std::function<void(int64_t, Scratch&)> run, std::function<void()> done)
      : Job(items), run_(std::move(run)), done_(std::move(done)) {}

 protected:
  void runItem(int64_t item, Scratch& scratch) override { run_(item, scratch); }
  void finish() override { done_(); }

 private:
  std::function<void(int64_t, Scratch&)> run_;
  std::function<void()> done_;
};

/**
 * An op read and checked once, runnable any number of times: its item count (0: nothing to do) and
 * what an item does. The pointers it holds are the caller's arrays, which must outlive it.
 */
struct OpRecipe {
  int64_t items = 0;
  std::function<void(int64_t, Scratch&)> run;
};

/**
 * Reads op `kind`'s arguments (see src/native.ts, NativeOpArgs) into a recipe. Throws
 * INVALID_INPUT naming the field for any argument that would make a worker read or write outside
 * its arrays.
 */
OpRecipe makeOpRecipe(Napi::Env env, const std::string& kind, const Napi::Object& args, const KernelTable& kernel,
                      int threads);

/** A job running the recipe once, then `done`; nullptr when it has nothing to do. */
inline std::shared_ptr<OpJob> jobFrom(const OpRecipe& recipe, std::function<void()> done) {
  if (recipe.items == 0) return nullptr;
  return std::make_shared<OpJob>(recipe.items, recipe.run, std::move(done));
}

/** makeOpRecipe, then jobFrom. */
std::shared_ptr<OpJob> makeOpJob(Napi::Env env, const std::string& kind, const Napi::Object& args,
                                 const KernelTable& kernel, int threads, std::function<void()> done);

}  // namespace fastattn

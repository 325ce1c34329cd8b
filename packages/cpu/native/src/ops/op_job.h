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
 * Reads op `kind`'s arguments (see src/native.ts, NativeOpArgs) and returns the job that runs it,
 * or nullptr when it has nothing to do. Throws INVALID_INPUT naming the field for any argument that
 * would make a worker read or write outside its arrays.
 */
std::shared_ptr<OpJob> makeOpJob(Napi::Env env, const std::string& kind, const Napi::Object& args,
                                 const KernelTable& kernel, int threads, std::function<void()> done);

}  // namespace fastattn

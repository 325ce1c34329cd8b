// What every call on the pool shares: its parameters (with a private copy of seqLensK), its
// output arrays, allocated on the first worker that takes an item, and its completion callback.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "host_output.h"
#include "kernel/flash_fwd.h"
#include "thread_pool.h"

namespace fastattn {

class CallJob : public Job {
 public:
  /** `done` runs once on a worker thread when the job has finished (check aborted()/failed()). */
  CallJob(const AttnParams& params, int64_t items, std::function<void()> done);

  HostOutput& output() { return output_; }
  /** Bytes this call allocates besides inputs and outputs (scratch, partials, score matrix). */
  size_t workspaceBytes() const { return workspaceBytes_; }

 protected:
  /**
   * Once, before any item runs, on the worker that takes the first one (the others wait): the
   * outputs are allocated and poisoned there, never on the JS thread. Subclasses add their buffers.
   */
  virtual void prepare() {}
  virtual void runWork(int64_t item, Scratch& scratch) = 0;
  /** After every item ran, when none failed and the call was not aborted (split-KV merge). */
  virtual void finishWork() {}

  AttnParams params_;
  size_t workspaceBytes_ = 0;

 private:
  void runItem(int64_t item, Scratch& scratch) final;
  void finish() final;

  std::vector<int32_t> seqLensK_;  // the caller's array may change or vanish during the call
  HostOutput output_;
  std::once_flag prepared_;
  std::function<void()> done_;
};

}  // namespace fastattn

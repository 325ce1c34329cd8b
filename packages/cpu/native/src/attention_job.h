// One attention call as a Job on the pool: the planned work items, and for split-KV the merge
// of the partial results by their LSE once every split has finished.
#pragma once

#include <functional>
#include <vector>

#include "kernel/flash_fwd.h"
#include "thread_pool.h"

namespace fastattn {

class AttentionJob : public Job {
 public:
  /** `done` runs once on a worker thread when the job has finished (check aborted()/failed()). */
  AttentionJob(const AttnParams& params, const KernelTable& kernel, int threads, std::function<void()> done);

  /** Bytes this call allocates besides inputs and outputs: per-thread scratch and split-KV partials. */
  size_t workspaceBytes() const { return workspaceBytes_; }

 protected:
  void runItem(int64_t item, Scratch& scratch) override;
  void finish() override;

 private:
  void mergeSplits();

  AttnParams params_;
  const KernelTable& kernel_;
  std::function<void()> done_;
  std::vector<float> partialOut_;
  std::vector<float> partialLse_;
  size_t workspaceBytes_ = 0;
};

}  // namespace fastattn

// One FlashAttention call as a Job on the pool: the planned work items, and for split-KV the merge
// of the partial results by their LSE once every split has finished.
#pragma once

#include <functional>
#include <memory>

#include "call_job.h"
#include "kernel/flash_fwd.h"

namespace fastattn {

/**
 * The split-KV merge: each row's output and LSE from its splits' partials (p.partialOut,
 * p.partialLse), written to p.out and p.lse. Exact, in double.
 */
void mergeSplitKV(const AttnParams& p);

class AttentionJob : public CallJob {
 public:
  AttentionJob(const AttnParams& params, const KernelTable& kernel, int threads, std::function<void()> done);

 protected:
  void prepare() override;
  void runWork(int64_t item, Scratch& scratch) override;
  void finishWork() override;

 private:
  const KernelTable& kernel_;
  size_t partialRows_ = 0;
  std::unique_ptr<float[]> partialOut_;
  std::unique_ptr<float[]> partialLse_;
};

}  // namespace fastattn

// One standard-attention call (the paper's baseline) as a Job on the pool: the score matrix of
// every (batch row, query head) is materialized, like an unfused framework implementation does.
#pragma once

#include <cstdlib>
#include <functional>
#include <memory>

#include "call_job.h"
#include "kernel/flash_fwd.h"

namespace fastattn {

class StandardJob : public CallJob {
 public:
  StandardJob(const AttnParams& params, const KernelTable& kernel, int threads, std::function<void()> done);

  /** The score matrix: batch x headsQ x seqQ (rounded up to whole items) x seqK floats. */
  static size_t scoreBytes(const AttnParams& params, const KernelTable& kernel);

 protected:
  void prepare() override;
  void runWork(int64_t item, Scratch& scratch) override;

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  const KernelTable& kernel_;
  StandardLayout layout_;
  std::unique_ptr<float, Free> scores_;
};

}  // namespace fastattn

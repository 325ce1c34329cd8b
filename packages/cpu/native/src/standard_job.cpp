#include "standard_job.h"

#include <algorithm>
#include <new>

namespace fastattn {

StandardJob::StandardJob(const AttnParams& params, const KernelTable& kernel, int threads,
                         std::function<void()> done)
    : CallJob(params, kernel.standardLayout(params).items(params), std::move(done)),
      kernel_(kernel),
      layout_(kernel.standardLayout(params)) {
  const size_t workers = size_t(std::min<int64_t>(threads, layout_.items(params_)));
  workspaceBytes_ = scoreBytes(params_, kernel) + kernel.standardScratchBytes(params_, layout_) * workers;
}

size_t StandardJob::scoreBytes(const AttnParams& params, const KernelTable& kernel) {
  const StandardLayout z = kernel.standardLayout(params);
  return size_t(z.items(params)) * size_t(z.slabFloats) * sizeof(float);
}

void StandardJob::prepare() {
  // malloc, not a zeroing allocation: each item's first touch of its slab faults its pages in,
  // on the workers, in parallel.
  scores_.reset(static_cast<float*>(std::malloc(scoreBytes(params_, kernel_))));
  if (!scores_) throw std::bad_alloc();
}

void StandardJob::runWork(int64_t item, Scratch& scratch) {
  kernel_.runStandardItem(params_, layout_, scores_.get(), item, scratch);
}

}  // namespace fastattn

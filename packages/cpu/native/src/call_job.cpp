#include "call_job.h"

#include <new>

namespace fastattn {

CallJob::CallJob(const AttnParams& params, int64_t items, std::function<void()> done)
    : Job(items),
      params_(params),
      seqLensK_(params.seqLensK, params.seqLensK + params.batch),
      output_(params.dtype, size_t(params.batch * params.seqQ * params.headsQ * params.headDim),
              size_t(params.batch * params.headsQ * params.seqQ)),
      done_(std::move(done)) {
  params_.seqLensK = seqLensK_.data();
}

void CallJob::runItem(int64_t item, Scratch& scratch) {
  // std::call_once: if prepare throws (out of memory), the next item tries again and fails too.
  std::call_once(prepared_, [this] {
    output_.allocate();
    params_.out = output_.out();
    params_.lse = output_.lse();
    prepare();
  });
  runWork(item, scratch);
}

void CallJob::finish() {
  if (!failed() && !aborted()) {
    try {
      finishWork();
    } catch (const std::bad_alloc&) {
      fail("OOM", "out of memory while finishing the call");
    } catch (...) {
      fail("INTERNAL", "finishing the call failed");
    }
  }
  done_();
}

}  // namespace fastattn

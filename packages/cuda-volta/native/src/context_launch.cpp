// Attention launches: the forward kernel, then (split-KV without the fused merge) the combine kernel.
#include <cstdint>
#include <memory>

#include "context.h"

namespace fa {

// pdl: programmatic dependent launch (sm_90+): the grid may be dispatched while the previous
// kernel of the stream finishes; the kernel then waits (griddepcontrol.wait) before touching
// memory. Only for kernels built with that wait (the ampere and hopper paths, sm_90+ code).
void Context::launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned threads, int smem, void* arg,
                     const char* what, bool pdl) {
  if (smem > 48 * 1024) {
    auto it = smemSet_.find(f);
    if (it == smemSet_.end() || it->second < smem) {
      FA_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute");
      smemSet_[f] = smem;
    }
  }
  void* args[] = {arg};
  if (pdl && driver().cuLaunchKernelEx) {
    CUlaunchAttribute attr{};
    attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig cfg{gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream_, &attr, 1};
    FA_CU(cuLaunchKernelEx(&cfg, f, args, nullptr), what);
    return;
  }
  FA_CU(cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, static_cast<unsigned>(smem), stream_, args, nullptr), what);
}

void Context::enqueue(Launch& l) {
  launch(function(l.module, l.kernel), l.grid[0], l.grid[1], l.grid[2], l.threads, l.smem, &l.p, "cuLaunchKernel(attention)",
         l.pdl);
  if (l.p.num_splits > 1 && !l.p.counters) {  // with counters the last split CTA merges (fused)
    const unsigned rows = static_cast<unsigned>(int64_t(l.p.batch) * l.p.heads_q * l.p.seq_q);
    launch(function("common/combine", l.combine), rows, 1, 1, 128, 0, &l.c, "cuLaunchKernel(combine)");
  }
}

// attention(desc): one launch, then the stream is synchronized.
Napi::Value Context::Attention(const Napi::CallbackInfo& info) {
  auto l = std::make_shared<Launch>(parseLaunch(info[0].As<Napi::Object>()));
  return submit(info, [this, l]() {
    enqueue(*l);
    FA_CU(cuStreamSynchronize(stream_), "cuStreamSynchronize(attention)");
  });
}

}  // namespace fa

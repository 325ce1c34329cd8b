// Run-time ISA choice: the best kernel this CPU executes, or one named explicitly (tests run
// every path the machine supports).
#include <cstring>

#include "kernel/flash_fwd.h"
#include "ops/op_kernels.h"

namespace fastattn {

namespace {

struct Candidate {
  const char* name;
  bool (*runs)();
  const KernelTable& (*table)();
  const OpKernels& (*ops)();
};

#if defined(FASTATTN_X86)
bool runsAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool runsAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
#endif
bool runsAlways() { return true; }

const Candidate kCandidates[] = {
#if defined(FASTATTN_X86)
    {"avx512", &runsAvx512, &isa_avx512::table, &isa_avx512::opKernels},
    {"avx2", &runsAvx2, &isa_avx2::table, &isa_avx2::opKernels},
#endif
    {"generic", &runsAlways, &isa_generic::table, &isa_generic::opKernels},
};

}  // namespace

const KernelTable* selectKernel(const char* wanted) {
  const bool any = wanted == nullptr || std::strcmp(wanted, "auto") == 0;
  for (const Candidate& c : kCandidates) {
    if (!any && std::strcmp(wanted, c.name) != 0) continue;
    if (c.runs()) return &c.table();
    return nullptr;
  }
  return nullptr;
}

const OpKernels& opKernelsFor(const KernelTable& kernel) {
  for (const Candidate& c : kCandidates)
    if (&c.table() == &kernel) return c.ops();
  return isa_generic::opKernels();
}

const char* const* runnableKernels(int* count) {
  static const char* names[sizeof kCandidates / sizeof kCandidates[0]];
  static int n = [] {
    int k = 0;
    for (const Candidate& c : kCandidates)
      if (c.runs()) names[k++] = c.name;
    return k;
  }();
  *count = n;
  return names;
}

}  // namespace fastattn

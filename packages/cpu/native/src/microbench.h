// Machine ceilings measured by the addon itself, so a benchmark can state its results as a
// fraction of what this machine can do (see packages/cpu/BENCHMARKS.md).
#pragma once

#include <cstddef>

#include "kernel/flash_fwd.h"

namespace fastattn {

/** f32 FLOP/s of `threads` threads each running independent FMA chains with the kernel's vectors. */
double measureFmaPeak(const KernelTable& kernel, int threads, double seconds);

/** Bytes/s of `threads` threads streaming through disjoint slices of a `bytes` buffer (best of reps). */
double measureReadBandwidth(const KernelTable& kernel, int threads, size_t bytes, int reps);

}  // namespace fastattn

// Machine ceilings measured by the addon itself, so a benchmark can state its results as a
// fraction of what this machine can do (see packages/cpu/BENCHMARKS.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/flash_fwd.h"

namespace fastattn {

/** f32 FLOP/s of `threads` threads each running independent FMA chains with the kernel's vectors. */
double measureFmaPeak(const KernelTable& kernel, int threads, double seconds);

/** Bytes/s of `threads` threads streaming through disjoint slices of a `bytes` buffer (best of reps). */
double measureReadBandwidth(const KernelTable& kernel, int threads, size_t bytes, int reps);

/**
 * XOR of every 8-byte word of [data, data + bytes) (bytes a multiple of 8), four 64-byte
 * accumulators: integer loads, so arbitrary bits (f16 K/V) cost the same as any other. The
 * streaming loop of the pool's read probe (Pool.readProbe), which times the same threads, split
 * and buffers as a decode call.
 */
uint64_t xorStream(const void* data, size_t bytes);

}  // namespace fastattn

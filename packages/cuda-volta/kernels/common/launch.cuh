// Programmatic dependent launch (sm_90+). A kernel launched with programmatic stream serialization
// may start while the previous kernel of the stream is still running: it must call
// grid_dependency_wait() before its first access to global memory (the wait returns once that
// kernel has completed and its writes are visible; at once when there is no such dependency).
// grid_launch_dependents() lets the next kernel be dispatched before this one ends: called after
// the main loop, its CTAs take the SMs this grid's finished CTAs leave during the epilogue.
// Before sm_90 both compile to nothing (the host never sets the attribute there).
// named_barrier_sync: the barrier of a CTA's computing warps, without a producer warpgroup.
#pragma once

namespace fa {

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void grid_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// A barrier over the first `threads` threads of the CTA (barrier 0 is __syncthreads'): the
// computing warps of a kernel with a producer warpgroup meet without it.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace fa

// The avx2 kernel: compiled with its own -m flags (CMakeLists.txt); only called after
// dispatch.cpp has checked with __builtin_cpu_supports that this CPU runs it.
#define FA_NS isa_avx2
#define FA_W 8
#define FA_ISA_NAME "avx2"
#include "kernel/flash_fwd_impl.inc"
#include "ops/ops_impl.inc"

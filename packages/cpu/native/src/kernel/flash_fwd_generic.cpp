// The portable kernel: 4-lane vectors (SSE2 on x86-64, NEON on arm64), no -m flags, so it runs
// on any CPU of the architecture. Also the path for CPUs without AVX2/FMA/F16C.
#define FA_NS isa_generic
#define FA_W 4
#define FA_ISA_NAME "generic"
#include "kernel/flash_fwd_impl.inc"
#include "ops/ops_impl.inc"

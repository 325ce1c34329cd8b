// Hopper-path instantiations for head dim 128 (one file per head dim so the build runs them in parallel).
#include "fwd.cuh"
FA_HOPPER_HD128(FA_HOPPER_DEFINE)

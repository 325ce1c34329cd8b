// Hopper-path instantiations for head dim 96 (one file per head dim so the build runs them in parallel).
#include "fwd.cuh"
FA_HOPPER_HD96(FA_HOPPER_DEFINE)

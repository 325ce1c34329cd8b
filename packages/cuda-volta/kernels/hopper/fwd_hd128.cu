// Instantiations for head dim 128 (one file per head dim, as on the other paths).
#include "fwd.cuh"
FA_HOPPER_CONFIGS(FA_HOPPER_DEFINE)

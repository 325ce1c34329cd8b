// Instantiations for head dim 96 (one file per head dim so the build runs them in parallel).
#include "fwd.cuh"
FA_AMPERE_HD96(FA_AMPERE_DEFINE)

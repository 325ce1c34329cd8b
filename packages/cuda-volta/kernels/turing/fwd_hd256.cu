// Turing-path instantiations for head dim 256 (one file per head dim so the build runs them in parallel).
#include "fwd.cuh"
FA_TURING_HD256(FA_TURING_DEFINE)

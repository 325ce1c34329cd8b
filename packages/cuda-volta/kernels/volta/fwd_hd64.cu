// Volta-path instantiations for head dim 64 (one file per head dim so the build runs them in parallel).
#include "fwd.cuh"
FA_VOLTA_HD64(FA_VOLTA_DEFINE)

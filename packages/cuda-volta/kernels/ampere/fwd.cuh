// The ampere path's kernels (sm_80+): the kernel body (common/fwd_body.cuh) over the cp.async
// mainloop (mainloop.cuh), one entry point per configuration of configs.h and dtype.
#pragma once
#include "../common/fwd_body.cuh"
#include "../common/kernel_names.h"
#include "configs.h"
#include "mainloop.cuh"

#define FA_AMPERE_DEFINE(...) FA_DEFINE_KERNELS(ampere, fa::AmpereMainloop, __VA_ARGS__)

// The hopper path's kernels (sm_90a only: wgmma does not exist before sm_90 and its sm_90a code does
// not run on later generations): the kernel body (common/fwd_body.cuh) over a wgmma mainloop.
// The copy engine reads its tensor maps from the parameters in place: the kernels take them
// __grid_constant__.
#pragma once

#define FA_KERNEL_PARAM_QUALIFIER __grid_constant__
#include "../common/fwd_body.cuh"
#include "../common/kernel_names.h"
#include "configs.h"
#include "mainloop.cuh"

#define FA_HOPPER_DEFINE(...) FA_DEFINE_KERNELS(hopper, fa::hopper::HopperMainloop, __VA_ARGS__)

// A launch as JavaScript describes it (LaunchDesc in src/native.ts), read into the kernels' own
// parameter structs (kernels/common/params.h) on the JS thread, before the work is queued.
#pragma once
#include <napi.h>

#include <string>

#include "../../kernels/common/params.h"

namespace fa {

struct Launch {
  std::string module, kernel, combine;
  unsigned grid[3] = {1, 1, 1};
  unsigned threads = 128;
  int smem = 0;
  bool pdl = false;
  // The copy-engine kernels' geometry (LaunchDesc.tma): tma false for every other kernel.
  bool tma = false, bf16 = false;
  int64_t kvRows = 0;
  unsigned boxRows = 0, qRows = 0;
  FaFwdParams p{};
  FaCombineParams c{};
};

Launch parseLaunch(const Napi::Object& desc);

}  // namespace fa

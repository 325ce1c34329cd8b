// What the driver reports about the machine's CUDA devices.
#pragma once
#include <napi.h>

#include "driver.h"

namespace fa {

// One attribute of a device (cuDeviceGetAttribute); throws CudaError.
int attr(CUdevice dev, int a);

// probe(): { driverVersion, devices: [{ index, name, major, minor, multiprocessors, ... }] }.
Napi::Value Probe(const Napi::CallbackInfo& info);

}  // namespace fa

#include "probe.h"

#include "js_errors.h"

namespace fa {

int attr(CUdevice dev, int a) {
  int v = 0;
  FA_CU(cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute");
  return v;
}

Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Driver& d = driver();
    int version = 0, count = 0;
    FA_CU(cuDriverGetVersion(&version), "cuDriverGetVersion");
    FA_CU(cuDeviceGetCount(&count), "cuDeviceGetCount");
    Napi::Object out = Napi::Object::New(env);
    out.Set("driverVersion", version);
    Napi::Array devices = Napi::Array::New(env, count);
    for (int i = 0; i < count; ++i) {
      CUdevice dev;
      FA_CU(cuDeviceGet(&dev, i), "cuDeviceGet");
      char name[256] = {0};
      FA_CU(cuDeviceGetName(name, sizeof(name) - 1, dev), "cuDeviceGetName");
      size_t mem = 0;
      FA_CU(cuDeviceTotalMem(&mem, dev), "cuDeviceTotalMem_v2");
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", i);
      o.Set("name", name);
      o.Set("major", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR));
      o.Set("minor", attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
      o.Set("multiprocessors", attr(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
      o.Set("sharedPerBlockOptin", attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
      o.Set("sharedPerMultiprocessor", attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR));
      o.Set("l2Bytes", attr(dev, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE));
      o.Set("clockKHz", attr(dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE));
      o.Set("memoryClockKHz", attr(dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE));
      o.Set("memoryBusBits", attr(dev, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH));
      o.Set("memoryBytes", static_cast<double>(mem));
      devices[i] = o;
    }
    (void)d;
    out.Set("devices", devices);
    return out;
  });
}

}  // namespace fa

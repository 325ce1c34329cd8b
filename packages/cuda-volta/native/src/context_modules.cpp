// Modules (one per fatbin), their kernels, and the occupancy the planner sizes split-KV with.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "context.h"

namespace fa {

// Kernels are looked up in the module the caller names (each fatbin is one module), so no
// failing cuModuleGetFunction calls are made (compute-sanitizer reports those as API errors).
CUfunction Context::function(const std::string& module, const std::string& name) {
  std::lock_guard<std::mutex> lock(fnMu_);
  const std::string key = module + ":" + name;
  auto it = functions_.find(key);
  if (it != functions_.end()) return it->second;
  auto m = modules_.find(module);
  if (m == modules_.end()) throw FaError("UNAVAILABLE", "kernels not built: no module " + module);
  CUfunction f = nullptr;
  FA_CU(cuModuleGetFunction(&f, m->second, name.c_str()), "cuModuleGetFunction");
  functions_[key] = f;
  return f;
}

// loadModules([{ name, data: Buffer }]): one module per fatbin.
Napi::Value Context::LoadModules(const Napi::CallbackInfo& info) {
  Napi::Array images = info[0].As<Napi::Array>();
  auto data = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (uint32_t i = 0; i < images.Length(); ++i) {
    Napi::Object o = images.Get(i).As<Napi::Object>();
    Napi::Buffer<char> b = o.Get("data").As<Napi::Buffer<char>>();
    data->emplace_back(o.Get("name").As<Napi::String>().Utf8Value(), std::string(b.Data(), b.Length()));
  }
  return submit(info, [this, data]() {
    for (const auto& [name, image] : *data) {
      CUmodule m = nullptr;
      FA_CU(cuModuleLoadData(&m, image.data()), "cuModuleLoadData");
      std::lock_guard<std::mutex> lock(fnMu_);
      modules_[name] = m;
    }
  });
}

// hasFunction(module, name): whether the module is loaded and holds the kernel.
Napi::Value Context::HasFunction(const Napi::CallbackInfo& info) {
  const std::string module = info[0].As<Napi::String>().Utf8Value();
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  try {
    current();
    {
      std::lock_guard<std::mutex> lock(fnMu_);
      if (modules_.find(module) == modules_.end()) return Napi::Boolean::New(info.Env(), false);
    }
    function(module, name);
    return Napi::Boolean::New(info.Env(), true);
  } catch (const std::exception&) {
    return Napi::Boolean::New(info.Env(), false);
  }
}

// functionInfo(module, name, threads, smem): { registers, localBytes, blocksPerSM }.
Napi::Value Context::FunctionInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    alive();
    current();
    CUfunction f = function(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
    const int threads = info[2].As<Napi::Number>().Int32Value();
    const int smem = info[3].As<Napi::Number>().Int32Value();
    int regs = 0, local = 0, blocks = 0;
    FA_CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f), "cuFuncGetAttribute");
    FA_CU(cuFuncGetAttribute(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, f), "cuFuncGetAttribute");
    if (smem > 48 * 1024) {
      FA_CU(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem), "cuFuncSetAttribute");
      std::lock_guard<std::mutex> lock(fnMu_);
      smemSet_[f] = std::max(smemSet_[f], smem);
    }
    FA_CU(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, threads, smem),
          "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    Napi::Object o = Napi::Object::New(env);
    o.Set("registers", regs);
    o.Set("localBytes", local);
    o.Set("blocksPerSM", blocks);
    return o;
  });
}

}  // namespace fa

#include "driver.h"

#include <dlfcn.h>

#include <mutex>
#include <type_traits>

namespace fa {
namespace {

struct Loaded {
  Driver api{};
  std::string error;  // empty when loaded
};

template <typename F>
bool sym(void* lib, F& fn, const char* name, std::string& error) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && error.empty()) error = std::string("libcuda.so.1 lacks ") + name;
  return fn != nullptr;
}

Loaded load() {
  Loaded l;
  // RTLD_LOCAL: the driver's symbols stay out of the global namespace of the Node process.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    l.error = std::string("no CUDA driver (dlopen libcuda.so.1: ") + (e ? e : "not found") + ")";
    return l;
  }
  Driver& d = l.api;
  std::string& e = l.error;
  sym(lib, d.cuInit, "cuInit", e);
  sym(lib, d.cuDriverGetVersion, "cuDriverGetVersion", e);
  sym(lib, d.cuGetErrorName, "cuGetErrorName", e);
  sym(lib, d.cuGetErrorString, "cuGetErrorString", e);
  sym(lib, d.cuDeviceGetCount, "cuDeviceGetCount", e);
  sym(lib, d.cuDeviceGet, "cuDeviceGet", e);
  sym(lib, d.cuDeviceGetName, "cuDeviceGetName", e);
  sym(lib, d.cuDeviceGetAttribute, "cuDeviceGetAttribute", e);
  sym(lib, d.cuDeviceTotalMem, "cuDeviceTotalMem_v2", e);
  sym(lib, d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", e);
  sym(lib, d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", e);
  sym(lib, d.cuCtxSetCurrent, "cuCtxSetCurrent", e);
  sym(lib, d.cuStreamCreate, "cuStreamCreate", e);
  sym(lib, d.cuStreamDestroy, "cuStreamDestroy_v2", e);
  sym(lib, d.cuStreamSynchronize, "cuStreamSynchronize", e);
  sym(lib, d.cuEventCreate, "cuEventCreate", e);
  sym(lib, d.cuEventDestroy, "cuEventDestroy_v2", e);
  sym(lib, d.cuEventRecord, "cuEventRecord", e);
  sym(lib, d.cuEventSynchronize, "cuEventSynchronize", e);
  sym(lib, d.cuStreamWaitEvent, "cuStreamWaitEvent", e);
  sym(lib, d.cuLaunchHostFunc, "cuLaunchHostFunc", e);
  sym(lib, d.cuMemcpyDtoH, "cuMemcpyDtoH_v2", e);
  const auto optional = [lib](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
  };
  optional(d.cuMemAllocAsync, "cuMemAllocAsync");
  optional(d.cuMemFreeAsync, "cuMemFreeAsync");
  optional(d.cuStreamBeginCapture, "cuStreamBeginCapture_v2");
  optional(d.cuStreamEndCapture, "cuStreamEndCapture");
  optional(d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags");
  optional(d.cuGraphLaunch, "cuGraphLaunch");
  optional(d.cuGraphExecDestroy, "cuGraphExecDestroy");
  optional(d.cuGraphDestroy, "cuGraphDestroy");
  sym(lib, d.cuEventElapsedTime, "cuEventElapsedTime", e);
  sym(lib, d.cuMemAlloc, "cuMemAlloc_v2", e);
  sym(lib, d.cuMemFree, "cuMemFree_v2", e);
  sym(lib, d.cuMemAllocHost, "cuMemAllocHost_v2", e);
  sym(lib, d.cuMemFreeHost, "cuMemFreeHost", e);
  sym(lib, d.cuMemGetInfo, "cuMemGetInfo_v2", e);
  sym(lib, d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", e);
  sym(lib, d.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2", e);
  sym(lib, d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", e);
  sym(lib, d.cuMemcpyAsync, "cuMemcpyAsync", e);
  sym(lib, d.cuMemsetD8Async, "cuMemsetD8Async", e);
  sym(lib, d.cuModuleLoadData, "cuModuleLoadData", e);
  sym(lib, d.cuModuleUnload, "cuModuleUnload", e);
  sym(lib, d.cuModuleGetFunction, "cuModuleGetFunction", e);
  sym(lib, d.cuFuncSetAttribute, "cuFuncSetAttribute", e);
  sym(lib, d.cuFuncGetAttribute, "cuFuncGetAttribute", e);
  sym(lib, d.cuOccupancyMaxActiveBlocksPerMultiprocessor, "cuOccupancyMaxActiveBlocksPerMultiprocessor", e);
  sym(lib, d.cuLaunchKernel, "cuLaunchKernel", e);
  d.cuLaunchKernelEx = reinterpret_cast<decltype(d.cuLaunchKernelEx)>(dlsym(lib, "cuLaunchKernelEx"));
  d.cuTensorMapEncodeTiled =
      reinterpret_cast<decltype(d.cuTensorMapEncodeTiled)>(dlsym(lib, "cuTensorMapEncodeTiled"));
  if (!e.empty()) return l;
  const CUresult r = d.cuInit(0);
  if (r == CUDA_ERROR_NO_DEVICE) {
    e = "no device (cuInit: CUDA_ERROR_NO_DEVICE)";
  } else if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    d.cuGetErrorName(r, &name);
    e = std::string("CUDA driver failed to initialize (cuInit: ") + (name ? name : "?") + ")";
  }
  return l;
}

}  // namespace

const Driver& driver() {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [] { loaded = load(); });
  if (!loaded.error.empty()) throw FaError("UNAVAILABLE", loaded.error);
  return loaded.api;
}

void check(CUresult r, const char* call) {
  if (r == CUDA_SUCCESS) return;
  const Driver& d = driver();
  const char* name = nullptr;
  const char* text = nullptr;
  if (d.cuGetErrorName(r, &name) != CUDA_SUCCESS) name = nullptr;
  if (d.cuGetErrorString(r, &text) != CUDA_SUCCESS) text = nullptr;
  std::string code = r == CUDA_ERROR_OUT_OF_MEMORY ? "OOM"
                     : (r == CUDA_ERROR_NO_DEVICE || r == CUDA_ERROR_NO_BINARY_FOR_GPU) ? "UNAVAILABLE"
                                                                                          : "DEVICE";
  std::string n = name ? name : ("CUresult " + std::to_string(r));
  throw CudaError(r, call, n, code, std::string(call) + " failed: " + n + (text ? std::string(" (") + text + ")" : ""));
}

}  // namespace fa

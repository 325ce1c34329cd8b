#include "cublas.h"

#include <dlfcn.h>

#include <mutex>
#include <type_traits>
#include <vector>

namespace fa {

namespace {

struct Loaded {
  Cublas api{};
  std::string error;
};

Loaded load(const std::string& path) {
  Loaded l;
  std::vector<std::string> names;
  if (!path.empty()) names.push_back(path);
  for (const char* n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}) names.emplace_back(n);
  void* lib = nullptr;
  std::string tried;
  for (const std::string& n : names) {
    lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      l.api.path = n;
      break;
    }
    const char* e = dlerror();
    tried += (tried.empty() ? "" : "; ") + n + ": " + (e ? e : "not found");
  }
  if (!lib) {
    l.error = "cuBLAS was not found (" + tried +
              "); install it (the CUDA toolkit, or the nvidia-cublas-cu12 wheel) and put it on the library path, or "
              "pass the file as the backend's cublasPath option";
    return l;
  }
  Cublas& c = l.api;
  const auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn && l.error.empty()) l.error = c.path + " lacks " + name;
  };
  sym(c.cublasCreate_v2, "cublasCreate_v2");
  sym(c.cublasDestroy_v2, "cublasDestroy_v2");
  sym(c.cublasSetStream_v2, "cublasSetStream_v2");
  sym(c.cublasSetWorkspace_v2, "cublasSetWorkspace_v2");
  sym(c.cublasGemmEx, "cublasGemmEx");
  sym(c.cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
  return l;
}

}  // namespace

const Cublas& cublas(const std::string& path) {
  static std::once_flag once;
  static Loaded loaded;
  std::call_once(once, [&] { loaded = load(path); });
  if (!loaded.error.empty()) throw FaError("UNAVAILABLE", loaded.error);
  return loaded.api;
}

const CublasLt* cublasLt(const std::string& path) {
  static std::once_flag once;
  static CublasLt api{};
  static bool ok = false;
  std::call_once(once, [&] {
    const Cublas& blas = cublas(path);
    // libcublas.so.N -> libcublasLt.so.N, in the same directory when a path was given.
    std::string lt = blas.path;
    const size_t at = lt.rfind("libcublas");
    if (at != std::string::npos) lt.insert(at + 9, "Lt");
    void* lib = dlopen(lt.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    api.path = lt;
    ok = true;
    const auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn) ok = false;
    };
    sym(api.cublasLtCreate, "cublasLtCreate");
    sym(api.cublasLtDestroy, "cublasLtDestroy");
    sym(api.cublasLtMatmulDescCreate, "cublasLtMatmulDescCreate");
    sym(api.cublasLtMatmulDescDestroy, "cublasLtMatmulDescDestroy");
    sym(api.cublasLtMatmulDescSetAttribute, "cublasLtMatmulDescSetAttribute");
    sym(api.cublasLtMatrixLayoutCreate, "cublasLtMatrixLayoutCreate");
    sym(api.cublasLtMatrixLayoutDestroy, "cublasLtMatrixLayoutDestroy");
    sym(api.cublasLtMatrixLayoutSetAttribute, "cublasLtMatrixLayoutSetAttribute");
    sym(api.cublasLtMatmulPreferenceCreate, "cublasLtMatmulPreferenceCreate");
    sym(api.cublasLtMatmulPreferenceDestroy, "cublasLtMatmulPreferenceDestroy");
    sym(api.cublasLtMatmulPreferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
    sym(api.cublasLtMatmulAlgoGetHeuristic, "cublasLtMatmulAlgoGetHeuristic");
    sym(api.cublasLtMatmul, "cublasLtMatmul");
  });
  return ok ? &api : nullptr;
}

void checkBlas(int status, const char* call) {
  if (status == 0) return;
  // cublasStatus_t: 1 not initialized, 3 alloc failed, 7 invalid value, 8 arch mismatch,
  // 13 execution failed, 14 internal error, 15 not supported.
  const std::string code = status == 3 ? "OOM" : status == 7 || status == 15 ? "UNSUPPORTED" : "DEVICE";
  throw FaError(code, std::string(call) + " failed with cuBLAS status " + std::to_string(status));
}

}  // namespace fa

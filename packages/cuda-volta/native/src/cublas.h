// cuBLAS, loaded at run time with dlopen like the driver: the few entry points the linear op uses,
// declared here from cuBLAS's stable C ABI (no headers or link at build time).
#pragma once
#include <string>

#include "driver.h"

namespace fa {

typedef struct cublasContext* cublasHandle_t;

enum : int {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUDA_R_32F = 0,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_GEMM_DEFAULT = -1,
};

struct Cublas {
  int (*cublasCreate_v2)(cublasHandle_t*);
  int (*cublasDestroy_v2)(cublasHandle_t);
  int (*cublasSetStream_v2)(cublasHandle_t, CUstream);
  // A workspace of our own: a captured GEMM must not allocate (CUDA graphs).
  int (*cublasSetWorkspace_v2)(cublasHandle_t, void*, size_t);
  int (*cublasGemmEx)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha, const void* A,
                      int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype,
                      int ldc, int computeType, int algo);
  std::string path;  // the library that was loaded
};

// cuBLAS from `path` (when not empty) or the usual sonames; throws FaError("UNAVAILABLE", why) if
// none loads. Loaded once per process; a later call with another path gets the first one.
const Cublas& cublas(const std::string& path);

// Throws FaError("DEVICE", ...) naming the call when a cuBLAS status is not CUBLAS_STATUS_SUCCESS.
void checkBlas(int status, const char* call);

}  // namespace fa

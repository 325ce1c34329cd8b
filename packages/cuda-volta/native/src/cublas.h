// cuBLAS, loaded at run time with dlopen like the driver: the few entry points the GEMMs use (the
// linear op, standard attention's batched products), declared here from cuBLAS's stable C ABI (no
// headers or link at build time).
#pragma once
#include <cstddef>
#include <cstdint>
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

// cuBLASLt: the matmul with an explicit algorithm, chosen once per problem by its heuristic.
typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque* cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  int state;
  float wavesCount;
  int reserved[4];
};
enum : int {
  CUBLASLT_MATMUL_DESC_TRANSA = 3,
  CUBLASLT_MATMUL_DESC_TRANSB = 4,
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,  // B, C and D follow: 6, 7, 8
  CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,           // int32_t
  CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,  // int64_t, elements
};

struct CublasLt {
  int (*cublasLtCreate)(cublasLtHandle_t*);
  int (*cublasLtDestroy)(cublasLtHandle_t);
  int (*cublasLtMatmulDescCreate)(cublasLtMatmulDesc_t*, int computeType, int scaleType);
  int (*cublasLtMatmulDescDestroy)(cublasLtMatmulDesc_t);
  int (*cublasLtMatmulDescSetAttribute)(cublasLtMatmulDesc_t, int attr, const void* buf, size_t size);
  int (*cublasLtMatrixLayoutCreate)(cublasLtMatrixLayout_t*, int type, uint64_t rows, uint64_t cols, int64_t ld);
  int (*cublasLtMatrixLayoutDestroy)(cublasLtMatrixLayout_t);
  int (*cublasLtMatrixLayoutSetAttribute)(cublasLtMatrixLayout_t, int attr, const void* buf, size_t size);
  int (*cublasLtMatmulPreferenceCreate)(cublasLtMatmulPreference_t*);
  int (*cublasLtMatmulPreferenceDestroy)(cublasLtMatmulPreference_t);
  int (*cublasLtMatmulPreferenceSetAttribute)(cublasLtMatmulPreference_t, int attr, const void* buf, size_t size);
  int (*cublasLtMatmulAlgoGetHeuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t,
                                        cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                        cublasLtMatmulPreference_t, int requested,
                                        cublasLtMatmulHeuristicResult_t* results, int* returned);
  int (*cublasLtMatmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void* alpha, const void* A,
                        cublasLtMatrixLayout_t, const void* B, cublasLtMatrixLayout_t, const void* beta,
                        const void* C, cublasLtMatrixLayout_t, void* D, cublasLtMatrixLayout_t,
                        const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSize, CUstream);
  std::string path;
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
  int (*cublasGemmStridedBatchedEx)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha,
                                    const void* A, int Atype, int lda, long long strideA, const void* B, int Btype,
                                    int ldb, long long strideB, const void* beta, void* C, int Ctype, int ldc,
                                    long long strideC, int batchCount, int computeType, int algo);
  std::string path;  // the library that was loaded
};

// cuBLAS from `path` (when not empty) or the usual sonames; throws FaError("UNAVAILABLE", why) if
// none loads. Loaded once per process; a later call with another path gets the first one.
const Cublas& cublas(const std::string& path);

// cuBLASLt beside the cuBLAS that `cublas(path)` loaded (it depends on it, so it is found there), or
// nullptr when it does not load: the caller then uses cublasGemmEx.
const CublasLt* cublasLt(const std::string& path);

// Throws FaError("DEVICE", ...) naming the call when a cuBLAS status is not CUBLAS_STATUS_SUCCESS.
void checkBlas(int status, const char* call);

}  // namespace fa

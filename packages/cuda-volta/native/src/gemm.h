// The linear op's GEMM. cuBLASLt runs it with an algorithm chosen once per problem (its heuristic,
// cached by shape, strides, dtypes and pointer alignment), which spares cublasGemmEx's per-call
// selection; cublasGemmEx is the fallback where cuBLASLt is missing or finds no algorithm. Owns the
// handles and a workspace of its own: a GEMM captured into a CUDA graph must not allocate.
#pragma once
#include <array>
#include <map>
#include <string>

#include "../../kernels/common/op_params.h"
#include "cublas.h"

namespace fa {

// out[m, n] = alpha · x[m, k] · w[n, k]ᵀ (+ beta · out), f32 accumulation; row-major matrices.
// With wKN, w is [k, n] and out = alpha · x · w. A batch of `batch` such products lies `*Stride`
// elements apart in each operand (standard attention: one product per head).
struct GemmProblem {
  FaMat x, w, out;
  int64_t m, n, k;
  float beta;
  float alpha = 1.0f;
  bool wKN = false;
  int64_t batch = 1;
  int64_t xStride = 0, wStride = 0, outStride = 0;
};

enum class GemmApi { Lt = 0, GemmEx = 1 };

class Gemm {
 public:
  // Loads cuBLAS (and cuBLASLt) and makes the handles and the workspace. Idempotent; call it
  // before a capture begins.
  void prepare(const std::string& cublasPath);
  void run(const GemmProblem& p, GemmApi api, CUstream stream);
  void release();

 private:
  struct Plan {
    bool ok = false;  // false: cuBLASLt had no algorithm; cublasGemmEx runs the problem
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    size_t workspace = 0;
  };
  using Key = std::array<int64_t, 17>;
  const Plan& plan(const GemmProblem& p);
  void runGemmEx(const GemmProblem& p, CUstream stream);

  const Cublas* blas_ = nullptr;
  const CublasLt* lt_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  cublasLtHandle_t ltHandle_ = nullptr;
  CUdeviceptr workspace_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace fa

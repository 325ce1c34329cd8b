#include "gemm.h"

namespace fa {

namespace {

constexpr size_t kWorkspace = size_t(32) << 20;
constexpr int kCudaType[3] = {CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF};  // FaOpDType -> cudaDataType

// The largest power of two (up to 256) dividing the address of every matrix of the batch (the
// first one's address and the byte stride between them): cuBLASLt's algorithms assume one.
int64_t alignment(const FaMat& m, int64_t batch, int64_t stride) {
  static constexpr int64_t kBytes[3] = {4, 2, 2};
  const auto a = reinterpret_cast<uintptr_t>(m.ptr) | (batch > 1 ? uintptr_t(stride * kBytes[m.dtype]) : 0);
  int64_t align = 1;
  while (align < 256 && a % (align * 2) == 0) align *= 2;
  return align;
}

bool setBatch(const CublasLt& lt, cublasLtMatrixLayout_t layout, int64_t batch, int64_t stride) {
  if (batch == 1) return true;
  const int32_t count = static_cast<int32_t>(batch);
  return lt.cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count) == 0 &&
         lt.cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                             sizeof stride) == 0;
}

}  // namespace

void Gemm::prepare(const std::string& cublasPath) {
  if (handle_) return;
  blas_ = &cublas(cublasPath);
  checkBlas(blas_->cublasCreate_v2(&handle_), "cublasCreate_v2");
  FA_CU(cuMemAlloc(&workspace_, kWorkspace), "cuMemAlloc_v2");
  checkBlas(blas_->cublasSetWorkspace_v2(handle_, reinterpret_cast<void*>(workspace_), kWorkspace),
            "cublasSetWorkspace_v2");
  lt_ = cublasLt(cublasPath);
  if (lt_ && lt_->cublasLtCreate(&ltHandle_) != 0) lt_ = nullptr;
}

// Row-major out = x · wᵀ is column-major outᵀ = op(w) · xᵀ with op = transpose: A = w (k x n,
// transposed), B = x (k x m), C = D = out (n x m). With wKN, A = w is n x k, not transposed.
const Gemm::Plan& Gemm::plan(const GemmProblem& p) {
  const Key key{p.m,
                p.n,
                p.k,
                p.x.row_stride,
                p.w.row_stride,
                p.out.row_stride,
                p.x.dtype,
                p.w.dtype,
                p.out.dtype,
                alignment(p.x, p.batch, p.xStride),
                alignment(p.w, p.batch, p.wStride),
                alignment(p.out, p.batch, p.outStride),
                (p.beta != 0.0f ? 1 : 0) | (p.wKN ? 2 : 0),
                p.batch,
                p.xStride,
                p.wStride,
                p.outStride};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  Plan plan;
  const CublasLt& lt = *lt_;
  bool ok = lt.cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == 0;
  const int32_t transA = p.wKN ? CUBLAS_OP_N : CUBLAS_OP_T, transB = CUBLAS_OP_N;
  ok = ok && lt.cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transA, sizeof transA) == 0;
  ok = ok && lt.cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transB, sizeof transB) == 0;
  ok = ok && lt.cublasLtMatrixLayoutCreate(&plan.a, kCudaType[p.w.dtype], p.wKN ? p.n : p.k, p.wKN ? p.k : p.n,
                                           p.w.row_stride) == 0;
  ok = ok && lt.cublasLtMatrixLayoutCreate(&plan.b, kCudaType[p.x.dtype], p.k, p.m, p.x.row_stride) == 0;
  ok = ok && lt.cublasLtMatrixLayoutCreate(&plan.c, kCudaType[p.out.dtype], p.n, p.m, p.out.row_stride) == 0;
  ok = ok && setBatch(lt, plan.a, p.batch, p.wStride) && setBatch(lt, plan.b, p.batch, p.xStride) &&
       setBatch(lt, plan.c, p.batch, p.outStride);
  cublasLtMatmulPreference_t pref = nullptr;
  ok = ok && lt.cublasLtMatmulPreferenceCreate(&pref) == 0;
  const uint64_t max = kWorkspace;
  ok = ok && lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max, sizeof max) == 0;
  const uint32_t aligns[4] = {static_cast<uint32_t>(key[10]), static_cast<uint32_t>(key[9]),
                              static_cast<uint32_t>(key[11]), static_cast<uint32_t>(key[11])};  // A=w, B=x, C, D
  for (int i = 0; i < 4 && ok; ++i) {
    ok = lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES + i, &aligns[i],
                                                 sizeof aligns[i]) == 0;
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  ok = ok && lt.cublasLtMatmulAlgoGetHeuristic(ltHandle_, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result,
                                               &found) == 0;
  if (pref) lt.cublasLtMatmulPreferenceDestroy(pref);
  plan.ok = ok && found > 0 && result.state == 0;
  plan.algo = result.algo;
  plan.workspace = result.workspaceSize;
  return plans_.emplace(key, plan).first->second;
}

void Gemm::run(const GemmProblem& p, GemmApi api, CUstream stream) {
  if (api == GemmApi::Lt && lt_) {
    const Plan& pl = plan(p);
    if (pl.ok) {
      checkBlas(lt_->cublasLtMatmul(ltHandle_, pl.desc, &p.alpha, p.w.ptr, pl.a, p.x.ptr, pl.b, &p.beta, p.out.ptr, pl.c,
                                    p.out.ptr, pl.c, &pl.algo, reinterpret_cast<void*>(workspace_), pl.workspace, stream),
                "cublasLtMatmul");
      return;
    }
  }
  runGemmEx(p, stream);
}

void Gemm::runGemmEx(const GemmProblem& p, CUstream stream) {
  checkBlas(blas_->cublasSetStream_v2(handle_, stream), "cublasSetStream_v2");
  const int transA = p.wKN ? CUBLAS_OP_N : CUBLAS_OP_T;
  const int m = static_cast<int>(p.n), n = static_cast<int>(p.m), k = static_cast<int>(p.k);
  const int lda = static_cast<int>(p.w.row_stride), ldb = static_cast<int>(p.x.row_stride);
  const int ldc = static_cast<int>(p.out.row_stride);
  const int ta = kCudaType[p.w.dtype], tb = kCudaType[p.x.dtype], tc = kCudaType[p.out.dtype];
  if (p.batch == 1) {
    checkBlas(blas_->cublasGemmEx(handle_, transA, CUBLAS_OP_N, m, n, k, &p.alpha, p.w.ptr, ta, lda, p.x.ptr, tb, ldb,
                                  &p.beta, p.out.ptr, tc, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
    return;
  }
  checkBlas(blas_->cublasGemmStridedBatchedEx(handle_, transA, CUBLAS_OP_N, m, n, k, &p.alpha, p.w.ptr, ta, lda,
                                              p.wStride, p.x.ptr, tb, ldb, p.xStride, &p.beta, p.out.ptr, tc, ldc,
                                              p.outStride, static_cast<int>(p.batch), CUBLAS_COMPUTE_32F,
                                              CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx");
}

void Gemm::release() {
  if (lt_) {
    for (auto& e : plans_) {
      Plan& pl = e.second;
      if (pl.a) lt_->cublasLtMatrixLayoutDestroy(pl.a);
      if (pl.b) lt_->cublasLtMatrixLayoutDestroy(pl.b);
      if (pl.c) lt_->cublasLtMatrixLayoutDestroy(pl.c);
      if (pl.desc) lt_->cublasLtMatmulDescDestroy(pl.desc);
    }
    if (ltHandle_) lt_->cublasLtDestroy(ltHandle_);
  }
  plans_.clear();
  ltHandle_ = nullptr;
  if (handle_) blas_->cublasDestroy_v2(handle_);
  handle_ = nullptr;
  if (workspace_) driver().cuMemFree(workspace_);
  workspace_ = 0;
}

}  // namespace fa

// Dense float matrix products for training: the forward pass, and the two
// transposed products its backward pass needs.
//
//   C[M,N] = (accumulate ? C : 0) + op(A)[M,K] * op(B)[K,N]
//
// Matrices are row-major with leading dimensions (lda, ldb, ldc, in
// elements): op(A) = A when A is stored M x K (A[i*lda + k]), or A^T when A
// is stored K x M (A[k*lda + i]); likewise for B. With weights W stored as
// GGUF does ([n_out rows of n_in]) and activations X as [tokens, n_in]:
//   forward   Y  = X W^T        gemm(kNo,  kYes, ...)
//   input     dX = dY W         gemm(kNo,  kNo,  ...)
//   weights   dW += dY^T X      gemm(kYes, kNo,  ..., accumulate)
//
// The float version is blocked and packed (BLIS-style), its micro-kernel
// compiled for each SIMD target (Highway). Every element of C is summed
// over K in the same fixed order whatever the thread count, so results are
// bit-identical for any pool (tested). The double version is plain loops:
// it exists for the double-precision gradient checks.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace specula {

enum class Transpose { kNo, kYes };

struct GemmShape {
  Transpose trans_a = Transpose::kNo;
  Transpose trans_b = Transpose::kNo;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
};

// Which kernel runs the large float products: kF32 is the Highway kernel
// below; kBf16 rounds the operands to bfloat16 and runs them on oneDNN
// (AMX), see gemm_dnnl.h. kAuto is resolved by resolve_gemm_backend.
enum class GemmBackend { kAuto, kF32, kBf16 };

// While one is alive, the float gemm() calls made on this thread whose
// product has at least kBf16MinMacs multiply-adds (and every dimension at
// least kBf16MinDim) run on `backend`; smaller products, and calls on other
// threads, stay on the float kernel. The trainer opens one around each
// linear layer, so attention's per-head products (made inside pool tasks)
// never switch. Nests; restores the previous backend when destroyed.
class ScopedGemmBackend {
 public:
  explicit ScopedGemmBackend(GemmBackend backend);
  ~ScopedGemmBackend();
  ScopedGemmBackend(const ScopedGemmBackend&) = delete;
  ScopedGemmBackend& operator=(const ScopedGemmBackend&) = delete;

 private:
  GemmBackend previous_;
};
// Below this the float kernel is as fast: converting the operands and
// calling oneDNN cost a few microseconds per call.
constexpr int64_t kBf16MinMacs = int64_t{1} << 18;
constexpr int64_t kBf16MinDim = 16;

// pool may be null (single thread). Not reentrant on one pool.
void gemm(const GemmShape& shape, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate, ThreadPool* pool);
void gemm(const GemmShape& shape, const double* a, int64_t lda, const double* b, int64_t ldb,
          double* c, int64_t ldc, bool accumulate, ThreadPool* pool);

// The mathematical reference: double sums of float products, one thread.
void gemm_reference(const GemmShape& shape, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc, bool accumulate);

namespace gemm_detail {
// Block sizes of the float kernel (shared by gemm.cpp and gemm_simd.cpp).
constexpr int64_t kBlockM = 96;   // rows of C per task (a multiple of every MR)
constexpr int64_t kBlockN = 256;  // columns of C per task (a multiple of every NR)
constexpr int64_t kBlockK = 256;  // depth per packed block

struct GemmJob {
  GemmShape shape;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  bool accumulate;
};
// Computes C[row0 : row0 + kBlockM, col0 : col0 + kBlockN] (clipped to the
// matrix) on the best SIMD target; uses thread-local packing buffers.
void gemm_block_simd(const GemmJob& job, int64_t row0, int64_t col0);
}  // namespace gemm_detail

}  // namespace specula

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

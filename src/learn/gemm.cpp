#include "learn/gemm.h"

#include <cassert>

#include "learn/gemm_dnnl.h"

namespace specula {
namespace {

template <typename T>
T element(const T* matrix, int64_t ld, Transpose trans, int64_t row, int64_t col) {
  return trans == Transpose::kNo ? matrix[row * ld + col] : matrix[col * ld + row];
}

thread_local GemmBackend t_gemm_backend = GemmBackend::kF32;

bool large_enough_for_bf16(const GemmShape& s) {
  return s.m >= kBf16MinDim && s.n >= kBf16MinDim && s.k >= kBf16MinDim &&
         s.m * s.n * s.k >= kBf16MinMacs;
}

}  // namespace

ScopedGemmBackend::ScopedGemmBackend(GemmBackend backend) : previous_(t_gemm_backend) {
  assert(backend != GemmBackend::kAuto);
  t_gemm_backend = backend;
}

ScopedGemmBackend::~ScopedGemmBackend() {
  t_gemm_backend = previous_;
}

void gemm(const GemmShape& shape, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c, int64_t ldc, bool accumulate, ThreadPool* pool) {
  using namespace gemm_detail;
  assert(shape.m >= 0 && shape.n >= 0 && shape.k >= 0);
  if (shape.m == 0 || shape.n == 0) return;
  if (t_gemm_backend == GemmBackend::kBf16 && large_enough_for_bf16(shape)) {
    gemm_bf16(shape, a, lda, b, ldb, c, ldc, accumulate, pool);
    return;
  }
  const GemmJob job{shape, a, lda, b, ldb, c, ldc, accumulate};
  const int64_t blocks_m = (shape.m + kBlockM - 1) / kBlockM;
  const int64_t blocks_n = (shape.n + kBlockN - 1) / kBlockN;
  const int64_t n_blocks = blocks_m * blocks_n;
  const auto run_block = [&](int64_t block) {
    gemm_block_simd(job, (block / blocks_n) * kBlockM, (block % blocks_n) * kBlockN);
  };
  if (pool == nullptr || n_blocks == 1) {
    for (int64_t block = 0; block < n_blocks; ++block) run_block(block);
  } else {
    pool->parallel_for(n_blocks, run_block);
  }
}

void gemm(const GemmShape& shape, const double* a, int64_t lda, const double* b, int64_t ldb,
          double* c, int64_t ldc, bool accumulate, ThreadPool* pool) {
  const auto run_row = [&](int64_t i) {
    for (int64_t j = 0; j < shape.n; ++j) {
      double sum = 0.0;
      for (int64_t k = 0; k < shape.k; ++k) {
        sum += element(a, lda, shape.trans_a, i, k) * element(b, ldb, shape.trans_b, k, j);
      }
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
    }
  };
  if (pool == nullptr) {
    for (int64_t i = 0; i < shape.m; ++i) run_row(i);
  } else {
    pool->parallel_for(shape.m, run_row);
  }
}

void gemm_reference(const GemmShape& shape, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < shape.m; ++i) {
    for (int64_t j = 0; j < shape.n; ++j) {
      double sum = accumulate ? c[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < shape.k; ++k) {
        sum += static_cast<double>(element(a, lda, shape.trans_a, i, k)) *
               element(b, ldb, shape.trans_b, k, j);
      }
      c[i * ldc + j] = static_cast<float>(sum);
    }
  }
}

}  // namespace specula

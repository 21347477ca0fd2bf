// Matrix products of GGUF weight matrices with activation rows.
//
// A weight matrix as GGUF stores it: n_out rows of n_in values of `type`,
// row r at data + r * row_bytes. y = x W^T for m activation rows.
// Each weight row is read once for all m rows: this is what makes a target
// pass over g+1 drafted tokens cost about what a pass over one token costs.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace specula {

struct WeightMatrix {
  const void* data = nullptr;
  DType type = DType::kF32;
  int64_t n_in = 0;       // values per row (GGUF dims[0])
  int64_t n_out = 0;      // rows (GGUF dims[1])
  uint64_t row_bytes = 0;  // bytes per row
};

// Builds a WeightMatrix, checking that n_in suits the type's block size.
WeightMatrix make_weight_matrix(const void* data, DType type, int64_t n_in, int64_t n_out);

// True when matmul supports weights of this type.
bool matmul_supports(DType type);

// y[m][n_out] = sum_k x[m][k] * W[n_out][k]; x is m x n_in (row-major,
// contiguous), y is m x n_out. pool may be null (single thread).
void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool);

// The scalar reference for every supported type (tests compare fast paths
// against it).
void matmul_reference(const WeightMatrix& w, const float* x, int64_t m, float* y);

// Converts row `row` of w to floats (n_in values). Used for embedding lookup.
void dequantize_row(const WeightMatrix& w, int64_t row, float* out);

}  // namespace specula

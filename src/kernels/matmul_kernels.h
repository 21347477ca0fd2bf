// The row kernels behind matmul(): internal to src/kernels.
//
// A MatmulJob describes one y = x W^T product; a kernel computes the output
// columns of weight rows [row_begin, row_end) for all m activation rows, so
// threads split the weight rows and each reads its own rows once.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "kernels/quant_decode.h"

namespace specula {

struct MatmulJob {
  const uint8_t* weights = nullptr;  // n_out rows of row_bytes
  DType type = DType::kF32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  uint64_t row_bytes = 0;
  int64_t m = 0;       // activation rows
  float* y = nullptr;  // m x n_out

  // F32 / F16 / BF16 weights: the float activations, m x n_in.
  const float* x = nullptr;

  // Integer-dot weight types: the prepared activations (quant_decode.h).
  ActivationRows acts;
};

// The calling thread's space for one decoded weight row (n_groups groups).
// Allocates only when n_groups exceeds every earlier request on this thread.
DecodedGroup* thread_decoded_row(int64_t n_groups);

// The scalar twin of the SIMD kernels: the same decoding and the same
// integer arithmetic, written plainly (matmul_scalar.cpp).
void matmul_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end);

// The SIMD kernels for the best target of this CPU: float weights in
// matmul_simd.cpp, integer-dot weights in matmul_int_simd.cpp.
void matmul_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end);
void matmul_int_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end);

// prepare_activation_row (quant_decode.h) for the best target of this CPU:
// the same bytes, vectorized.
void prepare_activation_row_simd(const float* x, int64_t n, int8_t* values, float* scales,
                                 int32_t* neg_sums, int32_t* neg_sums_lo, float* scaled_sums);

// Highway's bit for the target matmul_rows_simd dispatches to now.
int64_t simd_dispatched_target();

}  // namespace specula

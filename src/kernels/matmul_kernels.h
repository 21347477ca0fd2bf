// The row kernels behind matmul(): internal to src/kernels.
//
// A MatmulJob describes one y = x W^T product; a kernel computes the output
// columns of weight rows [row_begin, row_end) for all m activation rows, so
// threads split the weight rows and each reads its own rows once.
#pragma once

#include <cstdint>

#include "core/dtype.h"

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

  // Integer-dot weight types: the quantized activations (quant_decode.h).
  int group = 0;                      // values per activation scale
  const int16_t* x_values = nullptr;  // m x n_in
  const float* x_scales = nullptr;    // m x (n_in / group)
  const float* x_sums = nullptr;      // m x (n_in / 32)
};

// Per-thread space for decoded weight rows, sized by ensure_row_scratch.
struct RowScratch {
  int16_t* values = nullptr;      // kMaxDecodedRows x n_in
  float* group_scales = nullptr;  // kMaxDecodedRows x (n_in / 32)
  float* offsets = nullptr;       // kMaxDecodedRows x (n_in / 32)
  int64_t n_in = 0;
};
inline constexpr int kMaxDecodedRows = 4;

// The scratch of the calling thread, grown to hold rows of n_in values.
// Allocates only when n_in exceeds every earlier request on this thread.
RowScratch& thread_row_scratch(int64_t n_in);

// The scalar twin of the SIMD kernels: the same decoding and the same
// integer arithmetic, written plainly (matmul_scalar.cpp).
void matmul_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end);

// The SIMD kernels for the best target of this CPU (matmul_simd.cpp).
void matmul_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end);

// Highway's bit for the target matmul_rows_simd dispatches to now.
int64_t simd_dispatched_target();

}  // namespace specula

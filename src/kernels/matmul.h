// Matrix products of GGUF weight matrices with activation rows.
//
// A weight matrix as GGUF stores it: n_out rows of n_in values of `type`,
// row r at data + r * row_bytes. y = x W^T for m activation rows.
// Each weight row is read once for all m rows: this is what makes a target
// pass over g+1 drafted tokens cost about what a pass over one token costs.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace specula {

struct WeightMatrix {
  const void* data = nullptr;
  DType type = DType::kF32;
  int64_t n_in = 0;        // values per row (GGUF dims[0])
  int64_t n_out = 0;       // rows (GGUF dims[1])
  uint64_t row_bytes = 0;  // bytes per row
  // The same rows repacked for this CPU's integer decoders, row r at
  // packed + r * row_bytes (weight_packing.h), or null. data stays valid
  // and is what every other path reads.
  const uint8_t* packed = nullptr;
};

// Builds a WeightMatrix, checking that n_in suits the type's block size.
WeightMatrix make_weight_matrix(const void* data, DType type, int64_t n_in, int64_t n_out);

// True when matmul supports weights of this type: F32, F16, BF16, Q8_0,
// Q4_0, Q4_K, Q5_K, Q6_K. For the quantized types, matmul quantizes the
// activation rows to 8 bits (per 32 values for Q8_0/Q4_0, per 256 for the
// K-quants) and takes exact integer dot products. For F16 and BF16 rows
// longer than 4096 values it rounds the activations to F16 (11
// significant bits, after scaling each row by a power of two so that
// nothing overflows; see kHalfActivationMinIn in matmul_kernels.h).
bool matmul_supports(DType type);

// y[m][n_out] = sum_k x[m][k] * W[n_out][k]; x is m x n_in (row-major,
// contiguous), y is m x n_out. pool may be null (single thread). Allocates
// nothing once a thread has seen its largest shapes. Not reentrant on one
// pool (parallel_for's contract).
void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool);

// y_j = matmul(*ws[j], x) for several matrices that read the same
// activations (the attention's Q, K and V; the FFN's gate and up): the
// activations are prepared once and the pool runs all the products in one
// pass, so a decoded token waits at one barrier instead of one per matrix.
// Every y_j is bit-identical to matmul's. The matrices must have the same
// n_in; those of different types whose activations differ (F16 beside
// Q4_K, say) run one after another. ws and ys have the same length.
void matmul_shared_input(std::span<const WeightMatrix* const> ws, const float* x, int64_t m,
                         std::span<float* const> ys, ThreadPool* pool);

// The mathematical reference for every supported type: weights dequantized
// to float, float activations, double sums. Quantized types differ from it
// by the 8-bit quantization of the activations in matmul (see
// docs/kernels.md for the bound), long F16/BF16 rows by their F16 activations.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t m, float* y);

// The scalar twin of matmul's SIMD kernels: the same activation
// quantization and integer sums, in plain loops, single-threaded. Tests
// compare every SIMD target with it to float-rounding tolerance.
void matmul_scalar(const WeightMatrix& w, const float* x, int64_t m, float* y);

// Converts row `row` of w to floats (n_in values). Used for embedding lookup.
void dequantize_row(const WeightMatrix& w, int64_t row, float* out);

}  // namespace specula

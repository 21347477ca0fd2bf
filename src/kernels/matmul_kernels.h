// The row kernels behind matmul(): internal to src/kernels.
//
// A MatmulJob describes one y = x W^T product; a kernel computes the output
// columns of weight rows [row_begin, row_end) for all m activation rows, so
// threads split the weight rows and each reads its own rows once.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/quant_decode.h"

namespace specula {

struct MatmulJob {
  const uint8_t* weights = nullptr;  // n_out rows of row_bytes
  // WeightMatrix::packed: read instead of weights by the AVX-512 integer
  // kernels (weight_packing.h); null when not packed.
  const uint8_t* packed = nullptr;
  DType type = DType::kF32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  uint64_t row_bytes = 0;
  int64_t m = 0;       // activation rows
  float* y = nullptr;  // m x n_out

  // F32 / F16 / BF16 weights: the float activations, m x n_in.
  const float* x = nullptr;

  // F16 / BF16 weights with rows longer than kHalfActivationMinIn: the
  // activations in F16 (half_activations_row). x then holds the same values
  // as floats (exactly), x_half their F16 bits (m x n_in), and x_inv_scale
  // per row the power of two each sum is multiplied by at the end. Null
  // otherwise.
  const uint16_t* x_half = nullptr;
  const float* x_inv_scale = nullptr;

  // BF16 weights under simd_bf16_dot(): the activations rounded to BF16
  // (m x n_in), which x then holds as floats (exactly). Null otherwise.
  const uint16_t* x_bf16 = nullptr;

  // With x_bf16, m >= 2: the dot products as F32 FMAs in vdpbf16ps's
  // order (simd_bf16_dot_fma).
  bool bf16_dot_fma = false;

  // Float weights, m = 1: weight rows side by side (simd_float_decode_rows),
  // and with 4 whether in the blocked tiles (simd_float_decode_blocked_min_bytes).
  int decode_rows = 1;
  bool decode_blocked = false;
  // Integer weights, m = 1 on AVX3_DL: prefetch the next weight row
  // (simd_int_row_prefetch; m > 1 always does).
  bool prefetch_next_row = true;

  // Integer-dot weight types: the prepared activations (quant_decode.h).
  ActivationRows acts;
};

// F16 and BF16 rows longer than this many values take F16 activations: a
// float row of more than 16 KB and the weight stream through it do not
// both fit a 32 KB L1 (Zen 4), and re-reading the activations from L2 for
// every weight row halves the weight stream there (ffn_down, n_in = n_ff).
// A function of n_in only, so a row's result never depends on the batch.
constexpr int64_t kHalfActivationMinIn = 4096;

inline bool uses_half_activations(DType type, int64_t n_in) {
  return (type == DType::kF16 || type == DType::kBF16) && n_in > kHalfActivationMinIn;
}

// The F16 activations of one row: x times a power of two 2^s chosen from
// the row's largest |x| so that it lands in [2^14, 2^15) (F16 keeps 11
// significant bits there and cannot overflow), rounded to nearest even.
// Writes the F16 bits to half[0, n) and their float values to rounded[0,
// n); returns 2^-s, by which the row's sums are multiplied. A row holding
// an infinity or a NaN is not scaled (s = 0), so that it reaches the
// outputs as inf/NaN; so is a row of zeros. s is clamped to [-113, 100].
// The plain version (the scalar twin's and the reference for tests).
inline int half_activation_shift(uint32_t max_abs_bits) {
  if (max_abs_bits == 0 || max_abs_bits >= 0x7f800000u) return 0;   // zeros, inf, NaN
  const int exponent = static_cast<int>(max_abs_bits >> 23) - 127;  // floor(log2 max|x|)
  return std::clamp(14 - exponent, -113, 100);
}
float half_activations_row(const float* x, int64_t n, uint16_t* half, float* rounded);
// The same bytes, vectorized for the best target of this CPU.
float half_activations_row_simd(const float* x, int64_t n, uint16_t* half, float* rounded);

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

// decode_group (quant_decode.h) for the best target of this CPU: the same
// values, from the AVX-512 decoders where there are (K-quants).
void decode_group_simd(DType type, const uint8_t* row, int64_t n_in, int64_t g, DecodedGroup* out);

// Highway's bit for the target matmul_rows_simd dispatches to now.
int64_t simd_dispatched_target();

// Whether the dispatched target's vdpbf16ps equals its F32-FMA twin bit for
// bit on this CPU (false on targets without the BF16 dot tiles).
bool bf16_dot_fma_exact_simd();

}  // namespace specula

// The scalar twin of matmul_simd.cpp: the same decoding and the same exact
// integer sums, in plain loops. Tests compare every SIMD target with it.

#include <bit>
#include <cmath>

#include "core/aligned_buffer.h"
#include "core/f16.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"

namespace specula {
namespace {

float weight_value(DType type, const uint8_t* row, int64_t k) {
  switch (type) {
    case DType::kF32:
      return reinterpret_cast<const float*>(row)[k];
    case DType::kF16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
    default:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
  }
}

}  // namespace

float half_activations_row(const float* x, int64_t n, uint16_t* half, float* rounded) {
  uint32_t max_bits = 0;
  for (int64_t k = 0; k < n; ++k)
    max_bits = std::max(max_bits, std::bit_cast<uint32_t>(x[k]) & 0x7fffffffu);
  const int shift = half_activation_shift(max_bits);
  const float scale = std::ldexp(1.0f, shift);
  for (int64_t k = 0; k < n; ++k) {
    half[k] = f32_to_f16(x[k] * scale);
    rounded[k] = f16_to_f32(half[k]);
  }
  return std::ldexp(1.0f, -shift);
}

DecodedGroup* thread_decoded_row(int64_t n_groups) {
  thread_local AlignedBuffer<DecodedGroup> storage;
  if (static_cast<int64_t>(storage.size()) < n_groups) {
    // Rounded up so that a few similar sizes do not each reallocate.
    storage.resize(static_cast<size_t>((n_groups + 7) / 8 * 8));
  }
  return storage.data();
}

void matmul_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (!is_int_dot_type(job.type)) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const uint8_t* row = job.weights + r * job.row_bytes;
      for (int64_t i = 0; i < job.m; ++i) {
        const float* x = job.x + i * job.n_in;
        float sum = 0.0f;
        for (int64_t k = 0; k < job.n_in; ++k) sum += weight_value(job.type, row, k) * x[k];
        job.y[i * job.n_out + r] = job.x_inv_scale ? sum * job.x_inv_scale[i] : sum;
      }
    }
    return;
  }
  const ActivationRows& a = job.acts;
  const int64_t per_row = a.n_groups * kGroupBlocks;
  DecodedGroup decoded;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = job.weights + r * job.row_bytes;
    for (int64_t i = 0; i < job.m; ++i) job.y[i * job.n_out + r] = 0.0f;
    for (int64_t g = 0; g < a.n_groups; ++g) {
      decode_group(job.type, row, job.n_in, g, &decoded);
      for (int64_t i = 0; i < job.m; ++i) {
        const int64_t at = i * per_row + g * kGroupBlocks;
        job.y[i * job.n_out + r] +=
            dot_group(job.type, decoded, a.values + at * 32, a.scales + at, a.neg_sums + at,
                      a.neg_sums_lo + at, a.scaled_sums + at);
      }
    }
  }
}

}  // namespace specula

// The scalar twin of matmul_simd.cpp: the same decoding and the same exact
// integer sums, in plain loops. Tests compare every SIMD target with it.

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

RowScratch& thread_row_scratch(int64_t n_in) {
  struct Storage {
    AlignedBuffer<int16_t> values;
    AlignedBuffer<float> group_scales;
    AlignedBuffer<float> offsets;
    RowScratch view;
  };
  thread_local Storage storage;
  if (storage.view.n_in < n_in) {
    // Rounded up so that a few similar sizes do not each reallocate.
    const int64_t capacity = (n_in + 1023) / 1024 * 1024;
    storage.values.resize(static_cast<size_t>(kMaxDecodedRows * capacity));
    storage.group_scales.resize(static_cast<size_t>(kMaxDecodedRows * capacity / 32));
    storage.offsets.resize(static_cast<size_t>(kMaxDecodedRows * capacity / 32));
    storage.view = RowScratch{storage.values.data(), storage.group_scales.data(),
                              storage.offsets.data(), capacity};
  }
  return storage.view;
}

void matmul_rows_scalar(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (!is_int_dot_type(job.type)) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const uint8_t* row = job.weights + r * job.row_bytes;
      for (int64_t i = 0; i < job.m; ++i) {
        const float* x = job.x + i * job.n_in;
        float sum = 0.0f;
        for (int64_t k = 0; k < job.n_in; ++k) sum += weight_value(job.type, row, k) * x[k];
        job.y[i * job.n_out + r] = sum;
      }
    }
    return;
  }
  RowScratch& scratch = thread_row_scratch(job.n_in);
  const int64_t n_groups = job.n_in / job.group;
  const int64_t n_blocks32 = job.n_in / 32;
  for (int64_t r = row_begin; r < row_end; ++r) {
    decode_row_int16(job.type, job.weights + r * job.row_bytes, job.n_in, scratch.values,
                     scratch.group_scales, scratch.offsets);
    for (int64_t i = 0; i < job.m; ++i) {
      const int16_t* xv = job.x_values + i * job.n_in;
      const float* xs = job.x_scales + i * n_groups;
      float sum = 0.0f;
      for (int64_t g = 0; g < n_groups; ++g) {
        int32_t isum = 0;
        for (int64_t k = g * job.group; k < (g + 1) * job.group; ++k)
          isum += scratch.values[k] * xv[k];
        sum += static_cast<float>(isum) * (scratch.group_scales[g] * xs[g]);
      }
      if (has_offsets(job.type)) {
        const float* xsum = job.x_sums + i * n_blocks32;
        for (int64_t j = 0; j < n_blocks32; ++j) sum += scratch.offsets[j] * xsum[j];
      }
      job.y[i * job.n_out + r] = sum;
    }
  }
}

}  // namespace specula

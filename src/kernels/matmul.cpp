#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"
#include "kernels/quantize.h"

namespace specula {
namespace {

// Weight rows are handed out in units of this many, the row tile of the
// SIMD kernels.
constexpr int64_t kRowAlign = 4;

// Quantized activations of the calling thread, reused across calls.
struct ActivationScratch {
  AlignedBuffer<int16_t> values;
  AlignedBuffer<float> scales;
  AlignedBuffer<float> sums;
};

MatmulJob make_job(const WeightMatrix& w, const float* x, int64_t m, float* y) {
  MatmulJob job;
  job.weights = static_cast<const uint8_t*>(w.data);
  job.type = w.type;
  job.n_in = w.n_in;
  job.n_out = w.n_out;
  job.row_bytes = w.row_bytes;
  job.m = m;
  job.y = y;
  job.x = x;
  if (is_int_dot_type(w.type)) {
    thread_local ActivationScratch scratch;
    const auto values = static_cast<size_t>(m * w.n_in);
    if (scratch.values.size() < values) {
      scratch.values.resize(values);
      scratch.scales.resize(values / 32);
      scratch.sums.resize(values / 32);
    }
    job.group = int_group_size(w.type);
    const int64_t n_groups = w.n_in / job.group;
    for (int64_t i = 0; i < m; ++i) {
      quantize_activation_row(x + i * w.n_in, w.n_in, job.group, scratch.values.data() + i * w.n_in,
                              scratch.scales.data() + i * n_groups,
                              scratch.sums.data() + i * (w.n_in / 32));
    }
    job.x_values = scratch.values.data();
    job.x_scales = scratch.scales.data();
    job.x_sums = scratch.sums.data();
  }
  return job;
}

void check_supported(const WeightMatrix& w) {
  if (!matmul_supports(w.type)) {
    fail("matmul: weight type ", dtype_name(w.type),
         " is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K); "
         "convert the model with `specula quantize`");
  }
}

}  // namespace

WeightMatrix make_weight_matrix(const void* data, DType type, int64_t n_in, int64_t n_out) {
  const auto row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_in));
  if (!row_bytes) {
    fail("a row of ", n_in, " values is not a whole number of ", dtype_name(type), " blocks");
  }
  return WeightMatrix{data, type, n_in, n_out, *row_bytes};
}

bool matmul_supports(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t m, float* y) {
  check_supported(w);
  std::vector<float> row(static_cast<size_t>(w.n_in));
  for (int64_t r = 0; r < w.n_out; ++r) {
    dequantize_row(w, r, row.data());
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * w.n_in;
      double sum = 0.0;
      for (int64_t k = 0; k < w.n_in; ++k)
        sum += static_cast<double>(row[static_cast<size_t>(k)]) * xi[k];
      y[i * w.n_out + r] = static_cast<float>(sum);
    }
  }
}

void matmul_scalar(const WeightMatrix& w, const float* x, int64_t m, float* y) {
  check_supported(w);
  const MatmulJob job = make_job(w, x, m, y);
  matmul_rows_scalar(job, 0, w.n_out);
}

void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool) {
  check_supported(w);
  if (m <= 0 || w.n_out <= 0) return;
  const MatmulJob job = make_job(w, x, m, y);
  const int64_t n_units = (w.n_out + kRowAlign - 1) / kRowAlign;
  const int64_t n_tasks = pool == nullptr ? 1 : std::min<int64_t>(pool->n_threads(), n_units);
  auto task = [&](int64_t t) {
    const int64_t begin = std::min(w.n_out, n_units * t / n_tasks * kRowAlign);
    const int64_t end = std::min(w.n_out, n_units * (t + 1) / n_tasks * kRowAlign);
    if (begin < end) matmul_rows_simd(job, begin, end);
  };
  if (n_tasks > 1) {
    pool->parallel_for(n_tasks, task);
  } else {
    task(0);
  }
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + row * w.row_bytes;
  if (!quantize_supports(w.type))
    fail("dequantize_row: weight type ", dtype_name(w.type), " is not supported");
  dequantize_values(w.type, data, w.n_in, out);
}

}  // namespace specula

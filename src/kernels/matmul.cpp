#include "kernels/matmul.h"

#include <algorithm>
#include <cassert>

#include "core/error.h"
#include "core/f16.h"

namespace specula {
namespace {

float dot_row(const WeightMatrix& w, const uint8_t* row, const float* x) {
  float sum = 0.0f;
  switch (w.type) {
    case DType::kF32: {
      const float* v = reinterpret_cast<const float*>(row);
      for (int64_t k = 0; k < w.n_in; ++k) sum += v[k] * x[k];
      break;
    }
    case DType::kF16: {
      const uint16_t* v = reinterpret_cast<const uint16_t*>(row);
      for (int64_t k = 0; k < w.n_in; ++k) sum += f16_to_f32(v[k]) * x[k];
      break;
    }
    case DType::kBF16: {
      const uint16_t* v = reinterpret_cast<const uint16_t*>(row);
      for (int64_t k = 0; k < w.n_in; ++k) sum += bf16_to_f32(v[k]) * x[k];
      break;
    }
    default:
      assert(false && "unsupported weight type");
  }
  return sum;
}

// Rows per task: enough work per wake-up, and each thread gets its own rows.
constexpr int64_t kRowsPerTask = 16;

}  // namespace

WeightMatrix make_weight_matrix(const void* data, DType type, int64_t n_in, int64_t n_out) {
  const auto row_bytes = dtype_row_bytes(type, static_cast<uint64_t>(n_in));
  if (!row_bytes) {
    fail("a row of ", n_in, " values is not a whole number of ", dtype_name(type), " blocks");
  }
  return WeightMatrix{data, type, n_in, n_out, *row_bytes};
}

bool matmul_supports(DType type) {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16;
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t m, float* y) {
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.n_out; ++r) {
    const uint8_t* row = base + r * w.row_bytes;
    for (int64_t i = 0; i < m; ++i) y[i * w.n_out + r] = dot_row(w, row, x + i * w.n_in);
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool) {
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const int64_t n_tasks = (w.n_out + kRowsPerTask - 1) / kRowsPerTask;
  auto task = [&](int64_t t) {
    const int64_t end = std::min(w.n_out, (t + 1) * kRowsPerTask);
    for (int64_t r = t * kRowsPerTask; r < end; ++r) {
      const uint8_t* row = base + r * w.row_bytes;
      for (int64_t i = 0; i < m; ++i) y[i * w.n_out + r] = dot_row(w, row, x + i * w.n_in);
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(n_tasks, task);
  } else {
    for (int64_t t = 0; t < n_tasks; ++t) task(t);
  }
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + row * w.row_bytes;
  switch (w.type) {
    case DType::kF32:
      std::copy_n(reinterpret_cast<const float*>(data), w.n_in, out);
      break;
    case DType::kF16:
      for (int64_t k = 0; k < w.n_in; ++k) out[k] = f16_to_f32(reinterpret_cast<const uint16_t*>(data)[k]);
      break;
    case DType::kBF16:
      for (int64_t k = 0; k < w.n_in; ++k) out[k] = bf16_to_f32(reinterpret_cast<const uint16_t*>(data)[k]);
      break;
    default:
      fail("dequantize_row: weight type ", dtype_name(w.type), " is not supported yet");
  }
}

}  // namespace specula

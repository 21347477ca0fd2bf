#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/f16.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"
#include "kernels/quantize.h"

namespace specula {
namespace {

// Weight rows are handed out in units of this many, the row tile of the
// SIMD kernels.
constexpr int64_t kRowAlign = 4;

// Below this many multiply-adds (m x n_in x n_out) a product runs on the
// calling thread: a few microseconds of work, about what waking the pool
// and meeting at its barrier costs. A draft-sized model (width 128-256) is
// made almost entirely of such products, and at 2 threads decoded slower
// than at 1. Which thread computes a row never changes its result, so this
// changes no output.
constexpr int64_t kMinParallelMultiplyAdds = int64_t{1} << 18;

// From this many activation values (m x n_in) on, the rows are prepared
// (quantized or rounded) on the pool, one task per row: serial, a prefill
// of 64 rows spent ~2-3% of a 2-thread matmul there (perf, kernels_bench
// MatmulFfn M:64) with the other threads waiting, a share that grows with
// the thread count. Below it (decode, short verifications) a wake-up costs
// about as much as the rows. Each row's bytes do not depend on the thread.
constexpr int64_t kMinParallelPrepareValues = int64_t{1} << 14;

// Calls prepare(i) for every activation row i in [0, m), on the pool when
// the rows are many values, else on the calling thread.
template <typename F>
void prepare_rows(int64_t m, int64_t n_in, ThreadPool* pool, const F& prepare) {
  if (pool != nullptr && pool->n_threads() > 1 && m > 1 && m * n_in >= kMinParallelPrepareValues) {
    pool->parallel_for(m, prepare);
    return;
  }
  for (int64_t i = 0; i < m; ++i) prepare(i);
}

// Prepared activations of the calling thread, reused across calls.
struct ActivationScratch {
  AlignedBuffer<int8_t> values;
  AlignedBuffer<float> scales;
  AlignedBuffer<int32_t> neg_sums;
  AlignedBuffer<int32_t> neg_sums_lo;
  AlignedBuffer<float> scaled_sums;
};

// F16 activations of the calling thread (uses_half_activations).
struct HalfActivationScratch {
  AlignedBuffer<uint16_t> half;
  AlignedBuffer<float> rounded;
  AlignedBuffer<float> inv_scales;
};

// BF16 activations of the calling thread (simd_bf16_dot).
struct Bf16ActivationScratch {
  AlignedBuffer<uint16_t> bf16;
  AlignedBuffer<float> rounded;
};

// `simd` picks the vectorized activation preparation (matmul) or the plain
// one (matmul_scalar); both write the same bytes. pool (or null) prepares
// long activation rows in parallel (prepare_rows).
MatmulJob make_job(const WeightMatrix& w, const float* x, int64_t m, float* y, bool simd,
                   ThreadPool* pool) {
  MatmulJob job;
  job.weights = static_cast<const uint8_t*>(w.data);
  job.packed = w.packed;
  job.type = w.type;
  job.n_in = w.n_in;
  job.n_out = w.n_out;
  job.row_bytes = w.row_bytes;
  job.m = m;
  job.y = y;
  job.x = x;
  job.decode_rows = simd ? simd_float_decode_rows() : 1;
  job.decode_blocked = job.decode_rows == 4 && w.row_bytes * static_cast<uint64_t>(w.n_out) >=
                                                   simd_float_decode_blocked_min_bytes();
  job.prefetch_next_row = simd_int_row_prefetch();
  if (w.type == DType::kBF16 && simd_bf16_dot()) {
    // Both the SIMD kernels and the scalar twin multiply by the rounded
    // values, so that they differ only in the order of their sums.
    thread_local Bf16ActivationScratch scratch;
    const auto values = static_cast<size_t>(m * w.n_in);
    if (scratch.bf16.size() < values) {
      scratch.bf16.resize(values);
      scratch.rounded.resize(values);
    }
    // Pointers, not `scratch` in the lambda: there a thread_local names
    // the running thread's own instance.
    uint16_t* bf16 = scratch.bf16.data();
    float* rounded = scratch.rounded.data();
    prepare_rows(m, w.n_in, pool, [&](int64_t i) {
      for (int64_t k = i * w.n_in; k < (i + 1) * w.n_in; ++k) {
        bf16[k] = f32_to_bf16(x[k]);
        rounded[k] = bf16_to_f32(bf16[k]);
      }
    });
    job.x = scratch.rounded.data();
    job.x_bf16 = scratch.bf16.data();
    job.bf16_dot_fma = simd && simd_bf16_dot_fma();
  } else if (uses_half_activations(w.type, w.n_in)) {
    thread_local HalfActivationScratch scratch;
    const auto values = static_cast<size_t>(m * w.n_in);
    if (scratch.half.size() < values) {
      scratch.half.resize(values);
      scratch.rounded.resize(values);
    }
    if (scratch.inv_scales.size() < static_cast<size_t>(m)) {
      scratch.inv_scales.resize(static_cast<size_t>(m));
    }
    auto prepare = simd ? half_activations_row_simd : half_activations_row;
    uint16_t* half = scratch.half.data();
    float* rounded = scratch.rounded.data();
    float* inv_scales = scratch.inv_scales.data();
    prepare_rows(m, w.n_in, pool, [&](int64_t i) {
      inv_scales[i] = prepare(x + i * w.n_in, w.n_in, half + i * w.n_in, rounded + i * w.n_in);
    });
    job.x = scratch.rounded.data();
    job.x_half = scratch.half.data();
    job.x_inv_scale = scratch.inv_scales.data();
  }
  if (is_int_dot_type(w.type)) {
    thread_local ActivationScratch scratch;
    const int64_t n_groups = groups_for(w.n_in);
    const auto blocks = static_cast<size_t>(m * n_groups * kGroupBlocks);
    if (scratch.scales.size() < blocks) {
      scratch.values.resize(blocks * 32);
      scratch.scales.resize(blocks);
      scratch.neg_sums.resize(blocks);
      scratch.neg_sums_lo.resize(blocks);
      scratch.scaled_sums.resize(blocks);
    }
    const int64_t per_row = n_groups * kGroupBlocks;
    auto prepare = simd ? prepare_activation_row_simd : prepare_activation_row;
    int8_t* values = scratch.values.data();
    float* scales = scratch.scales.data();
    int32_t* neg_sums = scratch.neg_sums.data();
    int32_t* neg_sums_lo = scratch.neg_sums_lo.data();
    float* scaled_sums = scratch.scaled_sums.data();
    prepare_rows(m, w.n_in, pool, [&](int64_t i) {
      prepare(x + i * w.n_in, w.n_in, values + i * per_row * 32, scales + i * per_row,
              neg_sums + i * per_row, neg_sums_lo + i * per_row, scaled_sums + i * per_row);
    });
    job.acts = ActivationRows{n_groups,
                              scratch.values.data(),
                              scratch.scales.data(),
                              scratch.neg_sums.data(),
                              scratch.neg_sums_lo.data(),
                              scratch.scaled_sums.data()};
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
  // The kernels read every type quantize_row writes, through the same block
  // layouts (quant_blocks.h), so one list serves both.
  return quantize_supports(type);
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
  const MatmulJob job = make_job(w, x, m, y, false, nullptr);
  matmul_rows_scalar(job, 0, w.n_out);
}

void matmul_shared_input(std::span<const WeightMatrix* const> ws, const float* x, int64_t m,
                         std::span<float* const> ys, ThreadPool* pool) {
  if (ws.size() != ys.size()) {
    fail("matmul_shared_input: ", ws.size(), " matrices but ", ys.size(), " outputs");
  }
  if (ws.empty() || m <= 0) return;
  // Activations prepared for ws[0] serve every matrix only when they are
  // the same bytes: the integer types all take the same 8-bit rows; float
  // types take their own (BF16, F16 rows) and must match exactly.
  bool shared = true;
  for (const WeightMatrix* w : ws) {
    check_supported(*w);
    if (w->n_in != ws[0]->n_in) {
      fail("matmul_shared_input: matrices of ", ws[0]->n_in, " and ", w->n_in,
           " inputs cannot share activation rows");
    }
    const bool both_int = is_int_dot_type(w->type) && is_int_dot_type(ws[0]->type);
    shared = shared && (both_int || w->type == ws[0]->type);
  }
  if (!shared) {
    for (size_t j = 0; j < ws.size(); ++j) matmul(*ws[j], x, m, ys[j], pool);
    return;
  }
  constexpr size_t kMaxMatrices = 4;
  if (ws.size() > kMaxMatrices) {
    fail("matmul_shared_input: at most ", kMaxMatrices, " matrices, got ", ws.size());
  }
  MatmulJob jobs[kMaxMatrices];
  jobs[0] = make_job(*ws[0], x, m, ys[0], true, pool);
  int64_t multiply_adds = 0;
  int64_t n_units = 0;
  for (size_t j = 0; j < ws.size(); ++j) {
    const WeightMatrix& w = *ws[j];
    if (j > 0) {
      jobs[j] = jobs[0];
      jobs[j].weights = static_cast<const uint8_t*>(w.data);
      jobs[j].packed = w.packed;
      jobs[j].type = w.type;
      jobs[j].n_out = w.n_out;
      jobs[j].row_bytes = w.row_bytes;
      jobs[j].y = ys[j];
    }
    multiply_adds += m * w.n_in * w.n_out;
    n_units = std::max(n_units, (w.n_out + kRowAlign - 1) / kRowAlign);
  }
  const bool small = multiply_adds < kMinParallelMultiplyAdds;
  const int64_t n_tasks =
      pool == nullptr || small ? 1 : std::clamp<int64_t>(n_units, 1, pool->n_threads());
  // Task t takes the same share of every matrix's rows.
  auto task = [&](int64_t t) {
    for (size_t j = 0; j < ws.size(); ++j) {
      const MatmulJob& job = jobs[j];
      const int64_t units = (job.n_out + kRowAlign - 1) / kRowAlign;
      const int64_t begin = std::min(job.n_out, units * t / n_tasks * kRowAlign);
      const int64_t end = std::min(job.n_out, units * (t + 1) / n_tasks * kRowAlign);
      if (begin >= end) continue;
      if (is_int_dot_type(job.type)) {
        matmul_int_rows_simd(job, begin, end);
      } else {
        matmul_rows_simd(job, begin, end);
      }
    }
  };
  if (n_tasks > 1) {
    pool->parallel_for(n_tasks, task);
  } else {
    task(0);
  }
}

void matmul(const WeightMatrix& w, const float* x, int64_t m, float* y, ThreadPool* pool) {
  const WeightMatrix* ws[] = {&w};
  float* ys[] = {y};
  matmul_shared_input(ws, x, m, ys, pool);
}

void dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  const uint8_t* data = static_cast<const uint8_t*>(w.data) + row * w.row_bytes;
  if (!quantize_supports(w.type))
    fail("dequantize_row: weight type ", dtype_name(w.type), " is not supported");
  dequantize_values(w.type, data, w.n_in, out);
}

}  // namespace specula

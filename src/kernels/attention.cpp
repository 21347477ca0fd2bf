#include "kernels/attention.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/f16.h"
#include "kernels/attention_kernels.h"

namespace specula {
namespace {

// Below this many multiply-adds (q.k and weighted V, all rows and heads) a
// call runs inline: ~2 us of SIMD work, about what waking the pool and
// waiting for it costs.
constexpr int64_t kMinParallelMultiplyAdds = int64_t{1} << 16;

void check_shape(const AttentionShape& shape) {
  assert(shape.n_head > 0 && shape.n_head_kv > 0 && shape.n_head % shape.n_head_kv == 0);
  if (shape.kv_type != DType::kF32 && shape.kv_type != DType::kF16) {
    fail("attention: keys and values of type ", dtype_name(shape.kv_type),
         "; the kernels read F32 and F16");
  }
}

// Element i of a key or value store of `type` (kF32 or kF16), as a float.
float kv_value(const void* store, DType type, int64_t i) {
  if (type == DType::kF16) return f16_to_f32(static_cast<const uint16_t*>(store)[i]);
  return static_cast<const float*>(store)[i];
}

}  // namespace

void attend_one_head_scalar(const AttentionShape& shape, const AttentionRow& row, int64_t head) {
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_dim = shape.n_head_kv * head_dim;
  const int64_t kv_head = head / (shape.n_head / shape.n_head_kv);
  const float* q = row.query + head * head_dim;
  float* out = row.out + head * head_dim;
  std::fill(out, out + head_dim, 0.0f);

  std::array<float, kAttentionKeysPerBlock> scores;
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;
  for (int64_t block_start = 0; block_start < row.n_keys; block_start += kAttentionKeysPerBlock) {
    const int64_t block_len = std::min(kAttentionKeysPerBlock, row.n_keys - block_start);
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < block_len; ++j) {
      const int64_t k = (block_start + j) * kv_dim + kv_head * head_dim;
      float dot = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * kv_value(row.keys, shape.kv_type, k + d);
      scores[static_cast<size_t>(j)] = dot * shape.scale;
      block_max = std::max(block_max, scores[static_cast<size_t>(j)]);
    }
    if (block_max > running_max) {
      // Rescale what was accumulated against the old maximum.
      const float correction = std::exp(running_max - block_max);
      running_sum *= correction;
      for (int64_t d = 0; d < head_dim; ++d) out[d] *= correction;
      running_max = block_max;
    }
    for (int64_t j = 0; j < block_len; ++j) {
      const float weight = std::exp(scores[static_cast<size_t>(j)] - running_max);
      running_sum += weight;
      const int64_t v = (block_start + j) * kv_dim + kv_head * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        out[d] += weight * kv_value(row.values, shape.kv_type, v + d);
      }
    }
  }
  const float inverse = 1.0f / running_sum;
  for (int64_t d = 0; d < head_dim; ++d) out[d] *= inverse;
}

void attention(const AttentionShape& shape, std::span<const AttentionRow> rows, ThreadPool* pool) {
  check_shape(shape);
  int64_t multiply_adds = 0;
  for (const AttentionRow& row : rows) multiply_adds += row.n_keys;
  multiply_adds *= 2 * shape.n_head * shape.head_dim;
  const bool parallel =
      pool != nullptr && pool->n_threads() > 1 && multiply_adds >= kMinParallelMultiplyAdds;
  // A task is a row and a run of query heads of one KV group: the whole
  // group (its keys read once), unless that leaves fewer than two tasks per
  // thread; then the groups are cut into shorter runs.
  const int64_t group = shape.n_head / shape.n_head_kv;
  const int64_t n_rows = static_cast<int64_t>(rows.size());
  int64_t runs_per_group = (group + kMaxAttentionHeadRun - 1) / kMaxAttentionHeadRun;
  if (parallel) {
    const int64_t wanted = 2 * pool->n_threads();
    const int64_t groups = n_rows * shape.n_head_kv;
    runs_per_group = std::max(runs_per_group, std::min(group, (wanted + groups - 1) / groups));
  }
  const int64_t runs_per_row = shape.n_head_kv * runs_per_group;
  auto task = [&](int64_t t) {
    const AttentionRow& row = rows[static_cast<size_t>(t / runs_per_row)];
    assert(row.n_keys >= 1);
    const int64_t run = t % runs_per_row;
    const int64_t first = (run / runs_per_group) * group;
    const int64_t part = run % runs_per_group;
    attend_heads_simd(shape, row, first + group * part / runs_per_group,
                      first + group * (part + 1) / runs_per_group);
  };
  const int64_t n_tasks = n_rows * runs_per_row;
  if (parallel) {
    pool->parallel_for(n_tasks, task);
  } else {
    for (int64_t t = 0; t < n_tasks; ++t) task(t);
  }
}

void attention_scalar(const AttentionShape& shape, std::span<const AttentionRow> rows) {
  check_shape(shape);
  for (const AttentionRow& row : rows) {
    assert(row.n_keys >= 1);
    for (int64_t head = 0; head < shape.n_head; ++head) attend_one_head_scalar(shape, row, head);
  }
}

}  // namespace specula

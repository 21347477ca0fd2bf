#include "kernels/attention.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>
#include <vector>

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
      // A chain of FMAs over the channels, as each SIMD lane computes it.
      float dot = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) {
        const int64_t k = key_store_index(kv_dim, block_start + j, kv_head * head_dim + d);
        dot = std::fma(q[d], kv_value(row.keys, shape.kv_type, k), dot);
      }
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

namespace {

// One task of attention(): rows [row_begin, row_end), over the same keys
// and values, and query heads [head_begin, head_end) of one KV group.
struct AttentionTask {
  int64_t row_begin, row_end, head_begin, head_end;
};

// Whether rows a and b read the same keys and values (rows of one sequence).
bool same_store(const AttentionRow& a, const AttentionRow& b) {
  return a.keys == b.keys && a.values == b.values;
}

// Calls f(begin, end) for runs of adjacent rows over the same store, each
// store's rows cut into equal runs of at most max_rows.
template <typename F>
void for_row_runs(std::span<const AttentionRow> rows, int64_t max_rows, const F& f) {
  const auto n = static_cast<int64_t>(rows.size());
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin + 1;
    while (end < n && same_store(rows[static_cast<size_t>(begin)], rows[static_cast<size_t>(end)]))
      ++end;
    const int64_t runs = (end - begin + max_rows - 1) / max_rows;
    for (int64_t r = 0; r < runs; ++r) {
      f(begin + (end - begin) * r / runs, begin + (end - begin) * (r + 1) / runs);
    }
    begin = end;
  }
}

}  // namespace

void attention(const AttentionShape& shape, std::span<const AttentionRow> rows, ThreadPool* pool) {
  check_shape(shape);
  int64_t multiply_adds = 0;
  for (const AttentionRow& row : rows) multiply_adds += row.n_keys;
  multiply_adds *= 2 * shape.n_head * shape.head_dim;
  const bool parallel =
      pool != nullptr && pool->n_threads() > 1 && multiply_adds >= kMinParallelMultiplyAdds;
  // A task is a run of query heads of one KV group for a run of rows over
  // the same keys (a sequence's rows in a batch: a verification, a prompt
  // chunk): it reads each block of keys and values once for all its (row,
  // head) pairs. As many rows and heads as a task takes, unless that
  // leaves fewer than two tasks per thread; then the rows, and after them
  // the groups, are cut into shorter runs.
  const int64_t group = shape.n_head / shape.n_head_kv;
  int64_t runs_per_group = (group + kMaxAttentionHeadRun - 1) / kMaxAttentionHeadRun;
  int64_t max_rows =
      std::max<int64_t>(1, kMaxAttentionHeadRun / ((group + runs_per_group - 1) / runs_per_group));
  const auto count_row_runs = [&] {
    int64_t runs = 0;
    for_row_runs(rows, max_rows, [&](int64_t, int64_t) { ++runs; });
    return runs;
  };
  if (parallel) {
    const int64_t wanted = 2 * pool->n_threads();
    while (max_rows > 1 && count_row_runs() * shape.n_head_kv * runs_per_group < wanted) {
      max_rows = (max_rows + 1) / 2;
    }
    const int64_t groups = count_row_runs() * shape.n_head_kv;
    runs_per_group = std::max(runs_per_group, std::min(group, (wanted + groups - 1) / groups));
  }
  // Reused from call to call; the workers reach it through this reference
  // (the name alone would be each worker's own thread_local).
  thread_local std::vector<AttentionTask> task_list;
  std::vector<AttentionTask>& tasks = task_list;
  tasks.clear();
  for_row_runs(rows, max_rows, [&](int64_t begin, int64_t end) {
    for (int64_t kv = 0; kv < shape.n_head_kv; ++kv) {
      for (int64_t part = 0; part < runs_per_group; ++part) {
        tasks.push_back({begin, end, kv * group + group * part / runs_per_group,
                         kv * group + group * (part + 1) / runs_per_group});
      }
    }
  });
  auto task = [&](int64_t t) {
    const AttentionTask& a = tasks[static_cast<size_t>(t)];
    assert((a.row_end - a.row_begin) * (a.head_end - a.head_begin) <= kMaxAttentionHeadRun);
    attend_heads_simd(shape,
                      rows.subspan(static_cast<size_t>(a.row_begin),
                                   static_cast<size_t>(a.row_end - a.row_begin)),
                      a.head_begin, a.head_end);
  };
  const auto n_tasks = static_cast<int64_t>(tasks.size());
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

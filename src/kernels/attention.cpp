#include "kernels/attention.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>

namespace specula {
namespace {

// Keys scored per block: the scores live on the stack, so a task needs no
// heap scratch however long the context is.
constexpr int64_t kKeysPerBlock = 64;

// One (row, query head): a single pass over the keys with a running maximum
// (online softmax), the output slice doubling as the accumulator.
void attend_one_head(const AttentionShape& shape, const AttentionRow& row, int64_t head) {
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_dim = shape.n_head_kv * head_dim;
  const int64_t kv_head = head / (shape.n_head / shape.n_head_kv);
  const float* q = row.query + head * head_dim;
  float* out = row.out + head * head_dim;
  std::fill(out, out + head_dim, 0.0f);

  std::array<float, kKeysPerBlock> scores;
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;
  for (int64_t block_start = 0; block_start < row.n_keys; block_start += kKeysPerBlock) {
    const int64_t block_len = std::min(kKeysPerBlock, row.n_keys - block_start);
    float block_max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < block_len; ++j) {
      const float* k = row.keys + (block_start + j) * kv_dim + kv_head * head_dim;
      float dot = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * k[d];
      scores[j] = dot * shape.scale;
      block_max = std::max(block_max, scores[j]);
    }
    if (block_max > running_max) {
      // Rescale what was accumulated against the old maximum.
      const float correction = std::exp(running_max - block_max);
      running_sum *= correction;
      for (int64_t d = 0; d < head_dim; ++d) out[d] *= correction;
      running_max = block_max;
    }
    for (int64_t j = 0; j < block_len; ++j) {
      const float weight = std::exp(scores[j] - running_max);
      running_sum += weight;
      const float* v = row.values + (block_start + j) * kv_dim + kv_head * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) out[d] += weight * v[d];
    }
  }
  const float inverse = 1.0f / running_sum;
  for (int64_t d = 0; d < head_dim; ++d) out[d] *= inverse;
}

}  // namespace

void attention(const AttentionShape& shape, std::span<const AttentionRow> rows, ThreadPool* pool) {
  assert(shape.n_head > 0 && shape.n_head_kv > 0 && shape.n_head % shape.n_head_kv == 0);
  const int64_t n_tasks = static_cast<int64_t>(rows.size()) * shape.n_head;
  auto task = [&](int64_t t) {
    const AttentionRow& row = rows[static_cast<size_t>(t / shape.n_head)];
    assert(row.n_keys >= 1);
    attend_one_head(shape, row, t % shape.n_head);
  };
  if (pool != nullptr) {
    pool->parallel_for(n_tasks, task);
  } else {
    for (int64_t t = 0; t < n_tasks; ++t) task(t);
  }
}

}  // namespace specula

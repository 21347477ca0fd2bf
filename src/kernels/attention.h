// Scaled dot-product attention of query rows over cached keys and values,
// with grouped-query heads (several query heads share one key/value head).
//
// Causal masking is expressed by n_keys: a query at position p of its
// sequence attends to key rows [0, p], so the caller passes n_keys = p + 1.
// Rows of one batch may belong to different sequences; each row carries its
// own keys and values, so one call (one thread-pool wake-up) covers a batch.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace specula {

struct AttentionShape {
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads; n_head % n_head_kv == 0
  int64_t head_dim = 0;   // values per head
  float scale = 0.0f;     // score multiplier, usually 1 / sqrt(head_dim)
  // Element type of the cached keys and values: kF32, or kF16 (IEEE
  // binary16, half the bytes; widened to float as they are read).
  DType kv_type = DType::kF32;
};

struct AttentionRow {
  const float* query = nullptr;  // n_head * head_dim
  // n_keys rows of n_head_kv * head_dim values of AttentionShape::kv_type,
  // contiguous; values in the same layout.
  const void* keys = nullptr;
  const void* values = nullptr;
  int64_t n_keys = 0;    // >= 1
  float* out = nullptr;  // n_head * head_dim
};

// For each row and query head h (key/value head h / (n_head / n_head_kv)):
// out = softmax(scale * K q) V, with SIMD code for the best instruction set
// of this CPU (attention_simd.cpp). The (row, head) pairs are spread over
// pool's threads when there is enough work to pay for the wake-up; pool may
// be null. Every (row, head) is computed by one thread in a fixed order, so
// results do not depend on the number of threads.
void attention(const AttentionShape& shape, std::span<const AttentionRow> rows, ThreadPool* pool);

// The scalar twin: the same online softmax in plain loops, single-threaded.
// Tests compare every SIMD target with it to float-rounding tolerance.
void attention_scalar(const AttentionShape& shape, std::span<const AttentionRow> rows);

}  // namespace specula

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

// Keys are stored in blocks of kKeyBlockPositions positions, channel by
// channel: block b holds, for each of the kv_dim = n_head_kv * head_dim
// channels, that channel's value at positions 16 b .. 16 b + 15. A vector
// then holds one channel of consecutive keys, and a score q.k is a chain
// of FMAs over the channels in a key's own lane: no horizontal sums, and
// the same order of operations on every path and for any batch. Values
// stay in rows (position-major), which the weighted sum reads.
inline constexpr int64_t kKeyBlockPositions = 16;

// Index of (position, channel) in a key store with kv_dim channels.
inline int64_t key_store_index(int64_t kv_dim, int64_t position, int64_t channel) {
  return (position / kKeyBlockPositions) * kKeyBlockPositions * kv_dim +
         channel * kKeyBlockPositions + position % kKeyBlockPositions;
}

// Elements of a key store for n_positions positions: whole blocks (the
// last block's unwritten positions are read but never used).
inline int64_t key_store_elements(int64_t kv_dim, int64_t n_positions) {
  return (n_positions + kKeyBlockPositions - 1) / kKeyBlockPositions * kKeyBlockPositions * kv_dim;
}

struct AttentionRow {
  const float* query = nullptr;  // n_head * head_dim
  // Keys for positions [0, n_keys): a key store (above) of at least
  // key_store_elements(kv_dim, n_keys) values of AttentionShape::kv_type;
  // values: n_keys rows of kv_dim values of that type, contiguous.
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

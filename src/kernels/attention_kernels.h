// The per-row kernels behind attention(): internal to src/kernels.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/attention.h"

namespace specula {

// Keys scored per block: the scores live on the stack, so a task needs no
// heap scratch however long the context is.
inline constexpr int64_t kAttentionKeysPerBlock = 64;

// out (row.out's slice of `head`) = softmax(scale * K q) V for one row and
// query head, by one pass over the keys with a running maximum (online
// softmax); the output slice doubles as the accumulator.
void attend_one_head_scalar(const AttentionShape& shape, const AttentionRow& row, int64_t head);

// The same for query heads [head_begin, head_end) of one KV group, of
// every row in `rows` (rows over the same keys and values: one sequence's
// rows of a batch; at most kMaxAttentionHeadRun (row, head) pairs in all),
// for the best SIMD target of this CPU (attention_simd.cpp): each pair's
// result is what it would be alone, and the task reads each block of keys
// and values once for all its pairs.
void attend_heads_simd(const AttentionShape& shape, std::span<const AttentionRow> rows,
                       int64_t head_begin, int64_t head_end);

// The most (row, head) pairs attend_heads_simd takes.
inline constexpr int64_t kMaxAttentionHeadRun = 64;

}  // namespace specula

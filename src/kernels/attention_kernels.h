// The per-(row, head) kernels behind attention(): internal to src/kernels.
#pragma once

#include <cstdint>

#include "kernels/attention.h"

namespace specula {

// Keys scored per block: the scores live on the stack, so a task needs no
// heap scratch however long the context is.
inline constexpr int64_t kAttentionKeysPerBlock = 64;

// out (row.out's slice of `head`) = softmax(scale * K q) V for one row and
// query head, by one pass over the keys with a running maximum (online
// softmax); the output slice doubles as the accumulator.
void attend_one_head_scalar(const AttentionShape& shape, const AttentionRow& row, int64_t head);

// The same for the best SIMD target of this CPU (attention_simd.cpp).
void attend_one_head_simd(const AttentionShape& shape, const AttentionRow& row, int64_t head);

}  // namespace specula

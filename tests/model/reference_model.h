// An independent, plain scalar forward pass of a llama / qwen2 GGUF model in
// double precision, written from the architecture's definition with its own
// loops (no engine ops, matmul or attention). It processes one sequence
// token by token with full recomputation of nothing but the obvious, so it
// is slow and only for tiny test models.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace specula::test {

// Returns n_vocab logits for every position of `tokens` (row-major).
// half_kv: every cached key and value is rounded to the nearest IEEE half
// (ties to even), as a model with an F16 KV cache stores them.
std::vector<double> reference_logits(const std::string& gguf_path,
                                     const std::vector<int32_t>& tokens, bool half_kv = false);

}  // namespace specula::test

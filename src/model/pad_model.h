// A memory-bound copy of a trained model that computes the same function:
// more layers and a wider feed-forward network, all of it read by every
// forward pass, none of it changing the output. Benchmarks use it to see
// what users with large targets see, with a trained model (and its trained
// draft) instead of random weights. `specula make-model --pad-from` is the
// command-line front end.
//
// Why the function is unchanged:
//  - Extra blocks (appended after the target's last one) are copies of the
//    target's blocks, except attn_output.weight and ffn_down.weight, which
//    are zero. Such a block still normalizes the residual stream and runs
//    attention and the FFN on real weights, but what it adds to the stream
//    is exactly 0, and x + 0 == x in floating point.
//  - A widened FFN (n_ff -> F) gets F - n_ff more rows in ffn_gate and
//    ffn_up (copies of the existing rows) and F - n_ff more columns of zeros
//    in ffn_down, so the extra hidden units are multiplied by 0.
// Products by zero and sums of exact zeros are exact; the one thing that
// may differ is the order in which a kernel sums the down projection's
// longer rows (its blocking over n_ff), which can move logits in the last
// bits. The tests check that greedy output is identical token for token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "model/make_model.h"

namespace specula {

struct PadModelOptions {
  int32_t n_layer = 0;  // >= the target's layers; 0: the target's
  int32_t n_ff = 0;     // >= the target's feed-forward width; 0: the target's
  // The matrices' type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K):
  // matrices of another type are converted (dequantized, then encoded as
  // `specula quantize` does), so the copy computes the function of the
  // target converted to this type. nullopt: every tensor keeps its type
  // and bytes, and the copy computes the target's own function.
  std::optional<DType> type;
};

// Bytes of tensor data the padded model will hold (about its file size).
// Checks the target and the options first, like write_padded_model.
uint64_t padded_model_bytes(const std::string& target_path, const PadModelOptions& options);

// Writes the padded copy of `target_path` to `out_path`: the target's
// metadata (tokenizer included) with block_count, feed_forward_length,
// general.name and (with a type) general.file_type changed; its embeddings,
// output norm and output matrix; its blocks widened; the extra blocks.
// Throws Error naming the bad option or file before anything is written.
void write_padded_model(const std::string& target_path, const PadModelOptions& options,
                        const std::string& out_path, const MakeModelProgress& progress = nullptr);

}  // namespace specula

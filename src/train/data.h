// Training data: text files tokenized with the model's vocabulary into one
// stream of token ids, a held-out part for evaluation, and random windows
// drawn from the rest with the trainer's seeded RNG.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "learn/random.h"
#include "tokenizer/tokenizer.h"

namespace specula {

struct CorpusOptions {
  std::vector<std::string> train_files;
  // Held out whole. When empty, the last eval_fraction of the token stream
  // of train_files is held out instead (files are concatenated in the order
  // given, so that is the tail of the last files).
  std::vector<std::string> eval_files;
  double eval_fraction = 0.05;
};

struct TokenCorpus {
  std::vector<int32_t> train;
  std::vector<int32_t> eval;
  uint64_t text_bytes = 0;
  // FNV-1a over both streams: a resumed run checks it sees the same data.
  uint64_t fingerprint() const;
};

// Each file becomes its tokens with the vocabulary's special tokens (BOS
// when it adds one) followed by EOS (when it has one), so documents are
// separated in the stream. Throws Error naming a file that cannot be read,
// or when the training part is empty.
TokenCorpus tokenize_corpus(const Tokenizer& tokenizer, const CorpusOptions& options);

// Draws `batch` windows of seq_len + 1 consecutive tokens, each starting at
// a uniform position of `tokens` (one rng.below per window): inputs get the
// first seq_len tokens of each window, targets the last seq_len (each
// resized to batch * seq_len). Throws Error when tokens are too few.
void sample_windows(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len,
                    SplitMix64& rng, std::vector<int32_t>& inputs, std::vector<int32_t>& targets);

// Consecutive non-overlapping windows of seq_len + 1 tokens from the start
// of `tokens`, at most max_tokens tokens of them (at least one window when
// there are enough tokens): the fixed evaluation set. Returns the window
// count; window w starts at w * (seq_len + 1).
int64_t evaluation_windows(std::span<const int32_t> tokens, int64_t seq_len, int64_t max_tokens);

}  // namespace specula

// Learns a byte-level BPE vocabulary from text, the way GPT-2's was made:
// pre-tokenize with one of the regex lists of pretokenizer.h, count the
// distinct words, then repeatedly merge the most frequent adjacent pair of
// tokens. The result loads as tokenizer.ggml.model = "gpt2" in specula and
// in other GGUF tools.
//
// Layout of the trained vocabulary (the same as make-model's byte vocab):
// ids 0..255 are the bytes (GPT-2's byte-to-character spelling), 256 is
// "<s>" (BOS) and 257 "</s>" (EOS), both control tokens, and the merges
// follow from 258 in the order learned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf_writer.h"
#include "tokenizer/pretokenizer.h"

namespace specula {

struct BpeTrainerOptions {
  size_t vocab_size = 8192;     // total tokens, bytes and specials included (>= 258)
  std::string pre = "default";  // tokenizer.ggml.pre to split with and record
  uint64_t min_pair_count = 2;  // stop when the best pair occurs less often
};

struct TrainedBpe {
  std::string pre;
  std::vector<std::string> tokens;   // GGUF spelling (bytes as GPT-2 characters)
  std::vector<int32_t> token_types;  // 1 normal, 3 control
  std::vector<std::string> merges;   // "left right", in rank order
  int32_t bos = 256;
  int32_t eos = 257;

  // Adds the tokenizer.ggml.* keys (model gpt2, pre, tokens, token_type,
  // merges, bos/eos ids, add_bos_token) to `writer`.
  void add_to_gguf(GgufWriter& writer) const;
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Pre-tokenizes `text` and counts its words. Call once per document or
  // chunk (cut chunks at line ends: a word is never split across calls).
  void add_text(std::string_view text);
  size_t distinct_words() const { return word_counts_.size(); }
  uint64_t total_bytes() const { return total_bytes_; }

  // Learns the merges. `progress(tokens_learned, tokens_wanted)` is called
  // now and then (may be empty). Stops early when no pair occurs
  // min_pair_count times. Deterministic: the most frequent pair wins,
  // ties go to the smaller (left id, right id).
  TrainedBpe train(const std::function<void(size_t, size_t)>& progress = {}) const;

 private:
  BpeTrainerOptions options_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unordered_map<std::string, uint64_t> word_counts_;
  uint64_t total_bytes_ = 0;
};

}  // namespace specula

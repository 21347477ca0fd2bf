// The vocabulary part of a GGUF tokenizer: token texts, scores, types, the
// special ids and flags, read from `tokenizer.ggml.*` and checked. Shared by
// the SPM and byte-level BPE tokenizers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/gguf_reader.h"

namespace specula {

// Values of tokenizer.ggml.token_type (llama.cpp's numbering).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct Vocab {
  Vocab() = default;
  // `ids` views the strings in `texts`: moving keeps them in place, copying
  // would not.
  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  std::string model;  // tokenizer.ggml.model: "llama" (SPM) or "gpt2" (BPE)
  std::string pre;    // tokenizer.ggml.pre ("default" when absent)
  std::vector<std::string> texts;
  std::vector<float> scores;  // empty scores read as 0
  std::vector<TokenType> types;
  // text -> id (the lowest id when a text repeats). Keys view `texts`.
  std::unordered_map<std::string_view, int32_t> ids;

  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prefix text with one space
  // Ids of the tokens that can be matched in text as a whole: control and
  // user-defined tokens, longest text first. Control ones only when asked.
  std::vector<int32_t> special_tokens;
  // End-of-generation ids (eos, eot, eom and the chat end markers).
  std::vector<int32_t> end_of_generation;

  int32_t size() const { return static_cast<int32_t>(texts.size()); }
  int32_t find(std::string_view text) const {
    const auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }
  TokenType type(int32_t id) const { return types[static_cast<size_t>(id)]; }
};

// Reads and validates the vocabulary of `file`. Throws Error naming the file
// and the key for missing or malformed required fields; warns (and disables
// the id) for special ids out of range; warns and ignores a token_type or
// scores array of the wrong length.
Vocab load_vocab(const GgufReader& file);

}  // namespace specula

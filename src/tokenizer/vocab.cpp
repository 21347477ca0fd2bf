#include "tokenizer/vocab.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/log.h"

namespace specula {
namespace {

// Chat-turn end markers that end generation when present as special tokens
// (the models' own conventions; eos alone misses e.g. Phi-3's "<|end|>").
constexpr std::array<std::string_view, 9> kEndMarkers = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",    "<end_of_turn>",         "<|endoftext|>",
    "<|EOT|>",    "<EOT>",      "<|eom_id|>", "<｜end▁of▁sentence｜>",
};

int32_t read_special_id(const GgufReader& file, std::string_view key, int32_t n_vocab) {
  const std::optional<int64_t> value = file.get_int(key);
  if (!value) return -1;
  if (*value < 0 || *value >= n_vocab) {
    log_warn(file.path(), ": ", key, " = ", *value, " is outside the vocabulary of ", n_vocab,
             " tokens; ignoring it");
    return -1;
  }
  return static_cast<int32_t>(*value);
}

}  // namespace

Vocab load_vocab(const GgufReader& file) {
  Vocab vocab;
  const std::optional<std::string_view> model = file.get_string("tokenizer.ggml.model");
  if (!model) {
    fail(file.path(),
         ": no tokenizer (key tokenizer.ggml.model is missing); use a GGUF file that "
         "includes its vocabulary");
  }
  vocab.model = std::string(*model);
  vocab.pre = std::string(file.get_string("tokenizer.ggml.pre").value_or("default"));

  std::optional<std::vector<std::string_view>> texts =
      file.get_string_array("tokenizer.ggml.tokens");
  if (!texts || texts->empty()) {
    fail(file.path(), ": tokenizer.ggml.tokens is missing or empty");
  }
  if (texts->size() > static_cast<size_t>(INT32_MAX)) {
    fail(file.path(), ": tokenizer.ggml.tokens has ", texts->size(),
         " entries, more than int32 ids allow");
  }
  const size_t n = texts->size();
  const auto n_vocab = static_cast<int32_t>(n);
  vocab.texts.reserve(n);
  for (std::string_view text : *texts) vocab.texts.emplace_back(text);

  vocab.scores.assign(n, 0.0f);
  if (std::optional<std::vector<float>> scores = file.get_float_array("tokenizer.ggml.scores")) {
    if (scores->size() == n) {
      vocab.scores = std::move(*scores);
    } else {
      log_warn(file.path(), ": tokenizer.ggml.scores has ", scores->size(), " entries for ", n,
               " tokens; ignoring the scores");
    }
  }
  vocab.types.assign(n, TokenType::kNormal);
  if (std::optional<std::vector<int64_t>> types = file.get_int_array("tokenizer.ggml.token_type")) {
    if (types->size() == n) {
      for (size_t i = 0; i < n; ++i) {
        const int64_t t = (*types)[i];
        vocab.types[i] = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kNormal;
      }
    } else {
      log_warn(file.path(), ": tokenizer.ggml.token_type has ", types->size(), " entries for ", n,
               " tokens; treating every token as normal");
    }
  }

  vocab.ids.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) vocab.ids.emplace(vocab.texts[i], static_cast<int32_t>(i));

  vocab.bos = read_special_id(file, "tokenizer.ggml.bos_token_id", n_vocab);
  vocab.eos = read_special_id(file, "tokenizer.ggml.eos_token_id", n_vocab);
  vocab.unk = read_special_id(file, "tokenizer.ggml.unknown_token_id", n_vocab);
  vocab.pad = read_special_id(file, "tokenizer.ggml.padding_token_id", n_vocab);
  vocab.eot = read_special_id(file, "tokenizer.ggml.eot_token_id", n_vocab);
  vocab.eom = read_special_id(file, "tokenizer.ggml.eom_token_id", n_vocab);

  const bool spm = vocab.model == "llama";
  vocab.add_bos = file.get_bool("tokenizer.ggml.add_bos_token").value_or(spm);
  vocab.add_eos = file.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
  vocab.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix").value_or(spm);
  if (vocab.add_bos && vocab.bos < 0) {
    log_warn(file.path(), ": the vocabulary asks for a BOS token but has none; not adding it");
    vocab.add_bos = false;
  }
  if (vocab.add_eos && vocab.eos < 0) {
    log_warn(file.path(), ": the vocabulary asks for an EOS token but has none; not adding it");
    vocab.add_eos = false;
  }

  for (int32_t id = 0; id < n_vocab; ++id) {
    const TokenType type = vocab.type(id);
    if ((type == TokenType::kControl || type == TokenType::kUserDefined) &&
        !vocab.texts[static_cast<size_t>(id)].empty()) {
      vocab.special_tokens.push_back(id);
    }
  }
  // Longest first, so "<|end|>" never cuts into "<|endoftext|>"; ties by id.
  std::stable_sort(vocab.special_tokens.begin(), vocab.special_tokens.end(),
                   [&](int32_t a, int32_t b) {
                     return vocab.texts[static_cast<size_t>(a)].size() >
                            vocab.texts[static_cast<size_t>(b)].size();
                   });

  for (int32_t id : {vocab.eos, vocab.eot, vocab.eom}) {
    if (id >= 0) vocab.end_of_generation.push_back(id);
  }
  for (int32_t id : vocab.special_tokens) {
    const std::string& text = vocab.texts[static_cast<size_t>(id)];
    if (std::find(kEndMarkers.begin(), kEndMarkers.end(), text) != kEndMarkers.end()) {
      vocab.end_of_generation.push_back(id);
    }
  }
  std::sort(vocab.end_of_generation.begin(), vocab.end_of_generation.end());
  vocab.end_of_generation.erase(
      std::unique(vocab.end_of_generation.begin(), vocab.end_of_generation.end()),
      vocab.end_of_generation.end());
  return vocab;
}

}  // namespace specula

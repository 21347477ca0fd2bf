#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab_tokenizer.h"

namespace specula {

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufReader& file) {
  Vocab vocab = load_vocab(file);
  if (vocab.model == "llama") return make_spm_tokenizer(std::move(vocab));
  if (vocab.model == "gpt2") {
    std::vector<std::string_view> merges =
        file.get_string_array("tokenizer.ggml.merges").value_or(std::vector<std::string_view>{});
    if (!file.find("tokenizer.ggml.merges")) {
      fail(file.path(),
           ": a gpt2 (byte-level BPE) vocabulary needs tokenizer.ggml.merges, which is "
           "missing; write an empty array for a byte-only vocabulary");
    }
    try {
      return make_bpe_tokenizer(std::move(vocab), merges, file.path());
    } catch (const Error& e) {
      fail(file.path(), ": ", e.what());
    }
  }
  fail(file.path(), ": unsupported tokenizer.ggml.model = \"", vocab.model,
       "\"; supported: llama (SentencePiece BPE), gpt2 (byte-level BPE)");
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  // The space SPM put in front of the text comes off its first token, after
  // a BOS or not (as SentencePiece and llama.cpp decode).
  const size_t first = !ids.empty() && bos() >= 0 && ids[0] == bos() ? 1 : 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string piece = token_to_piece(ids[i]);
    if (add_space_prefix() && i == first && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    text += piece;
  }
  return text;
}

std::string StreamingDecoder::push(int32_t id) {
  std::string piece = tokenizer_.token_to_piece(id);
  if (n_pushed_ == 0) {
    strip_next_space_ =
        tokenizer_.add_space_prefix() && tokenizer_.bos() >= 0 && id == tokenizer_.bos();
  } else if (n_pushed_ == 1 && strip_next_space_) {
    if (!piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_next_space_ = false;
  }
  ++n_pushed_;
  pending_ += piece;
  const size_t stable = utf8::stable_prefix_length(pending_);
  if (stable == 0) return {};
  std::string out = utf8::sanitize(std::string_view(pending_).substr(0, stable));
  pending_.erase(0, stable);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out = utf8::sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace specula

// What the SPM and byte-level BPE tokenizers share: the vocabulary, the
// decoded piece of every token, the special ids, and cutting text at special
// tokens before the model-specific encoding runs on the plain stretches.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace specula {

// A stretch of the input: plain text [begin, begin + size) or, when
// token >= 0, a special token matched in the text.
struct TextFragment {
  int32_t token = -1;
  size_t begin = 0;
  size_t size = 0;
};

class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}

  int32_t n_vocab() const override { return vocab_.size(); }
  int32_t bos() const override { return vocab_.bos; }
  int32_t eos() const override { return vocab_.eos; }
  bool add_bos() const override { return vocab_.add_bos; }
  bool is_end_of_generation(int32_t id) const override;
  std::string token_to_piece(int32_t id) const override;
  std::string token_text(int32_t id) const override;
  bool is_special(int32_t id) const override;
  bool add_space_prefix() const override { return vocab_.add_space_prefix; }
  std::string_view model_name() const override { return vocab_.model; }
  std::string_view pre_tokenizer_name() const override { return vocab_.pre; }

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override;

  const Vocab& vocab() const { return vocab_; }

 protected:
  // Encodes one plain stretch of text (no special tokens in it), appending
  // ids. `after_special` is true at the start of the text and right after a
  // special token (where SPM adds its leading space).
  virtual void encode_plain(std::string_view text, bool after_special,
                            std::vector<int32_t>& out) const = 0;
  void check_id(int32_t id) const;

  Vocab vocab_;
  std::vector<std::string> pieces_;  // decoded bytes of each token
};

// Cuts `text` at the special tokens of `vocab` (user-defined ones always,
// control ones only when parse_special), leftmost match first and the
// longest token at a position (the Hugging Face added-token rule).
std::vector<TextFragment> split_special_tokens(const Vocab& vocab, std::string_view text,
                                               bool parse_special);

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab,
                                              const std::vector<std::string_view>& merges,
                                              const std::string& source);

}  // namespace specula

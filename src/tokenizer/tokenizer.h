// Text <-> token ids for a model, built from its GGUF tokenizer metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_reader.h"

namespace specula {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // The tokenizer a GGUF file describes. Throws Error naming the file and
  // the unsupported or malformed field (e.g. an unknown tokenizer.ggml.model).
  static std::unique_ptr<Tokenizer> from_gguf(const GgufReader& file);

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos() const = 0;  // -1 when none
  virtual int32_t eos() const = 0;  // -1 when none
  virtual bool add_bos() const = 0;
  // True for end-of-generation ids (eos, eot, ...).
  virtual bool is_end_of_generation(int32_t id) const = 0;

  // add_special: add BOS/EOS as the vocabulary asks. parse_special: text like
  // "<|endoftext|>" becomes its special token instead of plain text.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  // Bytes of token `id` as it appears in decoded text (may be part of a
  // UTF-8 character). Throws Error for ids outside the vocabulary.
  virtual std::string token_to_piece(int32_t id) const = 0;
  // The text of `ids` read as a whole text, piece after piece. When the
  // vocabulary adds a leading space to text (SPM), the first token (after a
  // leading BOS, if any) loses one leading space, so decode(encode(text,
  // add_special, ...)) == text with or without BOS, as SentencePiece and
  // llama.cpp decode. (Ids that continue earlier text, such as generated
  // tokens, go through StreamingDecoder, which keeps their spaces.) The
  // result may hold invalid UTF-8 when the ids split a character.
  std::string decode(std::span<const int32_t> ids) const;

  // Optional details (defaults suit a minimal tokenizer, e.g. a test fake).
  // The token's text as stored in the vocabulary (e.g. "<s>", "\u0120the").
  virtual std::string token_text(int32_t id) const { return token_to_piece(id); }
  // True for control and user-defined tokens (matched as a whole in text).
  virtual bool is_special(int32_t /*id*/) const { return false; }
  // True when encoding prefixes text with a space (SPM's convention).
  virtual bool add_space_prefix() const { return false; }
  virtual std::string_view model_name() const { return "unknown"; }
  virtual std::string_view pre_tokenizer_name() const { return ""; }
};

// Streams decoded text without ever emitting half a UTF-8 character: bytes
// of an incomplete character are held until the next token completes it.
// Ids that start with BOS are a whole text (as decode); others continue
// earlier text (generated tokens after a prompt) and keep every space.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Text that became complete with this token (possibly empty). Always valid
  // UTF-8: ill-formed bytes come out as U+FFFD once no later byte can
  // complete them. Pushing ids one by one and then flush() yields exactly
  // utf8 sanitize of the pieces (decode(all ids) when they start with BOS).
  // Throws Error for ids outside the vocabulary.
  std::string push(int32_t id);
  // Whatever is still held (invalid bytes as U+FFFD) at the end.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  size_t n_pushed_ = 0;            // ids pushed so far
  bool strip_next_space_ = false;  // the id after a leading BOS (see decode)
};

}  // namespace specula

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
  std::string decode(std::span<const int32_t> ids) const;
};

// Streams decoded text without ever emitting half a UTF-8 character: bytes
// of an incomplete character are held until the next token completes it.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held (invalid bytes as U+FFFD) at the end.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

}  // namespace specula

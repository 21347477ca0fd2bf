// Pre-tokenizers of the byte-level BPE vocabularies: the regex lists that
// cut text into words before merging, chosen by tokenizer.ggml.pre.
//
// A list is applied the way Hugging Face's Sequence of "isolated" splits and
// llama.cpp do it: the first regex cuts the text into matches and the gaps
// between them (both kept as pieces), the next regex cuts each of those
// pieces on its own (so lookaheads see the end of the piece), and so on.
// Regexes run in PCRE2 with Unicode properties (PCRE2_UTF | PCRE2_UCP);
// invalid UTF-8 never matches and so ends up in gap pieces, which keeps
// every byte of the input in exactly one piece.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace specula {

// A piece of the text: [begin, begin + size).
struct TextSpan {
  size_t begin = 0;
  size_t size = 0;
};

class PreTokenizer {
 public:
  // The pre-tokenizer `name` (a tokenizer.ggml.pre value). Throws Error
  // naming it, and the supported names, when it is unknown.
  static std::unique_ptr<PreTokenizer> for_name(std::string_view name);
  // Names accepted by for_name, for messages and docs.
  static std::vector<std::string> supported_names();

  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  const std::string& name() const { return name_; }
  // Cuts `text` into pieces that cover it exactly, in order. Thread-safe.
  std::vector<TextSpan> split(std::string_view text) const;

 private:
  struct Regex;
  PreTokenizer() = default;
  std::string name_;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace specula

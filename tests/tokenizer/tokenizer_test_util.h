// Helpers for the tokenizer tests: tiny vocabularies written as GGUF files,
// the real vocabularies of tests/data/vocab, and random text.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace specula::testing_util {

// A tokenizer plus the reader it was loaded from.
struct LoadedTokenizer {
  std::unique_ptr<GgufReader> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

inline LoadedTokenizer load_tokenizer(const std::string& path) {
  LoadedTokenizer loaded;
  loaded.file = GgufReader::open(path);
  loaded.tokenizer = Tokenizer::from_gguf(*loaded.file);
  return loaded;
}

inline std::string shared_vocab(const std::string& name) {
  return std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + name + ".gguf";
}

inline std::string write_temp_gguf(const GgufWriter& writer, const std::string& name) {
  const std::string path = ::testing::TempDir() + "specula_tok_" + name + ".gguf";
  writer.write(path);
  return path;
}

// The 256 byte tokens in GPT-2's byte-to-unicode order (id b = byte b),
// spelled out here independently of the tokenizer's own table.
inline std::vector<std::string> gpt2_byte_tokens() {
  std::vector<int> printable;
  for (int b = 0; b < 256; ++b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) printable.push_back(b);
  }
  std::vector<std::string> tokens(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool is_printable = std::find(printable.begin(), printable.end(), b) != printable.end();
    const unsigned cp =
        is_printable ? static_cast<unsigned>(b) : 256u + static_cast<unsigned>(extra++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    tokens[static_cast<size_t>(b)] = s;
  }
  return tokens;
}

// The vocabulary `specula make-model` writes: bytes, <s> = 256 (BOS),
// </s> = 257 (EOS), no merges, then `n_extra` user-defined <|extra_N|>.
inline GgufWriter make_model_vocab_writer(int n_extra) {
  std::vector<std::string> tokens = gpt2_byte_tokens();
  std::vector<int32_t> types(256, 1);
  tokens.push_back("<s>");
  tokens.push_back("</s>");
  types.push_back(3);
  types.push_back(3);
  for (int i = 0; i < n_extra; ++i) {
    tokens.push_back("<|extra_" + std::to_string(i) + "|>");
    types.push_back(4);
  }
  GgufWriter writer;
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "default");
  writer.set_string_array("tokenizer.ggml.tokens", tokens);
  writer.set_int32_array("tokenizer.ggml.token_type", types);
  writer.set_string_array("tokenizer.ggml.merges", {});
  writer.set_uint32("tokenizer.ggml.bos_token_id", 256);
  writer.set_uint32("tokenizer.ggml.eos_token_id", 257);
  writer.set_bool("tokenizer.ggml.add_bos_token", true);
  return writer;
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Random valid UTF-8 mixing the scripts and symbols tokenizers trip on:
// ASCII words and digits, whitespace runs, Latin-1, Cyrillic, CJK, Hangul,
// combining marks, emoji, rare planes. U+2581 (SPM's space marker) is left
// out: SPM reads it as a space by design.
// avoid_planes_4_to_7: StarCoder has no token for byte 0xF1, which leads
// the UTF-8 of U+40000..U+7FFFF.
inline std::string random_unicode(std::mt19937& rng, size_t n_chars,
                                  bool avoid_planes_4_to_7 = false) {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},        {0x20, 0x20},     {0x09, 0x0D},     {0x30, 0x39},     {0xA0, 0xFF},
      {0x400, 0x4FF},      {0x300, 0x36F},   {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F600, 0x1F64F},
      {0x10000, 0x10FFFF}, {0x2000, 0x206F}, {0xFE00, 0xFEFF}, {0x61, 0x7A},
  };
  std::string out;
  for (size_t i = 0; i < n_chars; ++i) {
    const auto& r = ranges[std::uniform_int_distribution<size_t>(0, ranges.size() - 1)(rng)];
    uint32_t cp = std::uniform_int_distribution<uint32_t>(r.first, r.second)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x41;
    if (cp == 0x2581) cp = 0x42;
    if (avoid_planes_4_to_7 && cp >= 0x40000 && cp < 0x80000) cp = 0x43;
    append_utf8(out, cp);
  }
  return out;
}

inline std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
  return out;
}

}  // namespace specula::testing_util

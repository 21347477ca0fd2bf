#include "tokenizer/vocab_tokenizer.h"

#include <algorithm>
#include <array>

#include "core/error.h"

namespace specula {

void VocabTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_.size()) {
    fail("token id ", id, " is outside the vocabulary (0..", vocab_.size() - 1, ")");
  }
}

bool VocabTokenizer::is_end_of_generation(int32_t id) const {
  return std::binary_search(vocab_.end_of_generation.begin(), vocab_.end_of_generation.end(), id);
}

std::string VocabTokenizer::token_to_piece(int32_t id) const {
  check_id(id);
  return pieces_[static_cast<size_t>(id)];
}

std::string VocabTokenizer::token_text(int32_t id) const {
  check_id(id);
  return vocab_.texts[static_cast<size_t>(id)];
}

bool VocabTokenizer::is_special(int32_t id) const {
  check_id(id);
  const TokenType type = vocab_.type(id);
  return type == TokenType::kControl || type == TokenType::kUserDefined;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  bool after_special = true;
  for (const TextFragment& fragment : split_special_tokens(vocab_, text, parse_special)) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
    } else {
      encode_plain(text.substr(fragment.begin, fragment.size), after_special, out);
      after_special = false;
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::vector<TextFragment> split_special_tokens(const Vocab& vocab, std::string_view text,
                                               bool parse_special) {
  // Candidates by first byte, longest first (vocab.special_tokens is sorted
  // that way), so each position costs one table lookup unless it can start
  // a special token.
  std::array<std::vector<int32_t>, 256> by_first_byte;
  bool any = false;
  for (int32_t id : vocab.special_tokens) {
    if (!parse_special && vocab.type(id) == TokenType::kControl) continue;
    const std::string& s = vocab.texts[static_cast<size_t>(id)];
    by_first_byte[static_cast<uint8_t>(s[0])].push_back(id);
    any = true;
  }
  std::vector<TextFragment> fragments;
  if (!any) {
    if (!text.empty()) fragments.push_back({-1, 0, text.size()});
    return fragments;
  }
  size_t plain_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const std::vector<int32_t>& candidates = by_first_byte[static_cast<uint8_t>(text[pos])];
    int32_t matched = -1;
    for (int32_t id : candidates) {
      const std::string& s = vocab.texts[static_cast<size_t>(id)];
      if (text.size() - pos >= s.size() && text.compare(pos, s.size(), s) == 0) {
        matched = id;
        break;
      }
    }
    if (matched < 0) {
      ++pos;
      continue;
    }
    if (pos > plain_begin) fragments.push_back({-1, plain_begin, pos - plain_begin});
    const size_t length = vocab.texts[static_cast<size_t>(matched)].size();
    fragments.push_back({matched, pos, length});
    pos += length;
    plain_begin = pos;
  }
  if (plain_begin < text.size()) fragments.push_back({-1, plain_begin, text.size() - plain_begin});
  return fragments;
}

}  // namespace specula

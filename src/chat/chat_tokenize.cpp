// PromptTokenizer: special tokens from the template's text, plain text from
// the user's (chat_template.h).
#include <algorithm>

#include "chat/chat_template.h"

namespace specula {

PromptTokenizer::PromptTokenizer(const Tokenizer& tokenizer)
    : tokenizer_(tokenizer), by_first_byte_(256) {
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (!tokenizer.is_special(id)) continue;
    std::string text = tokenizer.token_text(id);
    if (text.empty()) continue;
    // Only what the tokenizer itself matches as a whole (some vocabularies
    // type byte tokens as user-defined without matching them in text).
    const std::vector<int32_t> alone = tokenizer.encode(text, false, true);
    if (alone.size() != 1 || alone[0] != id) continue;
    by_first_byte_[static_cast<unsigned char>(text[0])].emplace_back(std::move(text), id);
  }
  for (auto& candidates : by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
}

std::vector<int32_t> PromptTokenizer::tokenize(const ChatPrompt& prompt) const {
  const std::string_view text = prompt.text;
  const auto& spans = prompt.user_spans;
  // True when [begin, end) shares a byte with user text.
  const auto touches_user = [&](size_t begin, size_t end) {
    const auto it =
        std::upper_bound(spans.begin(), spans.end(), begin,
                         [](size_t pos, const auto& span) { return pos < span.second; });
    return it != spans.end() && it->first < end;
  };
  std::vector<int32_t> out;
  const auto encode_plain = [&](size_t begin, size_t end) {
    if (begin >= end) return;
    const std::vector<int32_t> ids =
        tokenizer_.encode(text.substr(begin, end - begin), false, false);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  size_t plain_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t matched = -1;
    size_t length = 0;
    for (const auto& [special, id] : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      if (text.compare(pos, special.size(), special) == 0 &&
          !touches_user(pos, pos + special.size())) {
        matched = id;
        length = special.size();
        break;
      }
    }
    if (matched < 0) {
      ++pos;
      continue;
    }
    encode_plain(plain_begin, pos);
    out.push_back(matched);
    pos += length;
    plain_begin = pos;
  }
  encode_plain(plain_begin, text.size());
  return out;
}

}  // namespace specula

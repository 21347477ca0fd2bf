// Byte-level BPE (tokenizer.ggml.model = "gpt2"): the pre-tokenizer cuts
// text into words; each word starts as one token per byte (the vocabulary
// spells byte b as GPT-2's printable character for b) and the merge with the
// lowest rank applies first, leftmost on ties, until none applies. With no
// merges every byte stays its own token, which is how the byte-only
// vocabulary of `specula make-model` works.
#include <algorithm>
#include <climits>
#include <queue>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab_tokenizer.h"

namespace specula {
namespace {

// Pre-tokenizers whose words map straight to a token when the whole word is
// one (Llama 3's tokenizer.json sets ignore_merges).
bool ignores_merges(std::string_view pre) {
  return pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3";
}

class BpeTokenizer final : public VocabTokenizer {
 public:
  BpeTokenizer(Vocab vocab, const std::vector<std::string_view>& merges, const std::string& source)
      : VocabTokenizer(std::move(vocab)), pre_(PreTokenizer::for_name(vocab_.pre)) {
    ignore_merges_ = ignores_merges(vocab_.pre);
    build_byte_tokens(source);
    build_pieces();
    build_merges(merges, source);
  }

 protected:
  void encode_plain(std::string_view text, bool after_special,
                    std::vector<int32_t>& out) const override;

 private:
  struct Merge {
    int32_t rank = 0;
    int32_t result = 0;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const Merge* find_merge(int32_t left, int32_t right) const {
    if (left < 0 || right < 0) return nullptr;
    const auto it = merges_.find(pair_key(left, right));
    return it == merges_.end() ? nullptr : &it->second;
  }

  bool is_byte_token(int32_t id) const {
    return std::find(byte_tokens_.begin(), byte_tokens_.end(), id) != byte_tokens_.end();
  }
  void build_pieces();
  void build_byte_tokens(const std::string& source);
  void build_merges(const std::vector<std::string_view>& merges, const std::string& source);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge_short(std::vector<int32_t>& symbols) const;
  void merge_long(std::vector<int32_t>& symbols) const;

  std::unique_ptr<PreTokenizer> pre_;
  bool ignore_merges_ = false;
  int32_t unknown_ = -1;  // stands in for bytes without a token
  std::array<int32_t, 256> byte_tokens_{};
  std::unordered_map<uint64_t, Merge> merges_;
  // Decoded bytes -> id of the normal token spelling them (ignore_merges).
  std::unordered_map<std::string_view, int32_t> piece_ids_;
};

void BpeTokenizer::build_pieces() {
  const size_t n = vocab_.texts.size();
  pieces_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = vocab_.texts[i];
    switch (vocab_.type(static_cast<int32_t>(i))) {
      case TokenType::kControl:
        break;
      case TokenType::kUserDefined:
        if (!is_byte_token(static_cast<int32_t>(i))) {
          pieces_[i] = text;
          break;
        }
        [[fallthrough]];  // a byte token added as user-defined: see build_byte_tokens
      default: {
        // Each character of the text stands for one byte; a character
        // outside the byte map (a malformed vocabulary) is kept as is.
        std::string& piece = pieces_[i];
        for (size_t pos = 0; pos < text.size();) {
          const size_t len = utf8::valid_char_length(text, pos);
          if (len == 0) {
            piece += text[pos++];
            continue;
          }
          const int byte = utf8::char_to_byte(utf8::decode_codepoint(text, pos, len));
          if (byte >= 0) {
            piece += static_cast<char>(byte);
          } else {
            piece.append(text, pos, len);
          }
          pos += len;
        }
        break;
      }
    }
  }
  if (ignore_merges_) {
    for (size_t i = 0; i < n; ++i) {
      if (vocab_.type(static_cast<int32_t>(i)) == TokenType::kNormal && !pieces_[i].empty()) {
        piece_ids_.emplace(pieces_[i], static_cast<int32_t>(i));
      }
    }
  }
}

void BpeTokenizer::build_byte_tokens(const std::string& source) {
  // Only a real unknown token stands in for a missing byte: StarCoder names
  // <|endoftext|> as unknown, and an end-of-text in the middle of a prompt
  // would do more harm than a dropped byte.
  if (vocab_.unk >= 0 && vocab_.type(vocab_.unk) == TokenType::kUnknown) unknown_ = vocab_.unk;
  int missing = 0;
  bool missing_in_valid_utf8 = false;
  for (size_t b = 0; b < 256; ++b) {
    byte_tokens_[b] = vocab_.find(utf8::byte_to_char()[b]);
    if (byte_tokens_[b] >= 0 && vocab_.type(byte_tokens_[b]) == TokenType::kUserDefined) {
      // DeepSeek's vocabularies add the bytes that never occur in valid
      // UTF-8 (0xF5 as "õ", ...) as user-defined tokens. They stay byte
      // tokens: decoded as their byte, and not matched as text, since the
      // text "õ" is the two bytes C3 B5, not the byte F5.
      std::erase(vocab_.special_tokens, byte_tokens_[b]);
    }
    if (byte_tokens_[b] < 0) {
      ++missing;
      // 0xC0, 0xC1 and 0xF5..0xFF never occur in valid UTF-8, and several
      // real vocabularies (StarCoder's) leave them out.
      if (b != 0xC0 && b != 0xC1 && b < 0xF5) missing_in_valid_utf8 = true;
    }
  }
  if (missing > 0 && !missing_in_valid_utf8) {
    log_info(source, ": the byte-level vocabulary has no tokens for ", missing,
             " bytes that never occur in valid UTF-8");
  } else if (missing > 0) {
    log_warn(source, ": the byte-level vocabulary lacks tokens for ", missing,
             " of the 256 bytes; such bytes encode as the unknown token",
             unknown_ >= 0 ? "" : " (there is none: they are dropped)");
  }
}

void BpeTokenizer::build_merges(const std::vector<std::string_view>& merges,
                                const std::string& source) {
  if (merges.size() > static_cast<size_t>(INT32_MAX))
    fail(source, ": too many merges (", merges.size(), ")");
  merges_.reserve(merges.size() * 2);
  size_t skipped = 0;
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view merge = merges[rank];
    // "left right"; a left side may itself start with a space.
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos) {
      ++skipped;
      continue;
    }
    const std::string_view left = merge.substr(0, space);
    const std::string_view right = merge.substr(space + 1);
    joined.assign(left);
    joined.append(right);
    const int32_t left_id = vocab_.find(left);
    const int32_t right_id = vocab_.find(right);
    const int32_t result = vocab_.find(joined);
    if (left_id < 0 || right_id < 0 || result < 0) {
      ++skipped;
      continue;
    }
    merges_.try_emplace(pair_key(left_id, right_id), Merge{static_cast<int32_t>(rank), result});
  }
  if (skipped > 0) {
    log_warn(
        source, ": ignoring ", skipped, " of ", merges.size(),
        " merges in tokenizer.ggml.merges that are malformed or name tokens not in the vocabulary");
  }
}

void BpeTokenizer::encode_plain(std::string_view text, bool /*after_special*/,
                                std::vector<int32_t>& out) const {
  for (const TextSpan& span : pre_->split(text))
    encode_word(text.substr(span.begin, span.size), out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    const auto it = piece_ids_.find(word);
    if (it != piece_ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) symbols[i] = byte_tokens_[static_cast<uint8_t>(word[i])];
  if (symbols.size() <= 64) {
    merge_short(symbols);
  } else {
    merge_long(symbols);
  }
  for (int32_t id : symbols) {
    if (id >= 0) {
      out.push_back(id);
    } else if (unknown_ >= 0) {
      out.push_back(unknown_);
    }
  }
}

// Short words: rescan for the best pair; ranks of untouched pairs are kept.
void BpeTokenizer::merge_short(std::vector<int32_t>& symbols) const {
  if (symbols.size() < 2) return;
  std::vector<const Merge*> pairs(symbols.size() - 1);
  for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[i] = find_merge(symbols[i], symbols[i + 1]);
  while (!pairs.empty()) {
    size_t best = pairs.size();
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (pairs[i] != nullptr && (best == pairs.size() || pairs[i]->rank < pairs[best]->rank))
        best = i;
    }
    if (best == pairs.size()) return;
    symbols[best] = pairs[best]->result;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(best));
    if (best < pairs.size()) pairs[best] = find_merge(symbols[best], symbols[best + 1]);
    if (best > 0) pairs[best - 1] = find_merge(symbols[best - 1], symbols[best]);
  }
}

// Long words (e.g. megabytes of one character): a heap of candidate pairs
// over a linked list, O(n log n).
void BpeTokenizer::merge_long(std::vector<int32_t>& symbols) const {
  if (symbols.size() > static_cast<size_t>(INT32_MAX)) {
    fail("a word of ", symbols.size(), " bytes is too long to tokenize");
  }
  const auto n = static_cast<int32_t>(symbols.size());
  std::vector<int32_t> next(symbols.size()), prev(symbols.size());
  for (int32_t i = 0; i < n; ++i) {
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
    prev[static_cast<size_t>(i)] = i - 1;
  }
  struct Candidate {
    int32_t rank, left, right, left_id, right_id;
    bool operator>(const Candidate& o) const {
      return rank > o.rank || (rank == o.rank && left > o.left);
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto consider = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    const int32_t a = symbols[static_cast<size_t>(left)], b = symbols[static_cast<size_t>(right)];
    if (const Merge* merge = find_merge(a, b)) queue.push({merge->rank, left, right, a, b});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  constexpr int32_t kDead = INT32_MIN;
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const auto left = static_cast<size_t>(c.left), right = static_cast<size_t>(c.right);
    if (next[left] != c.right || symbols[left] != c.left_id || symbols[right] != c.right_id)
      continue;
    symbols[left] = find_merge(c.left_id, c.right_id)->result;
    symbols[right] = kDead;
    next[left] = next[right];
    if (next[right] >= 0) prev[static_cast<size_t>(next[right])] = c.left;
    consider(prev[left]);
    consider(c.left);
  }
  size_t kept = 0;
  for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)])
    symbols[kept++] = symbols[static_cast<size_t>(i)];
  symbols.resize(kept);
}

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab vocab,
                                              const std::vector<std::string_view>& merges,
                                              const std::string& source) {
  return std::make_unique<BpeTokenizer>(std::move(vocab), merges, source);
}

}  // namespace specula

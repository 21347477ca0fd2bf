// SentencePiece-style BPE (tokenizer.ggml.model = "llama"): spaces become
// U+2581, text gets one leading space, and adjacent pieces merge greedily,
// the pair whose merged text is the highest-scoring vocabulary token first
// (leftmost on ties). Characters no token covers fall back to <0xNN> byte
// tokens, or to the unknown token when the vocabulary has no byte tokens.
#include <array>
#include <climits>
#include <queue>
#include <unordered_set>

#include "core/error.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab_tokenizer.h"

namespace specula {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab vocab) : VocabTokenizer(std::move(vocab)) {
    byte_tokens_.fill(-1);
    const size_t n = vocab_.texts.size();
    for (size_t i = 0; i < n; ++i) {
      if (mergeable_token(vocab_.texts[i]) != static_cast<int32_t>(i)) continue;
      const std::string_view text = vocab_.texts[i];
      uint32_t previous = 0;
      for (size_t pos = 0; pos < text.size();) {
        const size_t len = utf8::symbol_length(text, pos);
        const uint32_t current = pack_char(text.substr(pos, len));
        if (pos > 0) inner_pairs_.insert((uint64_t{previous} << 32) | current);
        previous = current;
        pos += len;
      }
    }
    pieces_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const std::string& text = vocab_.texts[i];
      const auto id = static_cast<int32_t>(i);
      switch (vocab_.type(id)) {
        case TokenType::kByte: {
          const int byte = parse_byte_token(text);
          if (byte >= 0) {
            pieces_[i] = std::string(1, static_cast<char>(byte));
            if (byte_tokens_[static_cast<size_t>(byte)] < 0)
              byte_tokens_[static_cast<size_t>(byte)] = id;
          } else {
            pieces_[i] = text;
          }
          break;
        }
        case TokenType::kControl:
          break;  // control tokens do not appear in decoded text
        case TokenType::kUnknown:
          pieces_[i] = "\xEF\xBF\xBD";  // U+FFFD
          break;
        case TokenType::kUserDefined:
          pieces_[i] = text;
          break;
        default:
          pieces_[i] = unescape_spaces(text);
          break;
      }
    }
  }

 protected:
  void encode_plain(std::string_view raw, bool after_special,
                    std::vector<int32_t>& out) const override;

 private:
  void encode_chunk(std::string_view text, std::vector<int32_t>& out) const;

  // A character (1-4 bytes) as one number; distinct characters differ.
  static uint32_t pack_char(std::string_view c) {
    uint32_t packed = 0;
    for (char b : c) packed = (packed << 8) | static_cast<uint8_t>(b);
    return packed;
  }

  struct Symbol {
    size_t start = 0;  // byte offset in the escaped text
    size_t size = 0;   // bytes; 0 once merged into its left neighbour
    int32_t prev = -1;
    int32_t next = -1;
    int32_t id = -1;  // the vocabulary token of exactly these bytes, or -1
  };
  struct Bigram {
    float score = 0;
    int32_t left = 0;
    int32_t right = 0;
    size_t size = 0;  // bytes of the merged text, to spot stale entries
    int32_t id = 0;
    // Max-heap order: higher score first, then the leftmost pair.
    bool operator<(const Bigram& other) const {
      return score < other.score || (score == other.score && left > other.left);
    }
  };

  static int parse_byte_token(const std::string& text) {
    if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
      const char c = text[i];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }

  static std::string unescape_spaces(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
        out += ' ';
        i += kSpaceMarker.size();
      } else {
        out += text[i++];
      }
    }
    return out;
  }

  // The token for text merged from vocabulary pieces: normal tokens only
  // (control, byte and user-defined tokens never come out of merging).
  int32_t mergeable_token(std::string_view text) const {
    const int32_t id = vocab_.find(text);
    if (id < 0) return -1;
    const TokenType type = vocab_.type(id);
    return (type == TokenType::kNormal || type == TokenType::kUndefined) ? id : -1;
  }

  void push_bigram(std::string_view text, const std::vector<Symbol>& symbols, int32_t left,
                   std::priority_queue<Bigram>& queue) const {
    if (left < 0) return;
    const int32_t right = symbols[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const Symbol& a = symbols[static_cast<size_t>(left)];
    const Symbol& b = symbols[static_cast<size_t>(right)];
    const size_t size = a.size + b.size;
    const int32_t id = mergeable_token(std::string_view(text).substr(a.start, size));
    if (id < 0) return;
    queue.push({vocab_.scores[static_cast<size_t>(id)], left, right, size, id});
  }

  std::array<int32_t, 256> byte_tokens_{};
  // Adjacent character pairs (packed, left << 32 | right) inside some
  // mergeable token: only there can a merge join two symbols.
  std::unordered_set<uint64_t> inner_pairs_;
};

void SpmTokenizer::encode_plain(std::string_view raw, bool after_special,
                                std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() + raw.size() / 4 + 4);
  if (vocab_.add_space_prefix && after_special) text += kSpaceMarker;
  for (char c : raw) {
    if (c == ' ') {
      text += kSpaceMarker;
    } else {
      text += c;
    }
  }
  // Cut the text where no token holds the two characters on either side:
  // no merge can ever join across such a cut, so encoding the pieces one by
  // one gives exactly the ids of encoding the whole, with small heaps.
  size_t chunk_begin = 0;
  uint32_t previous = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = utf8::symbol_length(text, pos);
    const uint32_t current = pack_char(std::string_view(text).substr(pos, n));
    if (pos > chunk_begin && !inner_pairs_.contains((uint64_t{previous} << 32) | current)) {
      encode_chunk(std::string_view(text).substr(chunk_begin, pos - chunk_begin), out);
      chunk_begin = pos;
    }
    previous = current;
    pos += n;
  }
  if (chunk_begin < text.size()) encode_chunk(std::string_view(text).substr(chunk_begin), out);
}

void SpmTokenizer::encode_chunk(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    if (symbols.size() >= static_cast<size_t>(INT32_MAX)) {
      fail("a run of ", text.size(), " bytes is too long to tokenize in one piece");
    }
    const size_t n = utf8::symbol_length(text, pos);
    Symbol symbol;
    symbol.start = pos;
    symbol.size = n;
    symbol.prev = static_cast<int32_t>(symbols.size()) - 1;
    symbol.next = pos + n < text.size() ? static_cast<int32_t>(symbols.size()) + 1 : -1;
    symbol.id = mergeable_token(std::string_view(text).substr(pos, n));
    symbols.push_back(symbol);
    pos += n;
  }

  std::priority_queue<Bigram> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    push_bigram(text, symbols, static_cast<int32_t>(i), queue);
  }
  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(bigram.left)];
    Symbol& right = symbols[static_cast<size_t>(bigram.right)];
    if (left.size == 0 || right.size == 0 || left.next != bigram.right ||
        left.size + right.size != bigram.size) {
      continue;  // stale: one side has merged since
    }
    left.size += right.size;
    left.id = bigram.id;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = bigram.left;
    push_bigram(text, symbols, left.prev, queue);
    push_bigram(text, symbols, bigram.left, queue);
  }

  for (int32_t i = 0; i >= 0 && !symbols.empty(); i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& symbol = symbols[static_cast<size_t>(i)];
    if (symbol.id >= 0) {
      out.push_back(symbol.id);
      continue;
    }
    // No token covers this character: its bytes, or the unknown token.
    for (size_t k = 0; k < symbol.size; ++k) {
      const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(text[symbol.start + k])];
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (vocab_.unk >= 0) {
        out.push_back(vocab_.unk);
        break;  // one unknown token per character, as SentencePiece does
      }
    }
  }
}

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab vocab) {
  return std::make_unique<SpmTokenizer>(std::move(vocab));
}

}  // namespace specula

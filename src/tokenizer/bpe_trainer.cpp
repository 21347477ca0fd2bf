#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace specula {
namespace {

constexpr int32_t kFirstMergeId = 258;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t key_left(uint64_t key) {
  return static_cast<int32_t>(key >> 32);
}
int32_t key_right(uint64_t key) {
  return static_cast<int32_t>(key & 0xFFFFFFFFu);
}

struct Word {
  std::vector<int32_t> symbols;
  uint64_t count = 0;
};

struct HeapEntry {
  uint64_t count;
  uint64_t key;
  // Max-heap: higher count first, then the smaller pair key.
  bool operator<(const HeapEntry& other) const {
    return count < other.count || (count == other.count && key > other.key);
  }
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options)
    : options_(std::move(options)), pre_(PreTokenizer::for_name(options_.pre)) {
  if (options_.vocab_size < static_cast<size_t>(kFirstMergeId)) {
    fail("--vocab-size ", options_.vocab_size, " is too small: a byte-level vocabulary needs ",
         kFirstMergeId, " tokens (256 bytes, <s>, </s>) before any merge");
  }
  if (options_.vocab_size > static_cast<size_t>(INT32_MAX)) {
    fail("--vocab-size ", options_.vocab_size, " is too large");
  }
}

void BpeTrainer::add_text(std::string_view text) {
  total_bytes_ += text.size();
  std::string word;
  for (const TextSpan& span : pre_->split(text)) {
    word.assign(text.substr(span.begin, span.size));
    ++word_counts_[word];
  }
}

TrainedBpe BpeTrainer::train(const std::function<void(size_t, size_t)>& progress) const {
  TrainedBpe result;
  result.pre = options_.pre;
  for (const std::string& byte_char : utf8::byte_to_char()) result.tokens.push_back(byte_char);
  result.token_types.assign(256, 1);
  result.tokens.push_back("<s>");
  result.tokens.push_back("</s>");
  result.token_types.push_back(3);
  result.token_types.push_back(3);

  // Words as byte ids; pair counts weighted by word frequency; for each pair
  // the words that (may) hold it. Lists can hold stale or repeated entries:
  // the merge step rescans each listed word.
  std::vector<Word> words;
  words.reserve(word_counts_.size());
  for (const auto& [text, count] : word_counts_) {
    Word word;
    word.count = count;
    word.symbols.reserve(text.size());
    for (char c : text) word.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(word));
  }
  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;
  for (size_t w = 0; w < words.size(); ++w) {
    const std::vector<int32_t>& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = pair_key(s[i], s[i + 1]);
      pair_counts[key] += static_cast<int64_t>(words[w].count);
      std::vector<uint32_t>& list = pair_words[key];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [key, count] : pair_counts) heap.push({static_cast<uint64_t>(count), key});

  std::unordered_map<std::string, int32_t> token_ids;
  for (size_t id = 0; id < result.tokens.size(); ++id)
    token_ids.emplace(result.tokens[id], static_cast<int32_t>(id));
  const size_t merges_wanted = options_.vocab_size - kFirstMergeId;
  std::vector<int32_t> merged;
  std::vector<uint64_t> new_pairs;
  while (result.tokens.size() < options_.vocab_size && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const auto found = pair_counts.find(top.key);
    const uint64_t current =
        found == pair_counts.end() ? 0 : static_cast<uint64_t>(std::max<int64_t>(found->second, 0));
    if (current != top.count) {  // stale: counts only fall, so requeue
      if (current > 0) heap.push({current, top.key});
      continue;
    }
    if (current < options_.min_pair_count) break;

    const int32_t left = key_left(top.key), right = key_right(top.key);
    // Two merge paths can spell the same text ("a"+"bc", "ab"+"c"): the
    // second merge reuses the token, so no text appears twice.
    std::string text =
        result.tokens[static_cast<size_t>(left)] + result.tokens[static_cast<size_t>(right)];
    auto [existing, inserted] =
        token_ids.try_emplace(text, static_cast<int32_t>(result.tokens.size()));
    const int32_t new_id = existing->second;
    if (inserted) {
      result.tokens.push_back(std::move(text));
      result.token_types.push_back(1);
    }
    result.merges.push_back(result.tokens[static_cast<size_t>(left)] + " " +
                            result.tokens[static_cast<size_t>(right)]);

    std::vector<uint32_t> holders = std::move(pair_words[top.key]);
    pair_words.erase(top.key);
    std::sort(holders.begin(), holders.end());
    holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
    new_pairs.clear();
    for (uint32_t w : holders) {
      Word& word = words[w];
      std::vector<int32_t>& s = word.symbols;
      merged.clear();
      bool changed = false;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          merged.push_back(new_id);
          i += 2;
          changed = true;
        } else {
          merged.push_back(s[i]);
          ++i;
        }
      }
      if (!changed) continue;
      const auto count = static_cast<int64_t>(word.count);
      for (size_t i = 0; i + 1 < s.size(); ++i) pair_counts[pair_key(s[i], s[i + 1])] -= count;
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t key = pair_key(merged[i], merged[i + 1]);
        pair_counts[key] += count;
        if (merged[i] == new_id || merged[i + 1] == new_id) {
          std::vector<uint32_t>& list = pair_words[key];
          if (list.empty() || list.back() != w) list.push_back(w);
          new_pairs.push_back(key);
        }
      }
      s.swap(merged);
    }
    pair_counts.erase(top.key);
    std::sort(new_pairs.begin(), new_pairs.end());
    new_pairs.erase(std::unique(new_pairs.begin(), new_pairs.end()), new_pairs.end());
    for (uint64_t key : new_pairs) {
      const int64_t count = pair_counts[key];
      if (count > 0) heap.push({static_cast<uint64_t>(count), key});
    }
    if (progress && result.merges.size() % 500 == 0) {
      progress(result.tokens.size() - kFirstMergeId, merges_wanted);
    }
  }
  if (progress) progress(result.tokens.size() - kFirstMergeId, merges_wanted);
  return result;
}

void TrainedBpe::add_to_gguf(GgufWriter& writer) const {
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", pre);
  writer.set_string_array("tokenizer.ggml.tokens", tokens);
  writer.set_int32_array("tokenizer.ggml.token_type", token_types);
  writer.set_string_array("tokenizer.ggml.merges", merges);
  writer.set_uint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(bos));
  writer.set_uint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  writer.set_bool("tokenizer.ggml.add_bos_token", true);
  writer.set_bool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace specula

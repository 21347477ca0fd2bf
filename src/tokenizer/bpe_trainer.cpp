#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <optional>
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

// The words being merged as symbol ids, pair counts weighted by word
// frequency, for each pair the words that (may) hold it, and a max-heap of
// pairs by count. Lists and the heap can hold stale or repeated entries:
// the merge step rescans each listed word, and pop_best_pair skips stale
// counts.
struct PairIndex {
  std::vector<Word> words;
  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<uint32_t>> pair_words;
  std::priority_queue<HeapEntry> heap;
  // Scratch space of apply_merge, kept across merges.
  std::vector<int32_t> merged;
  std::vector<uint64_t> new_pairs;
};

// The 256 byte tokens, then <s> and </s>: what every merge builds on.
TrainedBpe byte_level_base(const std::string& pre) {
  TrainedBpe result;
  result.pre = pre;
  for (const std::string& byte_char : utf8::byte_to_char()) result.tokens.push_back(byte_char);
  result.token_types.assign(256, 1);
  result.tokens.push_back("<s>");
  result.tokens.push_back("</s>");
  result.token_types.push_back(3);
  result.token_types.push_back(3);
  return result;
}

// Words as byte ids, their pairs counted and queued.
PairIndex index_words(const std::unordered_map<std::string, uint64_t>& word_counts) {
  PairIndex index;
  index.words.reserve(word_counts.size());
  for (const auto& [text, count] : word_counts) {
    Word word;
    word.count = count;
    word.symbols.reserve(text.size());
    for (char c : text) word.symbols.push_back(static_cast<uint8_t>(c));
    index.words.push_back(std::move(word));
  }
  for (size_t w = 0; w < index.words.size(); ++w) {
    const std::vector<int32_t>& s = index.words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = pair_key(s[i], s[i + 1]);
      index.pair_counts[key] += static_cast<int64_t>(index.words[w].count);
      std::vector<uint32_t>& list = index.pair_words[key];
      if (list.empty() || list.back() != w) list.push_back(static_cast<uint32_t>(w));
    }
  }
  for (const auto& [key, count] : index.pair_counts) {
    index.heap.push({static_cast<uint64_t>(count), key});
  }
  return index;
}

// The most frequent pair, if it occurs at least `min_count` times.
std::optional<uint64_t> pop_best_pair(PairIndex& index, uint64_t min_count) {
  while (!index.heap.empty()) {
    const HeapEntry top = index.heap.top();
    index.heap.pop();
    const auto found = index.pair_counts.find(top.key);
    const uint64_t current = found == index.pair_counts.end()
                                 ? 0
                                 : static_cast<uint64_t>(std::max<int64_t>(found->second, 0));
    if (current != top.count) {  // stale: counts only fall, so requeue
      if (current > 0) index.heap.push({current, top.key});
      continue;
    }
    if (current < min_count) return std::nullopt;
    return top.key;
  }
  return std::nullopt;
}

// Records the merge of `key` and returns the id of its token. Two merge
// paths can spell the same text ("a"+"bc", "ab"+"c"): the second merge
// reuses the token, so no text appears twice.
int32_t add_merge(TrainedBpe& result, std::unordered_map<std::string, int32_t>& token_ids,
                  uint64_t key) {
  const auto left = static_cast<size_t>(key_left(key));
  const auto right = static_cast<size_t>(key_right(key));
  std::string text = result.tokens[left] + result.tokens[right];
  auto [existing, inserted] =
      token_ids.try_emplace(text, static_cast<int32_t>(result.tokens.size()));
  const int32_t new_id = existing->second;
  if (inserted) {
    result.tokens.push_back(std::move(text));
    result.token_types.push_back(1);
  }
  result.merges.push_back(result.tokens[left] + " " + result.tokens[right]);
  return new_id;
}

// `merged`: `symbols` with each (left, right) replaced by new_id; false
// when there was none.
bool merge_symbols(const std::vector<int32_t>& symbols, int32_t left, int32_t right, int32_t new_id,
                   std::vector<int32_t>& merged) {
  merged.clear();
  bool changed = false;
  for (size_t i = 0; i < symbols.size();) {
    if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
      merged.push_back(new_id);
      i += 2;
      changed = true;
    } else {
      merged.push_back(symbols[i]);
      ++i;
    }
  }
  return changed;
}

// Merges pair `key` into new_id in every word that holds it, moves the
// words' pair counts from the old pairs to the new ones, and queues the
// pairs that hold new_id.
void apply_merge(PairIndex& index, uint64_t key, int32_t new_id) {
  const int32_t left = key_left(key), right = key_right(key);
  std::vector<uint32_t> holders = std::move(index.pair_words[key]);
  index.pair_words.erase(key);
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  std::vector<int32_t>& merged = index.merged;
  std::vector<uint64_t>& new_pairs = index.new_pairs;
  new_pairs.clear();
  for (uint32_t w : holders) {
    Word& word = index.words[w];
    std::vector<int32_t>& s = word.symbols;
    if (!merge_symbols(s, left, right, new_id, merged)) continue;
    const auto count = static_cast<int64_t>(word.count);
    for (size_t i = 0; i + 1 < s.size(); ++i) index.pair_counts[pair_key(s[i], s[i + 1])] -= count;
    for (size_t i = 0; i + 1 < merged.size(); ++i) {
      const uint64_t pair = pair_key(merged[i], merged[i + 1]);
      index.pair_counts[pair] += count;
      if (merged[i] == new_id || merged[i + 1] == new_id) {
        std::vector<uint32_t>& list = index.pair_words[pair];
        if (list.empty() || list.back() != w) list.push_back(w);
        new_pairs.push_back(pair);
      }
    }
    s.swap(merged);
  }
  index.pair_counts.erase(key);
  std::sort(new_pairs.begin(), new_pairs.end());
  new_pairs.erase(std::unique(new_pairs.begin(), new_pairs.end()), new_pairs.end());
  for (uint64_t pair : new_pairs) {
    const int64_t count = index.pair_counts[pair];
    if (count > 0) index.heap.push({static_cast<uint64_t>(count), pair});
  }
}

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options)
    : options_(std::move(options)), pre_(PreTokenizer::for_name(options_.pre)) {
  if (options_.vocab_size < static_cast<size_t>(kFirstMergeId)) {
    fail("a vocabulary size of ", options_.vocab_size,
         " is too small: a byte-level vocabulary needs ", kFirstMergeId,
         " tokens (256 bytes, <s>, </s>) before any merge");
  }
  if (options_.vocab_size > static_cast<size_t>(INT32_MAX)) {
    fail("a vocabulary size of ", options_.vocab_size, " is too large");
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
  TrainedBpe result = byte_level_base(options_.pre);
  PairIndex index = index_words(word_counts_);
  std::unordered_map<std::string, int32_t> token_ids;
  for (size_t id = 0; id < result.tokens.size(); ++id)
    token_ids.emplace(result.tokens[id], static_cast<int32_t>(id));
  const size_t merges_wanted = options_.vocab_size - kFirstMergeId;
  while (result.tokens.size() < options_.vocab_size) {
    const std::optional<uint64_t> best = pop_best_pair(index, options_.min_pair_count);
    if (!best) break;
    apply_merge(index, *best, add_merge(result, token_ids, *best));
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

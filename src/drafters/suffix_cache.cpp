#include "drafters/suffix_cache.h"

#include <algorithm>
#include <cassert>

#include "core/error.h"
#include "drafters/token_hash.h"

namespace specula {

void validate(const SuffixCacheOptions& options) {
  if (options.max_tokens < 1) {
    fail("the suffix cache budget is ", options.max_tokens, " tokens: it must be at least 1");
  }
  if (options.max_order < 1 || options.max_order > 64) {
    fail("the suffix cache's longest context is ", options.max_order,
         " tokens: give 1..64 (8 is a good default)");
  }
}

void validate(const SuffixProposalOptions& options) {
  if (options.min_count < 1) {
    fail("the suffix drafter's minimum count is ", options.min_count, ": it must be at least 1");
  }
  if (!(options.min_probability >= 0.0f && options.min_probability <= 1.0f)) {
    fail("the suffix drafter's minimum probability is ", options.min_probability,
         ": it must be in [0, 1]");
  }
}

SuffixCache::SuffixCache(SuffixCacheOptions options) : options_(options) {
  validate(options_);
  hashes_.resize(static_cast<size_t>(options_.max_order));
}

SuffixCache::SequenceId SuffixCache::begin_sequence() {
  std::lock_guard<std::mutex> lock(mutex_);
  sequences_.push_back(StoredSequence{next_id_, {}});
  return next_id_++;
}

SuffixCache::StoredSequence* SuffixCache::find_sequence(SequenceId id) {
  // Few sequences are live at once and appends go to the newest: search
  // from the back.
  for (auto it = sequences_.rbegin(); it != sequences_.rend(); ++it) {
    if (it->id == id) return &*it;
  }
  return nullptr;
}

void SuffixCache::add_token(StoredSequence& sequence, int32_t token) {
  const std::deque<int32_t>& tokens = sequence.tokens;
  const size_t length = tokens.size();
  const size_t orders = std::min(length, static_cast<size_t>(options_.max_order));
  const uint64_t stamp = ++stamp_;
  uint64_t hash = kTokenHashSeed;
  // Order k's context is the k tokens before `token`, hashed newest first.
  for (size_t k = 1; k <= orders; ++k) {
    hash = hash_combine_token(hash, tokens[length - k]);
    Entry& entry = entries_[hash];
    ++entry.total;
    auto follower = std::find_if(entry.followers.begin(), entry.followers.end(),
                                 [&](const Follower& f) { return f.token == token; });
    if (follower == entry.followers.end()) {
      entry.followers.push_back({token, 0, 0});
      ++followers_;
      follower = entry.followers.end() - 1;
    }
    ++follower->count;
    follower->last_seen = stamp;
  }
  sequence.tokens.push_back(token);
  ++stored_tokens_;
}

void SuffixCache::evict_front(StoredSequence& sequence) {
  // The oldest token's counts are those of the contexts that start with it:
  // the k tokens from the front, followed by tokens[k]. (Contexts starting
  // earlier went with the tokens evicted before.)
  const std::deque<int32_t>& tokens = sequence.tokens;
  const size_t orders = std::min(tokens.size() - 1, static_cast<size_t>(options_.max_order));
  for (size_t k = 1; k <= orders; ++k) {
    uint64_t hash = kTokenHashSeed;
    for (size_t i = k; i-- > 0;) hash = hash_combine_token(hash, tokens[i]);
    const auto found = entries_.find(hash);
    assert(found != entries_.end());
    if (found == entries_.end()) continue;
    Entry& entry = found->second;
    const int32_t follower_token = tokens[k];
    auto follower = std::find_if(entry.followers.begin(), entry.followers.end(),
                                 [&](const Follower& f) { return f.token == follower_token; });
    assert(follower != entry.followers.end());
    if (follower == entry.followers.end()) continue;
    --entry.total;
    if (--follower->count == 0) {
      *follower = entry.followers.back();
      entry.followers.pop_back();
      --followers_;
    }
    if (entry.total == 0) entries_.erase(found);
  }
  sequence.tokens.pop_front();
  --stored_tokens_;
}

void SuffixCache::evict_to_budget(SequenceId keep) {
  while (stored_tokens_ > options_.max_tokens) {
    StoredSequence& oldest = sequences_.front();
    if (!oldest.tokens.empty()) evict_front(oldest);
    if (oldest.tokens.empty() && oldest.id != keep) sequences_.pop_front();
  }
  // Empty sequences left at the front (begun, never appended) need no slot.
  while (!sequences_.empty() && sequences_.front().tokens.empty() &&
         sequences_.front().id != keep) {
    sequences_.pop_front();
  }
}

void SuffixCache::append(SequenceId id, std::span<const int32_t> tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  StoredSequence* sequence = find_sequence(id);
  if (sequence == nullptr) {
    sequences_.push_back(StoredSequence{id, {}});
    sequence = &sequences_.back();
  }
  for (int32_t token : tokens) {
    add_token(*sequence, token);
    // Evicting may pop other sequences from the front of sequences_, which
    // leaves references to the others (a deque's back) valid.
    if (stored_tokens_ > options_.max_tokens) evict_to_budget(id);
  }
}

void SuffixCache::propose(std::span<const int32_t> context, int32_t max_tokens,
                          const SuffixProposalOptions& options, std::vector<int32_t>& out,
                          std::vector<float>* confidence) const {
  out.clear();
  if (confidence) confidence->clear();
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t context_length = context.size();
  // The sequence continued by the chosen tokens: context, then out.
  auto token_at = [&](size_t i) {
    return i < context_length ? context[i] : out[i - context_length];
  };
  double chain_probability = 1.0;
  while (static_cast<int32_t>(out.size()) < max_tokens) {
    const size_t length = context_length + out.size();
    const size_t orders = std::min(length, static_cast<size_t>(options_.max_order));
    // The longest suffix the index knows.
    const Entry* longest = nullptr;
    uint64_t hash = kTokenHashSeed;
    for (size_t k = 1; k <= orders; ++k) {
      hash = hash_combine_token(hash, token_at(length - k));
      const auto found = entries_.find(hash);
      if (found == entries_.end()) break;  // no longer context can match either
      longest = &found->second;
    }
    if (longest == nullptr) break;
    const Follower* best = &longest->followers.front();
    for (const Follower& f : longest->followers) {
      if (f.count > best->count || (f.count == best->count && f.last_seen > best->last_seen)) {
        best = &f;
      }
    }
    const double frequency = static_cast<double>(best->count) / longest->total;
    if (static_cast<int32_t>(best->count) < options.min_count ||
        chain_probability * frequency < options.min_probability) {
      break;
    }
    chain_probability *= frequency;
    out.push_back(best->token);
    if (confidence) confidence->push_back(static_cast<float>(frequency));
  }
}

int64_t SuffixCache::stored_tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stored_tokens_;
}

int64_t SuffixCache::n_sequences() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(sequences_.size());
}

int64_t SuffixCache::n_entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(entries_.size());
}

uint64_t SuffixCache::memory_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return memory_bytes_locked();
}

uint64_t SuffixCache::memory_bytes_locked() const {
  // An estimate of the heap in use: a hash node per entry (its key, value
  // and link, rounded up by the allocator's header), each followers array,
  // the bucket array, and the stored tokens.
  constexpr uint64_t kAllocatorHeader = 16;
  const uint64_t node = sizeof(void*) + sizeof(uint64_t) + sizeof(Entry) + kAllocatorHeader;
  const uint64_t entries = entries_.size();
  return entries * (node + kAllocatorHeader) + followers_ * sizeof(Follower) +
         entries_.bucket_count() * sizeof(void*) +
         static_cast<uint64_t>(stored_tokens_) * sizeof(int32_t) +
         sequences_.size() * sizeof(StoredSequence);
}

}  // namespace specula

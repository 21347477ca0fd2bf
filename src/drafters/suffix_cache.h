// An index of the token sequences the engine has seen and produced, shared
// across requests: for every context of 1..max_order tokens that occurred,
// how often each token followed it. It proposes the likeliest continuation
// of a sequence's longest matching suffix, and learns online by construction
// (sequences are added as they are generated and kept after their request).
//
// Memory is bounded by a token budget: when more than max_tokens tokens are
// stored, the oldest tokens go (the front of the oldest sequence first), and
// with them every count they contributed, so the index describes exactly the
// tokens still stored. Each stored token adds at most max_order index
// entries; memory_bytes() estimates the total (about 100 bytes per entry,
// so <= ~100 * max_order * max_tokens bytes).
//
// Contexts are keyed by a 64-bit hash of their tokens: a collision merges
// two contexts, which can only cost acceptance (the verifier keeps the
// output exact whatever is proposed).
//
// Thread safety: every public method locks one internal mutex, so one cache
// may be shared by drafters on several threads (the server's requests).
// Calls are short (O(tokens added * max_order) or O(g * max_order)).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

namespace specula {

struct SuffixCacheOptions {
  int64_t max_tokens = int64_t{1} << 16;  // the memory budget, in stored tokens
  int32_t max_order = 8;                  // longest context matched, in tokens
};

struct SuffixProposalOptions {
  // A proposed token must have followed its context at least this often...
  int32_t min_count = 1;
  // ...and the chain's estimated probability (the product of each step's
  // count / total) must stay at least this; the chain stops before a token
  // that would take it lower.
  float min_probability = 0.1f;
};

// Throws Error unless max_tokens >= 1 and 1 <= max_order <= 64, and for the
// proposal options min_count >= 1 and min_probability in [0, 1].
void validate(const SuffixCacheOptions& options);
void validate(const SuffixProposalOptions& options);

class SuffixCache {
 public:
  using SequenceId = uint64_t;

  explicit SuffixCache(SuffixCacheOptions options = {});
  SuffixCache(const SuffixCache&) = delete;
  SuffixCache& operator=(const SuffixCache&) = delete;

  const SuffixCacheOptions& options() const { return options_; }

  // A new, empty stored sequence; the newest, so the last to be evicted.
  SequenceId begin_sequence();
  // Appends tokens to a sequence and counts each after its contexts (the up
  // to max_order tokens before it in that sequence), then evicts down to the
  // budget. A sequence evicted entirely starts again empty.
  void append(SequenceId sequence, std::span<const int32_t> tokens);

  // Up to max_tokens tokens continuing `context`: repeatedly the most
  // frequent follower of the longest suffix (of context + the tokens chosen
  // so far) that the index holds, ties to the most recently seen follower.
  // Stops early under `options` or when no suffix is known. `confidence`
  // (may be null) receives each token's count / total.
  void propose(std::span<const int32_t> context, int32_t max_tokens,
               const SuffixProposalOptions& options, std::vector<int32_t>& out,
               std::vector<float>* confidence = nullptr) const;

  // State, for tests and statistics.
  int64_t stored_tokens() const;
  int64_t n_sequences() const;
  int64_t n_entries() const;  // distinct contexts indexed
  uint64_t memory_bytes() const;

 private:
  struct Follower {
    int32_t token = 0;
    uint32_t count = 0;
    uint64_t last_seen = 0;  // the stamp of its latest occurrence
  };
  struct Entry {
    uint32_t total = 0;
    std::vector<Follower> followers;
  };
  struct StoredSequence {
    SequenceId id = 0;
    std::deque<int32_t> tokens;  // the tokens still stored
  };

  StoredSequence* find_sequence(SequenceId id);
  void add_token(StoredSequence& sequence, int32_t token);
  void evict_front(StoredSequence& sequence);
  void evict_to_budget(SequenceId keep);
  uint64_t memory_bytes_locked() const;

  SuffixCacheOptions options_;
  mutable std::mutex mutex_;
  std::deque<StoredSequence> sequences_;  // oldest first
  SequenceId next_id_ = 1;
  int64_t stored_tokens_ = 0;
  uint64_t stamp_ = 0;
  uint64_t followers_ = 0;                       // sum of followers.size() over entries
  std::unordered_map<uint64_t, Entry> entries_;  // context hash -> followers
  // Scratch for a token's context hashes (orders 1..max_order).
  std::vector<uint64_t> hashes_;
};

}  // namespace specula

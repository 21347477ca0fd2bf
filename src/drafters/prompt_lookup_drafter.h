// Prompt lookup: the last n tokens of the sequence are looked up in the
// sequence itself (prompt and output so far); the tokens that followed their
// most recent earlier occurrence are proposed. Text that repeats (code
// edits, quoting the prompt, boilerplate) is drafted for almost nothing.
//
// Cost: no model. An index (n-gram hash -> position after its latest
// occurrence, one table per n) is extended as tokens arrive, so a proposal
// costs max_ngram - min_ngram + 1 table look-ups and g copies, and accepting
// k new tokens costs k * (max_ngram - min_ngram + 1) insertions: nothing is
// rescanned. Memory: one table entry per distinct n-gram of the sequence.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "speculative/drafter.h"

namespace specula {

struct PromptLookupOptions {
  // The n-gram sizes tried, longest first: a longer match is more specific,
  // so it is preferred; a shorter one is the fall-back.
  int32_t min_ngram = 1;
  int32_t max_ngram = 3;
};

// Throws Error unless 1 <= min_ngram <= max_ngram <= 64.
void validate(const PromptLookupOptions& options);

class PromptLookupDrafter : public Drafter {
 public:
  explicit PromptLookupDrafter(PromptLookupOptions options = {});

  // "lookup" for the default n-gram sizes, else "lookup:MIN-MAX" (the
  // drafter factory's spec for this drafter).
  std::string name() const override;
  const PromptLookupOptions& options() const { return options_; }

  // Indexes `context` from scratch.
  void begin(std::span<const int32_t> context) override;
  // For n = max_ngram down to min_ngram: when the last n tokens occurred
  // before, proposes up to g tokens that followed their latest earlier
  // occurrence. The copy may run into the proposal itself (a repeating
  // pattern continues: after "a b a b" it proposes "a b a b ..."). Proposes
  // nothing when no n-gram matches. Deterministic: probs stay empty.
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Indexes the tokens `context` added.
  void accept(std::span<const int32_t> context, int32_t n_accepted) override;
  // A few hash look-ups per proposal.
  bool proposes_for_free() const override { return true; }

  // The sequence and its n-gram tables, estimated (cache_bytes).
  DrafterMemory memory() const override;

  // Tokens indexed so far (tests).
  size_t indexed_tokens() const { return tokens_.size(); }

 private:
  // Brings the index up to `context`: appends the new tokens, or rebuilds
  // when `context` does not extend what was indexed.
  void sync(std::span<const int32_t> context);
  void append(int32_t token);
  uint64_t hash_ngram(const int32_t* first, int32_t n) const;

  PromptLookupOptions options_;
  std::vector<int32_t> tokens_;  // the sequence as indexed
  // tables_[n - min_ngram]: hash of an n-gram -> index just after its latest
  // occurrence that has a following token (so the sequence's own last n
  // tokens are never their own match).
  std::vector<std::unordered_map<uint64_t, int32_t>> tables_;
};

}  // namespace specula

// What every drafter that runs a transformer forward has in common: a KV
// cache of its own kept in step with the sequence, and the propose loop
// that reads one token per single-row forward. The model drafter, the self
// drafter and the learning drafter differ only in how one forward runs
// (a draft model, the target's first k layers, swapped-in weights), so
// they derive from this class and implement run_forward; the loop, its
// stopping rule and the cache catch-up are written once here, so the three
// cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "speculative/drafter.h"

namespace specula {

class ForwardDrafter : public Drafter {
 public:
  // The drafter's own cache (for memory statistics).
  const KvCache& cache() const { return cache_; }

  // Prefills the cache with all of `context` but the last token, keeping
  // the rows of the prefix it shares with what the cache holds.
  void begin(std::span<const int32_t> context) override;
  // Catches the cache up with `context` (the tokens it lacks: usually the
  // last accepted and the correction or bonus token), then runs single-row
  // forwards, each drawing x_i from q_i = the transformed logits (argmax
  // when greedy, with no probs: a greedy draft is deterministic). Fills
  // out.confidence (q_i(x_i), or softmax(logits)[x_i] when greedy) and stops
  // after a token whose confidence is below out.stop_confidence. Never
  // drafts past the cache's n_ctx rows: g shrinks to what fits.
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Rolls the cache back to the longest prefix it shares with `context`.
  void accept(std::span<const int32_t> context, int32_t n_accepted) override;
  // Its KV cache (kv_bytes); drafters with a weight file of their own add it.
  DrafterMemory memory() const override;

 protected:
  // The cache starts empty (no rows to hold); a derived constructor hands
  // its real one to replace_cache once it has checked its arguments.
  ForwardDrafter() = default;

  // Installs `cache` (empty) and forgets every cached token: for the
  // constructor, and after the weights change (keys and values of the old
  // weights are useless to the new ones).
  void replace_cache(KvCache cache);

 private:
  // Runs `rows` through the drafting model, appending their keys and values
  // to `cache` and writing the logits of the rows with want_logits to
  // `logits` (n_vocab floats each), as Model::forward does.
  virtual void run_forward(std::span<const BatchRow> rows, KvCache& cache,
                           std::vector<float>& logits) = 0;

  // Truncates the cache to its common prefix with `context`, capped at
  // `max_length` tokens.
  void roll_back(std::span<const int32_t> context, size_t max_length);
  // Feeds the tokens context[cached_tokens_.size()..) the cache lacks;
  // logits of the last one when `want_logits`.
  void feed(std::span<const int32_t> context, bool want_logits);

  KvCache cache_;
  std::vector<int32_t> cached_tokens_;  // the tokens whose rows cache_ holds
  std::vector<BatchRow> rows_;
  std::vector<float> logits_;  // n_vocab: the last forward's wanted row
};

}  // namespace specula

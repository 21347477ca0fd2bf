// A draft model: a smaller transformer with the target's vocabulary, run
// one token at a time in its own KV cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "spec/drafter.h"

namespace specula {

// Throws Error naming both files when the draft cannot propose tokens for
// the target: a different n_vocab, or token lists (tokenizer.ggml.tokens)
// that differ when both files carry one.
void check_same_vocabulary(const Model& target, const Model& draft);

class ModelDrafter : public Drafter {
 public:
  // `draft` (and `pool`, may be null) must outlive the drafter. Its cache
  // holds n_ctx positions: as many as the target's.
  ModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool);

  std::string name() const override;
  const KvCache& cache() const { return cache_; }

  // Prefills the draft cache with all of `context` but the last token.
  void begin(std::span<const int32_t> context) override;
  // Catches the cache up with `context` (the tokens it lacks: usually the
  // last accepted and the correction or bonus token), then runs g single-row
  // forwards, each drawing x_i from q_i = the transformed logits (argmax when
  // greedy, with no probs: a greedy draft is deterministic). Fills
  // out.confidence (q_i(x_i), or softmax(logits)[x_i] when greedy) and stops
  // after a token whose confidence is below out.stop_confidence.
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Rolls the cache back to the longest prefix it shares with `context`.
  void accept(std::span<const int32_t> context, int32_t n_accepted) override;

 private:
  // Truncates the cache to its common prefix with `context`, capped at
  // `max_length`.
  void roll_back(std::span<const int32_t> context, size_t max_length);
  // Feeds cached-missing tokens context[from..) ; logits for the last row
  // when `want_logits`.
  void feed(std::span<const int32_t> context, bool want_logits);

  const Model& model_;
  ThreadPool* pool_;
  KvCache cache_;
  std::vector<int32_t> cached_tokens_;  // the tokens whose rows cache_ holds
  std::vector<BatchRow> rows_;
  std::vector<float> logits_;
};

}  // namespace specula

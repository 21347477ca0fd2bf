// The decoding loop for one request: plain decoding and speculative decoding
// are the same loop (plain is g = 0 or no drafter). Each step a draft-length
// policy chooses g (0..draft_max) and, with several drafters, a bandit
// chooses which one proposes; neither touches verification, so the output
// stays exact whatever they choose. The steps themselves live in
// generation_step.h, where a batching scheduler can drive many sequences.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "speculative/generation_options.h"
#include "speculative/generation_step.h"

namespace specula {

class Generator {
 public:
  // `target` (and `pool`, which may be null for one thread) must outlive the
  // Generator. The sequence (prompt + generated) never exceeds n_ctx tokens.
  Generator(const Model& target, int32_t n_ctx, ThreadPool* pool);

  int32_t n_ctx() const { return n_ctx_; }
  const KvCache& cache() const { return cache_; }

  // Generates after `prompt` with the drafters, policy and bandit of
  // `speculation`. Throws Error for an empty prompt, a prompt longer than
  // n_ctx, ids outside the vocabulary or bad options.
  // Reproducible (the same inputs and options.sampling.seed give the same
  // tokens) with the fixed, heuristic and confidence policies and one
  // drafter. The adaptive policy and the bandit decide from measured time,
  // so at temperature > 0 two runs may draft differently and then draw
  // different (equally distributed) tokens; at temperature 0 the tokens are
  // always those of plain greedy decoding.
  GenerationOutput generate(std::span<const int32_t> prompt, const Speculation& speculation,
                            const GeneratorOptions& options, const TokenCallback& on_token = {});
  // One drafter (null: plain decoding), g = options.draft_max every step.
  GenerationOutput generate(std::span<const int32_t> prompt, Drafter* drafter,
                            const GeneratorOptions& options, const TokenCallback& on_token = {});
  // generate(), keeping the cache rows of the longest prefix `prompt` shares
  // with the previous call's sequence (its prompt and generated tokens) and
  // prefilling only the rest: the next turn of a conversation costs only its
  // new tokens. Forwards are bit-identical whatever the batch (docs/
  // kernels.md), so the tokens are exactly those of generate(prompt).
  GenerationOutput generate_continuing(std::span<const int32_t> prompt,
                                       const Speculation& speculation,
                                       const GeneratorOptions& options,
                                       const TokenCallback& on_token = {});
  // Of the last call's prompt: the tokens whose cache rows were kept, and
  // those run through the target (the prefill and the first verify row).
  int32_t reused_tokens() const { return reused_tokens_; }
  int32_t prefilled_tokens() const { return prefilled_tokens_; }

 private:
  const Model& target_;
  int32_t n_ctx_;
  ThreadPool* pool_;
  KvCache cache_;  // one sequence, id 0
  // Reused across steps and calls so that the loop does not allocate once warm.
  SequenceState sequence_;
  TargetBatch batch_;
  FixedPolicy default_policy_{PolicyOptions{.kind = PolicyKind::kFixed}};
  // The tokens whose rows cache_ holds, for generate_continuing.
  std::vector<int32_t> cached_tokens_;
  int32_t reused_tokens_ = 0;
  int32_t prefilled_tokens_ = 0;

  GenerationOutput run(std::span<const int32_t> prompt, const Speculation& speculation,
                       const GeneratorOptions& options, const TokenCallback& on_token,
                       bool keep_prefix);
};

}  // namespace specula

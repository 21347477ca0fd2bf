#include "speculative/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Generator::Generator(const Model& target, int32_t n_ctx, ThreadPool* pool)
    : target_(target), n_ctx_(n_ctx), pool_(pool) {
  if (n_ctx < 1) fail("the context size n_ctx is ", n_ctx, ": it must be at least 1 token");
  cache_ = target.make_cache(n_ctx, 1);
}

GenerationOutput Generator::generate(std::span<const int32_t> prompt, Drafter* drafter,
                                     const GeneratorOptions& options,
                                     const TokenCallback& on_token) {
  Speculation speculation;
  if (drafter) speculation.drafters.push_back(drafter);
  return generate(prompt, speculation, options, on_token);
}

GenerationOutput Generator::generate(std::span<const int32_t> prompt,
                                     const Speculation& speculation,
                                     const GeneratorOptions& options,
                                     const TokenCallback& on_token) {
  return run(prompt, speculation, options, on_token, false);
}

GenerationOutput Generator::generate_continuing(std::span<const int32_t> prompt,
                                                const Speculation& speculation,
                                                const GeneratorOptions& options,
                                                const TokenCallback& on_token) {
  return run(prompt, speculation, options, on_token, true);
}

GenerationOutput Generator::run(std::span<const int32_t> prompt, const Speculation& speculation,
                                const GeneratorOptions& options, const TokenCallback& on_token,
                                bool keep_prefix) {
  const Clock::time_point start = Clock::now();
  SequenceSetup setup;
  setup.n_ctx = n_ctx_;
  setup.n_vocab = target_.config().n_vocab;
  setup.options = &options;
  setup.drafters = speculation.drafters;
  setup.policy = speculation.policy ? speculation.policy : &default_policy_;
  setup.bandit = speculation.bandit;
  SequenceState& sequence = sequence_;
  start_sequence(sequence, setup, prompt);

  // The last prompt token's row opens the first verify pass: never reused.
  size_t reused = 0;
  if (keep_prefix) {
    const size_t limit = std::min(cached_tokens_.size(), prompt.size() - 1);
    while (reused < limit && cached_tokens_[reused] == prompt[reused]) ++reused;
  }
  cached_tokens_.clear();  // until the loop is done, should anything throw
  reused_tokens_ = static_cast<int32_t>(reused);
  prefilled_tokens_ = static_cast<int32_t>(prompt.size() - reused);

  // Prefill: every prompt token but the last (and but those kept), in one
  // batched forward.
  cache_.truncate(0, reused_tokens_);
  batch_.clear();
  append_prefill_rows(sequence, batch_, reused_tokens_);
  if (!batch_.rows.empty()) target_.forward(batch_.rows, cache_, batch_.logits, pool_);
  begin_drafting(sequence);
  sequence.recorder.record_prefill(seconds_since(start));

  while (ready_for_step(sequence)) {
    plan_step(sequence);
    draft_step(sequence);
    // One target pass over the last token and the drafted ones.
    const Clock::time_point target_start = Clock::now();
    batch_.clear();
    append_verify_rows(sequence, batch_);
    target_.forward(batch_.rows, cache_, batch_.logits, pool_);
    record_target_pass(sequence, seconds_since(target_start));
    const std::span<const float> logits = verify_logits(sequence, batch_);
    verify_step(sequence, logits);
    commit_step(sequence, logits, cache_, on_token);
  }
  cached_tokens_.assign(sequence.tokens.begin(), sequence.tokens.begin() + cache_.length(0));
  return finish_sequence(sequence, seconds_since(start));
}

}  // namespace specula

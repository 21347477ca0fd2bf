#include "speculative/generator.h"

#include <algorithm>
#include <cassert>
#include <chrono>

#include "core/error.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_options(const GeneratorOptions& options) {
  validate(options.sampling);
  if (options.max_new_tokens < 0) {
    fail("the number of tokens to generate (-n) is ", options.max_new_tokens, ": it must be >= 0");
  }
  if (options.draft_max < 0) {
    fail("the draft length (--draft-max) is ", options.draft_max,
         ": it must be >= 0 (0 turns speculation off)");
  }
}

}  // namespace

Generator::Generator(const Model& target, int32_t n_ctx, ThreadPool* pool)
    : target_(target), n_ctx_(n_ctx), pool_(pool) {
  if (n_ctx < 1) fail("the context size is ", n_ctx, ": it must be at least 1 token");
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
  const Clock::time_point start = Clock::now();
  check_options(options);
  const int32_t n_vocab = target_.config().n_vocab;
  if (prompt.empty()) fail("the prompt is empty: give at least one token");
  if (prompt.size() > static_cast<size_t>(n_ctx_)) {
    fail("the prompt has ", prompt.size(), " tokens but the context holds ", n_ctx_,
         ": shorten the prompt or raise --ctx");
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= n_vocab) {
      fail("prompt token id ", id, " is outside the vocabulary (0..", n_vocab - 1, ")");
    }
  }
  const std::vector<Drafter*>& drafters = speculation.drafters;
  const int32_t n_drafters = static_cast<int32_t>(drafters.size());
  for (Drafter* d : drafters) {
    if (d == nullptr) fail("a null drafter was given to the generator");
  }
  if (speculation.bandit && speculation.bandit->n_arms() < n_drafters) {
    fail("the drafter bandit has ", speculation.bandit->n_arms(), " arms for ", n_drafters,
         " drafters");
  }
  DraftLengthPolicy& policy = speculation.policy ? *speculation.policy : default_policy_;
  DrafterBandit* bandit = n_drafters > 1 ? speculation.bandit : nullptr;
  const bool speculative = n_drafters > 0 && options.draft_max > 0;

  GenerationOutput out;
  GenerationStats& stats = out.stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  stats.draft_max = speculative ? options.draft_max : 0;
  stats.drafted_at.assign(stats.draft_max, 0);
  stats.accepted_at.assign(stats.draft_max, 0);
  stats.policy = speculative ? std::string(policy_name(policy.kind())) : "plain";
  stats.draft_length_steps.assign(stats.draft_max + 1, 0);
  for (Drafter* d : drafters) {
    DrafterUsage usage;
    usage.name = d->name();
    usage.drafted_at.assign(stats.draft_max, 0);
    usage.accepted_at.assign(stats.draft_max, 0);
    stats.drafters.push_back(std::move(usage));
  }
  out.tokens.reserve(options.max_new_tokens);

  const SamplingParams& sampling = options.sampling;
  const bool greedy = sampling.greedy();
  Rng rng(sampling.seed);
  // The bandit's own stream: choosing a drafter never shifts the random
  // numbers the drafters and the verifier draw.
  Rng bandit_rng(sampling.seed ^ 0x9e3779b97f4a7c15ULL);
  Verifier exact_verifier;
  Verifier& verifier = options.verifier ? *options.verifier : exact_verifier;
  std::vector<int32_t> sequence(prompt.begin(), prompt.end());
  sequence.reserve(n_ctx_);

  // Prefill: every prompt token but the last, in one batched forward.
  cache_.clear();
  rows_.clear();
  for (size_t i = 0; i + 1 < sequence.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), sequence[i], false});
  }
  if (!rows_.empty()) target_.forward(rows_, cache_, logits_, pool_);
  for (Drafter* d : drafters) d->begin(sequence);
  policy.begin_sequence(speculative ? options.draft_max : 0, n_drafters);
  if (bandit) bandit->begin_sequence();
  stats.prefill_seconds = seconds_since(start);

  // Appends one token unless it ends generation; false when generation stops.
  auto emit = [&](int32_t token) {
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
        options.stop_tokens.end()) {
      stats.stop_reason = StopReason::kEndOfGeneration;
      return false;
    }
    sequence.push_back(token);
    out.tokens.push_back(token);
    ++stats.generated_tokens;
    if (on_token && !on_token(token)) {
      stats.stop_reason = StopReason::kCancelled;
      return false;
    }
    if (out.tokens.size() >= static_cast<size_t>(options.max_new_tokens)) {
      stats.stop_reason = StopReason::kMaxTokens;
      return false;
    }
    return true;
  };

  // The policy's predictions for the steps it chose, against plain decoding.
  double predicted_tokens = 0, predicted_seconds = 0, stop_confidence_sum = 0;
  int64_t drafting_steps = 0;

  while (stats.stop_reason == StopReason::kNone) {
    const int32_t length = static_cast<int32_t>(sequence.size());
    const int32_t remaining = options.max_new_tokens - static_cast<int32_t>(out.tokens.size());
    if (remaining <= 0) {
      stats.stop_reason = StopReason::kMaxTokens;
      break;
    }
    if (length >= n_ctx_) {
      stats.stop_reason = StopReason::kContextFull;
      break;
    }

    // A step yields up to g+1 tokens: draft no more than fits in the context
    // and in -n. The policy chooses g within that; the bandit, among the
    // drafters the policy would run, which one proposes.
    const int32_t limit =
        speculative ? std::min({options.draft_max, n_ctx_ - length - 1, remaining - 1}) : 0;
    int32_t slot = -1;
    StepPlan plan;
    if (limit > 0) {
      if (bandit) {
        candidates_.clear();
        for (int32_t d = 0; d < n_drafters; ++d) {
          if (policy.plan(d, limit).draft_length > 0) candidates_.push_back(d);
        }
        if (!candidates_.empty()) {
          slot = bandit->choose(candidates_, bandit_rng);
          plan = policy.plan(slot, limit);
        }
      } else {
        plan = policy.plan(0, limit);
        if (plan.draft_length > 0) slot = 0;
      }
    }
    const int32_t chosen = slot >= 0 ? std::min(plan.draft_length, limit) : 0;
    if (speculative) {
      ++stats.draft_length_steps[chosen];
      predicted_tokens += policy.estimates().expected_tokens(slot, chosen);
      predicted_seconds += policy.estimates().step_seconds(slot, chosen);
    }

    int32_t g = 0;
    double propose_seconds = 0;
    proposal_.clear();
    proposal_.stop_confidence = plan.stop_confidence;
    if (chosen > 0) {
      const Clock::time_point draft_start = Clock::now();
      drafters[slot]->propose(sequence, chosen, sampling, rng, proposal_);
      propose_seconds = seconds_since(draft_start);
      stats.draft_seconds += propose_seconds;
      assert(proposal_.tokens.size() <= static_cast<size_t>(chosen));
      g = static_cast<int32_t>(proposal_.tokens.size());
      for (int32_t id : proposal_.tokens) {
        if (id < 0 || id >= n_vocab) {
          fail("drafter '", drafters[slot]->name(), "' proposed id ", id);
        }
      }
      ++drafting_steps;
      stop_confidence_sum += plan.stop_confidence;
      if (plan.probe) ++stats.probe_steps;
      if (g < chosen && !proposal_.confidence.empty() &&
          proposal_.confidence.back() < plan.stop_confidence) {
        ++stats.early_stops;
      }
    }

    // One target pass over the last token and the drafted ones.
    const Clock::time_point target_start = Clock::now();
    rows_.clear();
    rows_.push_back({0, length - 1, sequence.back(), true});
    for (int32_t i = 0; i < g; ++i) rows_.push_back({0, length + i, proposal_.tokens[i], true});
    target_.forward(rows_, cache_, logits_, pool_);
    ++stats.target_passes;
    const double target_seconds = seconds_since(target_start);
    stats.target_seconds += target_seconds;

    const Clock::time_point sampling_start = Clock::now();
    VerifyResult result;
    if (greedy) {
      result = verify_greedy(proposal_.tokens, logits_, n_vocab);
    } else {
      probs_.resize(static_cast<size_t>(g + 1) * n_vocab);
      for (int32_t i = 0; i <= g; ++i) {
        const size_t offset = static_cast<size_t>(i) * n_vocab;
        logits_to_probs(std::span<const float>(logits_).subspan(offset, n_vocab), sampling,
                        std::span<float>(probs_).subspan(offset, n_vocab));
      }
      result = verifier.verify(proposal_, probs_, n_vocab, false, rng);
    }
    const double sampling_seconds = seconds_since(sampling_start);
    stats.sampling_seconds += sampling_seconds;

    stats.drafted_tokens += g;
    stats.accepted_tokens += result.n_accepted;
    for (int32_t i = 0; i < g; ++i) {
      ++stats.drafted_at[i];
      if (i < result.n_accepted) ++stats.accepted_at[i];
    }

    bool go_on = true;
    for (int32_t i = 0; i < result.n_accepted && go_on; ++i) go_on = emit(proposal_.tokens[i]);
    if (go_on && result.next_token >= 0) go_on = emit(result.next_token);

    // Roll back the rows of rejected positions; the newest token stays out.
    cache_.truncate(0, static_cast<int32_t>(sequence.size()) - 1);
    // Rows 0..k condition on the sequence as it now is; fewer when emission
    // stopped inside the step.
    const int32_t emitted = static_cast<int32_t>(sequence.size()) - length;
    const int32_t n_rows = std::min(result.n_accepted, emitted) + 1;
    for (Drafter* d : drafters) {
      d->observe_target(
          sequence, length,
          std::span<const float>(logits_).first(static_cast<size_t>(n_rows) * n_vocab), n_rows,
          n_vocab);
    }
    // Also after the last step: drafters that learn from what was generated
    // (the suffix cache, online distillation) must see the final tokens.
    double accept_seconds = 0;
    for (int32_t d = 0; d < n_drafters; ++d) {
      const Clock::time_point accept_start = Clock::now();
      drafters[d]->accept(sequence, d == slot ? result.n_accepted : 0);
      const double seconds = seconds_since(accept_start);
      stats.draft_seconds += seconds;
      stats.drafters[d].seconds += seconds;
      if (d == slot) accept_seconds = seconds;
    }

    // What the step cost and gave, for the policy's estimates and the bandit.
    StepOutcome outcome;
    outcome.slot = chosen > 0 ? slot : -1;
    outcome.requested = chosen;
    outcome.drafted = g;
    outcome.accepted = result.n_accepted;
    outcome.confidence = proposal_.confidence;
    outcome.draft_seconds = propose_seconds + accept_seconds;
    outcome.verify_seconds = target_seconds + sampling_seconds;
    outcome.probe = plan.probe;
    policy.observe(outcome);
    if (chosen > 0) {
      DrafterUsage& usage = stats.drafters[slot];
      ++usage.steps;
      usage.drafted_tokens += g;
      usage.accepted_tokens += result.n_accepted;
      usage.seconds += propose_seconds;
      for (int32_t i = 0; i < g; ++i) {
        ++usage.drafted_at[i];
        if (i < result.n_accepted) ++usage.accepted_at[i];
      }
      const double step_seconds = outcome.draft_seconds + outcome.verify_seconds;
      if (bandit && step_seconds > 0) {
        bandit->observe(slot, (result.n_accepted + 1) / step_seconds);
      }
    }
    if (!go_on) break;
  }
  stats.total_seconds = seconds_since(start);

  const double plain_rate = policy.estimates().plain_tokens_per_second();
  stats.plain_tokens_per_second_estimate = plain_rate;
  if (plain_rate > 0 && predicted_seconds > 0) {
    stats.estimated_speedup = predicted_tokens / predicted_seconds / plain_rate;
    stats.realised_speedup = stats.decode_tokens_per_second() / plain_rate;
  }
  if (drafting_steps > 0) stats.mean_stop_confidence = stop_confidence_sum / drafting_steps;
  return out;
}

}  // namespace specula

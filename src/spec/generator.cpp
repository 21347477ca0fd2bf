#include "spec/generator.h"

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

  GenerationOutput out;
  GenerationStats& stats = out.stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());
  stats.draft_max = drafter ? options.draft_max : 0;
  stats.drafted_at.assign(stats.draft_max, 0);
  stats.accepted_at.assign(stats.draft_max, 0);
  out.tokens.reserve(options.max_new_tokens);

  const SamplingParams& sampling = options.sampling;
  const bool greedy = sampling.greedy();
  Rng rng(sampling.seed);
  Verifier verifier(options.verify_rule);
  std::vector<int32_t> sequence(prompt.begin(), prompt.end());
  sequence.reserve(n_ctx_);

  // Prefill: every prompt token but the last, in one batched forward.
  cache_.clear();
  rows_.clear();
  for (size_t i = 0; i + 1 < sequence.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), sequence[i], false});
  }
  if (!rows_.empty()) target_.forward(rows_, cache_, logits_, pool_);
  if (drafter) drafter->begin(sequence);
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
    // and in -n.
    int32_t g = 0;
    proposal_.tokens.clear();
    if (drafter) {
      g = std::min({options.draft_max, n_ctx_ - length - 1, remaining - 1});
      if (g > 0) {
        const Clock::time_point draft_start = Clock::now();
        drafter->propose(sequence, g, sampling, rng, proposal_);
        stats.draft_seconds += seconds_since(draft_start);
        assert(proposal_.tokens.size() <= static_cast<size_t>(g));
        g = static_cast<int32_t>(proposal_.tokens.size());
      }
    }
    for (int32_t id : proposal_.tokens) {
      if (id < 0 || id >= n_vocab) fail("drafter '", drafter->name(), "' proposed id ", id);
    }

    // One target pass over the last token and the drafted ones.
    const Clock::time_point target_start = Clock::now();
    rows_.clear();
    rows_.push_back({0, length - 1, sequence.back(), true});
    for (int32_t i = 0; i < g; ++i) rows_.push_back({0, length + i, proposal_.tokens[i], true});
    target_.forward(rows_, cache_, logits_, pool_);
    ++stats.target_passes;
    stats.target_seconds += seconds_since(target_start);

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
    stats.sampling_seconds += seconds_since(sampling_start);

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
    if (drafter) {
      // Rows 0..k condition on the sequence as it now is; fewer when
      // emission stopped inside the step.
      const int32_t emitted = static_cast<int32_t>(sequence.size()) - length;
      const int32_t n_rows = std::min(result.n_accepted, emitted) + 1;
      drafter->observe_target(
          sequence, length,
          std::span<const float>(logits_).first(static_cast<size_t>(n_rows) * n_vocab), n_rows,
          n_vocab);
    }
    if (!go_on) break;
    if (drafter) {
      const Clock::time_point accept_start = Clock::now();
      drafter->accept(sequence, result.n_accepted);
      stats.draft_seconds += seconds_since(accept_start);
    }
  }
  stats.total_seconds = seconds_since(start);
  return out;
}

}  // namespace specula

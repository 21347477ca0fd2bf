#include "speculative/generation_step.h"

#include <algorithm>
#include <cassert>
#include <chrono>

#include "core/error.h"
#include "speculative/shadow_drafts.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_options(const GeneratorOptions& options) {
  validate(options.sampling);
  if (options.max_new_tokens < 0) {
    fail("GeneratorOptions::max_new_tokens is ", options.max_new_tokens, ": it must be >= 0");
  }
  if (options.draft_max < 0) {
    fail("GeneratorOptions::draft_max is ", options.draft_max,
         ": it must be >= 0 (0 turns speculation off)");
  }
}

void check_request(const SequenceSetup& setup, std::span<const int32_t> prompt) {
  assert(setup.options && setup.policy);
  check_options(*setup.options);
  if (prompt.empty()) fail("the prompt is empty: give at least one token");
  if (prompt.size() > static_cast<size_t>(setup.n_ctx)) {
    fail("the prompt has ", prompt.size(), " tokens but the context size n_ctx is ", setup.n_ctx,
         ": shorten the prompt or raise n_ctx");
  }
  for (int32_t id : prompt) {
    if (id < 0 || id >= setup.n_vocab) {
      fail("prompt token id ", id, " is outside the vocabulary (0..", setup.n_vocab - 1, ")");
    }
  }
  for (Drafter* d : setup.drafters) {
    if (d == nullptr) fail("a null drafter was given to the generator (Speculation::drafters)");
  }
  const int32_t n_drafters = static_cast<int32_t>(setup.drafters.size());
  if (setup.bandit && setup.bandit->n_arms() < n_drafters) {
    fail("the drafter bandit (Speculation::bandit) has ", setup.bandit->n_arms(), " arms for ",
         n_drafters, " drafters");
  }
}

// Appends one token unless it ends generation; false, with the stop reason
// set, when generation stops.
bool emit(SequenceState& state, int32_t token, const TokenCallback& on_token) {
  const std::vector<int32_t>& stop_tokens = state.options().stop_tokens;
  if (std::find(stop_tokens.begin(), stop_tokens.end(), token) != stop_tokens.end()) {
    state.stop_reason = StopReason::kEndOfGeneration;
    return false;
  }
  state.tokens.push_back(token);
  state.output.push_back(token);
  if (on_token && !on_token(token)) {
    state.stop_reason = StopReason::kCancelled;
    return false;
  }
  if (state.output.size() >= static_cast<size_t>(state.options().max_new_tokens)) {
    state.stop_reason = StopReason::kMaxTokens;
    return false;
  }
  return true;
}

void emit_step_tokens(SequenceState& state, const TokenCallback& on_token) {
  const StepState& step = state.step;
  bool go_on = true;
  for (int32_t i = 0; i < step.result.n_accepted && go_on; ++i) {
    go_on = emit(state, step.proposal.tokens[i], on_token);
  }
  if (go_on && step.result.next_token >= 0) emit(state, step.result.next_token, on_token);
}

// Every drafter sees the target's rows and the new sequence, whichever
// proposed; also after the last step, so that drafters that learn from what
// was generated (the suffix cache, online distillation) see the final tokens.
void update_drafters(SequenceState& state, std::span<const float> logits) {
  StepState& step = state.step;
  const int32_t n_vocab = state.setup.n_vocab;
  // Rows 0..k condition on the sequence as it now is; fewer when emission
  // stopped inside the step.
  const int32_t emitted = static_cast<int32_t>(state.tokens.size()) - step.length;
  const int32_t n_rows = std::min(step.result.n_accepted, emitted) + 1;
  const std::span<const float> kept = logits.first(static_cast<size_t>(n_rows) * n_vocab);
  for (Drafter* d : state.setup.drafters) {
    d->observe_target(state.tokens, step.length, kept, n_rows, n_vocab);
  }
  step.accept_seconds = 0;
  const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
  for (int32_t d = 0; d < n_drafters; ++d) {
    const Clock::time_point start = Clock::now();
    state.setup.drafters[d]->accept(state.tokens, d == step.slot ? step.result.n_accepted : 0);
    const double seconds = seconds_since(start);
    state.recorder.record_accept(d, seconds);
    if (d == step.slot) step.accept_seconds = seconds;
  }
}

// What the step cost and gave, for the policy's estimates and the bandit.
void observe_step(SequenceState& state) {
  const StepState& step = state.step;
  StepOutcome outcome;
  outcome.slot = step.requested > 0 ? step.slot : -1;
  outcome.requested = step.requested;
  outcome.drafted = step.drafted();
  outcome.accepted = step.result.n_accepted;
  outcome.confidence = step.proposal.confidence;
  outcome.draft_seconds = step.propose_seconds + step.accept_seconds;
  outcome.verify_seconds = step.target_seconds + step.sampling_seconds;
  outcome.probe = step.plan.probe;
  state.setup.policy->observe(outcome);
  const double step_seconds = outcome.draft_seconds + outcome.verify_seconds;
  if (step.requested > 0 && state.setup.bandit) {
    state.setup.bandit->observe_step(step.slot, step.result.n_accepted + 1, step_seconds);
  }
}

}  // namespace

Verifier& SequenceState::verifier() {
  return setup.options->verifier ? *setup.options->verifier : exact_verifier;
}

void start_sequence(SequenceState& state, const SequenceSetup& setup,
                    std::span<const int32_t> prompt) {
  check_request(setup, prompt);
  const GeneratorOptions& options = *setup.options;
  state.setup = setup;
  if (setup.drafters.size() < 2) state.setup.bandit = nullptr;
  state.speculative = !setup.drafters.empty() && options.draft_max > 0;
  state.tokens.assign(prompt.begin(), prompt.end());
  state.tokens.reserve(setup.n_ctx);
  state.output.clear();
  state.output.reserve(options.max_new_tokens);
  state.rng = Rng(options.sampling.seed);
  state.bandit_rng = Rng(options.sampling.seed ^ 0x9e3779b97f4a7c15ULL);
  state.stop_reason = StopReason::kNone;
  state.step = StepState();
  state.free_proposals.resize(setup.drafters.size());
  state.shadows.resize(setup.drafters.size());
  for (ShadowDraft& shadow : state.shadows) shadow.pending = false;
  const int32_t draft_max = state.speculative ? options.draft_max : 0;
  const std::string_view policy =
      state.speculative ? policy_name(setup.policy->kind()) : std::string_view("plain");
  state.recorder.begin(static_cast<int64_t>(prompt.size()), draft_max, policy, setup.drafters);
}

void append_prefill_rows(const SequenceState& state, TargetBatch& batch, int32_t first) {
  const std::vector<int32_t>& tokens = state.tokens;
  for (size_t i = static_cast<size_t>(std::max(first, 0)); i + 1 < tokens.size(); ++i) {
    batch.rows.push_back({state.setup.seq, static_cast<int32_t>(i), tokens[i], false});
  }
}

void begin_drafting(SequenceState& state) {
  for (Drafter* d : state.setup.drafters) d->begin(state.tokens);
  const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
  state.setup.policy->begin_sequence(state.speculative ? state.options().draft_max : 0, n_drafters);
  if (state.setup.bandit) state.setup.bandit->begin_sequence();
}

bool ready_for_step(SequenceState& state) {
  if (state.stop_reason != StopReason::kNone) return false;
  if (state.output.size() >= static_cast<size_t>(state.options().max_new_tokens)) {
    state.stop_reason = StopReason::kMaxTokens;
  } else if (state.tokens.size() >= static_cast<size_t>(state.setup.n_ctx)) {
    state.stop_reason = StopReason::kContextFull;
  }
  return state.stop_reason == StopReason::kNone;
}

int32_t draft_limit(const SequenceState& state) {
  if (!state.speculative) return 0;
  const int32_t length = static_cast<int32_t>(state.tokens.size());
  const int32_t remaining =
      state.options().max_new_tokens - static_cast<int32_t>(state.output.size());
  // A step yields up to g+1 tokens.
  return std::max(
      0, std::min({state.options().draft_max, state.setup.n_ctx - length - 1, remaining - 1}));
}

void plan_step(SequenceState& state) {
  StepState& step = state.step;
  const DraftLengthPolicy& policy = *state.setup.policy;
  step.length = static_cast<int32_t>(state.tokens.size());
  step.slot = -1;
  step.plan = StepPlan();
  const int32_t limit = draft_limit(state);
  propose_free(state, limit);
  if (limit > 0 && state.setup.bandit) {
    // The bandit chooses among the drafters the policy would run that have
    // something to propose.
    state.candidates.clear();
    const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
    for (int32_t d = 0; d < n_drafters; ++d) {
      if (policy.plan(d, limit).draft_length > 0 && has_draft(state, d)) {
        state.candidates.push_back(d);
      }
    }
    if (!state.candidates.empty()) {
      step.slot = state.setup.bandit->choose(state.candidates, state.bandit_rng);
      step.plan = policy.plan(step.slot, limit);
    }
  } else if (limit > 0) {
    step.plan = policy.plan(0, limit);
    if (step.plan.draft_length > 0) step.slot = 0;
  }
  step.requested = step.slot >= 0 ? std::min(step.plan.draft_length, limit) : 0;
  if (state.speculative) {
    const SpeculationEstimates& estimates = policy.estimates();
    state.recorder.record_plan(step.requested, estimates.expected_tokens(step.slot, step.requested),
                               estimates.step_seconds(step.slot, step.requested));
  }
  // A policy may plan differently when asked again for the chosen slot.
  if (step.requested == 0) step.slot = -1;
  start_shadows(state, limit);
}

void draft_step(SequenceState& state) {
  StepState& step = state.step;
  step.proposal.clear();
  step.proposal.stop_confidence = step.plan.stop_confidence;
  step.propose_seconds = 0;
  if (step.requested == 0) return;
  Drafter& drafter = *state.setup.drafters[step.slot];
  const Clock::time_point start = Clock::now();
  drafter.propose(state.tokens, step.requested, state.options().sampling, state.rng, step.proposal);
  step.propose_seconds = seconds_since(start);
  assert(step.drafted() <= step.requested);
  for (int32_t id : step.proposal.tokens) {
    if (id < 0 || id >= state.setup.n_vocab) {
      fail("drafter '", drafter.name(), "' proposed id ", id, ", outside the vocabulary (0..",
           state.setup.n_vocab - 1, ")");
    }
  }
  state.recorder.record_draft(step.slot, step.plan, step.requested, step.proposal,
                              step.propose_seconds);
}

void append_verify_rows(SequenceState& state, TargetBatch& batch) {
  StepState& step = state.step;
  const int32_t seq = state.setup.seq;
  const int32_t g = step.drafted();
  step.first_logits_row = batch.n_logit_rows;
  batch.rows.push_back({seq, step.length - 1, state.tokens.back(), true});
  for (int32_t i = 0; i < g; ++i) {
    batch.rows.push_back({seq, step.length + i, step.proposal.tokens[i], true});
  }
  batch.n_logit_rows += g + 1;
}

std::span<const float> verify_logits(const SequenceState& state, const TargetBatch& batch) {
  const size_t n_vocab = static_cast<size_t>(state.setup.n_vocab);
  const size_t n_rows = static_cast<size_t>(state.step.drafted() + 1);
  assert(batch.logits.size() >= (state.step.first_logits_row + n_rows) * n_vocab);
  return std::span<const float>(batch.logits)
      .subspan(static_cast<size_t>(state.step.first_logits_row) * n_vocab, n_rows * n_vocab);
}

void record_target_pass(SequenceState& state, double seconds) {
  state.step.target_seconds = seconds;
  state.recorder.record_target_pass(seconds);
}

void verify_step(SequenceState& state, std::span<const float> logits) {
  StepState& step = state.step;
  const SamplingParams& sampling = state.options().sampling;
  const int32_t n_vocab = state.setup.n_vocab;
  const int32_t g = step.drafted();
  const Clock::time_point start = Clock::now();
  if (sampling.greedy()) {
    step.result = verify_greedy(step.proposal.tokens, logits, n_vocab);
  } else {
    state.probs.resize(static_cast<size_t>(g + 1) * n_vocab);
    for (int32_t i = 0; i <= g; ++i) {
      const size_t offset = static_cast<size_t>(i) * n_vocab;
      logits_to_probs(logits.subspan(offset, n_vocab), sampling,
                      std::span<float>(state.probs).subspan(offset, n_vocab));
    }
    step.result = state.verifier().verify(step.proposal, state.probs, n_vocab, false, state.rng);
  }
  step.sampling_seconds = seconds_since(start);
  state.recorder.record_verify(step.slot, g, step.result.n_accepted, step.sampling_seconds);
}

void commit_step(SequenceState& state, std::span<const float> logits, KvCache& cache,
                 const TokenCallback& on_token) {
  emit_step_tokens(state, on_token);
  // Roll back the rows of rejected positions; the newest token stays out.
  cache.truncate(state.setup.seq, static_cast<int32_t>(state.tokens.size()) - 1);
  update_drafters(state, logits);
  observe_step(state);
  score_shadows(state);
}

GenerationOutput finish_sequence(SequenceState& state, double total_seconds) {
  GenerationOutput out;
  out.stats = state.recorder.finish(state.stop_reason, static_cast<int64_t>(state.output.size()),
                                    total_seconds, state.setup.policy->estimates());
  out.tokens = std::move(state.output);
  state.output = std::vector<int32_t>();
  return out;
}

}  // namespace specula

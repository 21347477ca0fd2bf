// Draft-length policies: per step, how many tokens to draft (g, 0 for a
// plain step) and below which confidence the drafter should stop early.
// They only choose what is drafted; verification is untouched, so every
// policy keeps the output exact.
//
// A policy object outlives sequences (the Engine keeps one across requests):
// its estimates (policy_estimates.h) carry over as a prior, its per-sequence
// state restarts at begin_sequence(). It never reads a clock: the Generator
// reports measured seconds through observe(), tests report synthetic ones.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "policies/policy_estimates.h"
#include "specula/policy_kind.h"

namespace specula {

struct StepPlan {
  int32_t draft_length = 0;      // g to ask the drafter for; 0: a plain step
  float stop_confidence = 0.0f;  // DraftProposal::stop_confidence
  bool probe = false;            // a short draft to re-test a drafter switched off
};

struct AdaptiveOptions {
  // Hysteresis: speculation with a drafter is switched off when its best
  // estimated tokens/s falls below plain decoding's * (1 + off_margin), and
  // on again only when it beats plain's * (1 + on_margin).
  double off_margin = 0.0;
  double on_margin = 0.05;
  // While off: a probe of probe_length tokens every probe interval steps;
  // the interval doubles after each probe that did not pay (up to the max)
  // and falls back to the min after one that did.
  int32_t probe_length = 2;
  int32_t probe_interval_min = 4;
  int32_t probe_interval_max = 256;
  // While speculating, one plain step every this many steps keeps t_verify(1)
  // (plain decoding's cost, the yardstick) current; 0 never.
  int32_t plain_refresh_steps = 64;
  // Every this many drafting steps of a drafter, draft one token more than
  // the best estimated g (within the limit), so that the next length's
  // acceptance and cost are measured and not only assumed; 0 never.
  int32_t explore_interval = 8;
  // Stop a draft early below the confidence whose tokens do not pay for
  // one more draft token (learned from the acceptance by confidence).
  bool learn_confidence_stop = true;
  // At a new sequence, every count is capped to this many observations.
  double carry_over_trials = 16.0;
};

struct PolicyOptions {
  PolicyKind kind = PolicyKind::kAdaptive;
  float confidence_threshold = 0.4f;  // kConfidence: stop after a token below this
  AdaptiveOptions adaptive;
  AcceptanceOptions acceptance;
  CostOptions cost;
};

// Throws Error for options out of range (a threshold outside [0, 1], ...).
void validate(const PolicyOptions& options);

class DraftLengthPolicy {
 public:
  explicit DraftLengthPolicy(const PolicyOptions& options);
  virtual ~DraftLengthPolicy() = default;
  virtual PolicyKind kind() const = 0;

  // A new sequence, drafting at most draft_max tokens per step with drafters
  // in slots 0..n_drafters-1.
  void begin_sequence(int32_t draft_max, int32_t n_drafters = 1);
  int32_t draft_max() const { return draft_max_; }
  int32_t n_drafters() const { return n_drafters_; }

  // The plan for drafter `slot` (its index in the Generator's drafter list)
  // for this step, drafting at most `limit` tokens (<= draft_max; the
  // context or -n may allow fewer). Const, so it can be asked for every
  // drafter while only one runs.
  virtual StepPlan plan(int32_t slot, int32_t limit) const = 0;

  // After every step, a plain one too (outcome.slot -1 or drafted 0).
  void observe(const StepOutcome& outcome);
  // A scored shadow draft of `slot` (SpeculationEstimates::observe_shadow).
  void observe_shadow(int32_t slot, int32_t drafted, int32_t matched) {
    estimates_.observe_shadow(slot, drafted, matched);
  }

  const SpeculationEstimates& estimates() const { return estimates_; }

 protected:
  virtual void on_begin_sequence() {}
  virtual void on_observe(const StepOutcome& outcome) { (void)outcome; }

  PolicyOptions options_;
  int32_t draft_max_ = 0;
  int32_t n_drafters_ = 1;
  SpeculationEstimates estimates_;
};

// g = limit every step: the classic fixed draft length.
class FixedPolicy : public DraftLengthPolicy {
 public:
  using DraftLengthPolicy::DraftLengthPolicy;
  PolicyKind kind() const override { return PolicyKind::kFixed; }
  StepPlan plan(int32_t slot, int32_t limit) const override;
};

// Hugging Face's schedule: starts at draft_max; +2 after a step whose every
// drafted token was accepted, -1 otherwise; within 1..draft_max.
class HeuristicPolicy : public DraftLengthPolicy {
 public:
  using DraftLengthPolicy::DraftLengthPolicy;
  PolicyKind kind() const override { return PolicyKind::kHeuristic; }
  StepPlan plan(int32_t slot, int32_t limit) const override;
  int32_t current() const { return current_; }

 protected:
  void on_begin_sequence() override;
  void on_observe(const StepOutcome& outcome) override;

 private:
  int32_t current_ = 0;
};

// g = limit, stopping after a token below options.confidence_threshold.
class ConfidencePolicy : public DraftLengthPolicy {
 public:
  using DraftLengthPolicy::DraftLengthPolicy;
  PolicyKind kind() const override { return PolicyKind::kConfidence; }
  StepPlan plan(int32_t slot, int32_t limit) const override;
};

// Validates and builds the policy of options.kind.
std::unique_ptr<DraftLengthPolicy> make_policy(const PolicyOptions& options);

}  // namespace specula

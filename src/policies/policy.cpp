#include "policies/policy.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "policies/policy_adaptive.h"

namespace specula {

std::string_view policy_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kAdaptive:
      return "adaptive";
    case PolicyKind::kFixed:
      return "fixed";
    case PolicyKind::kHeuristic:
      return "heuristic";
    case PolicyKind::kConfidence:
      return "confidence";
  }
  return "adaptive";
}

PolicyKind parse_policy(std::string_view name) {
  for (PolicyKind kind : {PolicyKind::kAdaptive, PolicyKind::kFixed, PolicyKind::kHeuristic,
                          PolicyKind::kConfidence}) {
    if (name == policy_name(kind)) return kind;
  }
  fail("unknown draft policy '", std::string(name),
       "': use adaptive (the default), fixed, heuristic or confidence");
}

void validate(const PolicyOptions& options) {
  if (!(options.confidence_threshold >= 0.0f && options.confidence_threshold <= 1.0f)) {
    fail("PolicyOptions::confidence_threshold is ", options.confidence_threshold,
         ": it must be in [0, 1] (0 never stops a draft early)");
  }
  const AdaptiveOptions& a = options.adaptive;
  if (a.probe_length < 1 || a.probe_interval_min < 1 ||
      a.probe_interval_max < a.probe_interval_min || a.plain_refresh_steps < 0 ||
      a.carry_over_trials < 0 || a.explore_interval < 0) {
    fail("adaptive policy options out of range: probe length and intervals must be >= 1 (min <= ",
         "max), plain refresh, exploration interval and carry-over >= 0");
  }
  const AcceptanceOptions& acc = options.acceptance;
  if (!(acc.decay > 0.0 && acc.decay <= 1.0) || !(acc.prior_mean >= 0.0 && acc.prior_mean <= 1.0) ||
      acc.prior_weight <= 0.0 || acc.pooling_weight < 0.0 || acc.max_positions < 1) {
    fail("acceptance estimate options out of range: decay in (0, 1], prior mean in [0, 1], ",
         "prior weight > 0");
  }
  if (!(options.cost.ewma_weight > 0.0 && options.cost.ewma_weight <= 1.0) ||
      !(options.cost.shape_weight > 0.0 && options.cost.shape_weight <= 1.0) ||
      options.cost.prior_row_fraction < 0.0) {
    fail("cost estimate options out of range: EWMA and shape weights in (0, 1], row fraction ",
         ">= 0");
  }
}

DraftLengthPolicy::DraftLengthPolicy(const PolicyOptions& options)
    : options_(options), estimates_(options.acceptance, options.cost) {}

void DraftLengthPolicy::begin_sequence(int32_t draft_max, int32_t n_drafters) {
  draft_max_ = std::max(0, draft_max);
  n_drafters_ = std::max(0, n_drafters);
  estimates_.cap(options_.adaptive.carry_over_trials);
  on_begin_sequence();
}

void DraftLengthPolicy::observe(const StepOutcome& outcome) {
  estimates_.observe(outcome);
  on_observe(outcome);
}

StepPlan FixedPolicy::plan(int32_t /*slot*/, int32_t limit) const {
  return {std::max(0, limit), 0.0f, false};
}

void HeuristicPolicy::on_begin_sequence() {
  current_ = draft_max_;
}

StepPlan HeuristicPolicy::plan(int32_t /*slot*/, int32_t limit) const {
  return {std::clamp(current_, 0, std::max(0, limit)), 0.0f, false};
}

void HeuristicPolicy::on_observe(const StepOutcome& outcome) {
  if (outcome.slot < 0 || outcome.drafted <= 0) return;
  if (outcome.accepted == outcome.drafted) {
    current_ = std::min(current_ + 2, draft_max_);
  } else {
    current_ = std::max(1, current_ - 1);
  }
}

StepPlan ConfidencePolicy::plan(int32_t /*slot*/, int32_t limit) const {
  return {std::max(0, limit), options_.confidence_threshold, false};
}

std::unique_ptr<DraftLengthPolicy> make_policy(const PolicyOptions& options) {
  validate(options);
  switch (options.kind) {
    case PolicyKind::kFixed:
      return std::make_unique<FixedPolicy>(options);
    case PolicyKind::kHeuristic:
      return std::make_unique<HeuristicPolicy>(options);
    case PolicyKind::kConfidence:
      return std::make_unique<ConfidencePolicy>(options);
    case PolicyKind::kAdaptive:
      break;
  }
  return std::make_unique<AdaptivePolicy>(options);
}

}  // namespace specula

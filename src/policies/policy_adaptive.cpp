#include "policies/policy_adaptive.h"

#include <algorithm>

namespace specula {

AdaptivePolicy::AdaptivePolicy(const PolicyOptions& options) : DraftLengthPolicy(options) {}

AdaptivePolicy::Best AdaptivePolicy::best(int32_t slot, int32_t limit) const {
  // rate(g) for g = 1..limit in one pass: E(g) grows by prod_{i<g} a_i.
  Best best;
  const DrafterEstimate* d = estimates_.find(slot);
  const double token_seconds =
      d && d->seconds_per_token.known() ? d->seconds_per_token.mean() : 0.0;
  const AcceptanceEstimate unseen(options_.acceptance);
  const AcceptanceEstimate& acceptance = d ? d->acceptance : unseen;
  const VerifyCost& verify = estimates_.verify();
  double expected = 1.0, all_accepted = 1.0;
  for (int32_t g = 1; g <= limit; ++g) {
    all_accepted *= acceptance.at(g - 1);
    expected += all_accepted;
    const double seconds = g * token_seconds + verify.seconds(g + 1);
    const double rate = seconds > 0 ? expected / seconds : 0.0;
    if (rate > best.tokens_per_second) best = {g, rate};
  }
  return best;
}

float AdaptivePolicy::stop_threshold(int32_t slot, int32_t g) const {
  const DrafterEstimate* d = estimates_.find(slot);
  if (!options_.adaptive.learn_confidence_stop || d == nullptr || g <= 0) return 0.0f;
  // One more drafted token costs its draft time and one more verify row; it
  // is worth drafting when the tokens it is expected to add, at the
  // current rate, pay for that: P(this token accepted) * a_next >= R * dt.
  // (The chance that the earlier tokens were all accepted multiplies gain
  // and not cost; leaving it out errs towards drafting on.)
  const VerifyCost& verify = estimates_.verify();
  const double row_seconds = (verify.seconds(g + 1) - verify.seconds(1)) / g;
  const double token_seconds = d->seconds_per_token.known() ? d->seconds_per_token.mean() : 0.0;
  const double rate = estimates_.tokens_per_second(slot, g);
  const double next_acceptance = d->acceptance.pooled();
  if (next_acceptance <= 0.0) return 1.0f;
  const double needed = rate * (row_seconds + token_seconds) / next_acceptance;
  return d->calibration.threshold_for(needed);
}

AdaptivePolicy::SlotState& AdaptivePolicy::state(int32_t slot) {
  if (static_cast<int32_t>(slots_.size()) <= slot) slots_.resize(slot + 1);
  return slots_[slot];
}

const AdaptivePolicy::SlotState* AdaptivePolicy::find_state(int32_t slot) const {
  if (slot < 0 || slot >= static_cast<int32_t>(slots_.size())) return nullptr;
  return &slots_[slot];
}

bool AdaptivePolicy::off(int32_t slot) const {
  const SlotState* s = find_state(slot);
  return s && s->off;
}

int32_t AdaptivePolicy::probe_interval(int32_t slot) const {
  const SlotState* s = find_state(slot);
  return s ? s->probe_interval : options_.adaptive.probe_interval_min;
}

void AdaptivePolicy::switch_off(SlotState& s) const {
  s.off = true;
  s.steps_since_probe = 0;
  s.probe_interval = options_.adaptive.probe_interval_min;
}

bool AdaptivePolicy::could_pay(int32_t slot, int32_t g) const {
  // E(g + 1) if the extra token were always accepted after the first g:
  // E(g) + P(all g accepted) = 2 E(g) - E(g - 1).
  const double optimistic =
      2.0 * estimates_.expected_tokens(slot, g) - estimates_.expected_tokens(slot, g - 1);
  const double seconds = estimates_.step_seconds(slot, g + 1);
  return seconds <= 0.0 || optimistic / seconds >= estimates_.tokens_per_second(slot, g);
}

StepPlan AdaptivePolicy::plan(int32_t slot, int32_t limit) const {
  const AdaptiveOptions& a = options_.adaptive;
  if (limit <= 0 || slot < 0) return {};
  // Plain decoding is the yardstick: measure it first, and now and then.
  if (!estimates_.verify().measured(1)) return {};
  if (a.plain_refresh_steps > 0 && speculative_steps_since_plain_ >= a.plain_refresh_steps) {
    return {};
  }
  const double plain = estimates_.plain_tokens_per_second();
  const Best b = best(slot, limit);
  const SlotState* s = find_state(slot);
  const bool is_off = s && s->off;
  const double margin = is_off ? a.on_margin : a.off_margin;
  if (b.g > 0 && b.tokens_per_second >= plain * (1.0 + margin)) {
    // Now and then one token more than the best: the estimates of a draft
    // length the policy never runs (its deepest position's acceptance, its
    // verify cost) would otherwise only ever come from the prior.
    // A token more that could not pay even if it were always accepted (its
    // verify cost, measured, is past a step up of the curve) is explored 8x
    // less often: at such a step every exploration cost ~40% of a step,
    // ~5% of the rate at one in 8.
    int32_t every = a.explore_interval;
    int32_t g = b.g;
    if (every > 0 && g < limit && !could_pay(slot, g)) every *= 8;
    if (every > 0 && s && s->drafting_steps % every == every - 1 && g < limit) ++g;
    return {g, stop_threshold(slot, g), false};
  }
  if (is_off && s->steps_since_probe >= s->probe_interval) {
    const int32_t g = std::min(a.probe_length, limit);
    return {g, stop_threshold(slot, g), true};
  }
  return {};
}

void AdaptivePolicy::on_begin_sequence() {
  // A new prompt may suit a drafter the last one did not: probe at once.
  // After that probe the interval goes on from half the one the drafter
  // had reached, not from the minimum: a drafter that stays useless
  // request after request (a random draft, text it never saw) then costs
  // two or three probes per request instead of six or seven.
  if (static_cast<int32_t>(slots_.size()) < n_drafters_) slots_.resize(n_drafters_);
  const AdaptiveOptions& a = options_.adaptive;
  for (SlotState& s : slots_) {
    s.probe_interval = std::max(a.probe_interval_min, s.probe_interval / 2);
    s.steps_since_probe = s.probe_interval;
  }
}

void AdaptivePolicy::on_observe(const StepOutcome& outcome) {
  const AdaptiveOptions& a = options_.adaptive;
  if (outcome.slot >= 0) state(outcome.slot);  // start tracking a drafter at first use
  if (outcome.drafted > 0) {
    ++speculative_steps_since_plain_;
  } else {
    speculative_steps_since_plain_ = 0;  // this step measured t_verify(1)
  }
  const double plain = estimates_.plain_tokens_per_second();
  for (int32_t slot = 0; slot < static_cast<int32_t>(slots_.size()); ++slot) {
    SlotState& s = slots_[slot];
    if (s.off) ++s.steps_since_probe;
    if (plain <= 0.0 || draft_max_ <= 0) continue;
    const Best b = best(slot, draft_max_);
    if (!s.off && b.tokens_per_second < plain * (1.0 + a.off_margin)) {
      switch_off(s);
    } else if (s.off && b.tokens_per_second >= plain * (1.0 + a.on_margin)) {
      s.off = false;
    }
  }
  if (outcome.slot >= 0 && outcome.drafted > 0) ++state(outcome.slot).drafting_steps;
  if (outcome.probe && outcome.slot >= 0) {
    SlotState& s = state(outcome.slot);
    if (s.off) {
      // Judge the probe by what it delivered, not only by the estimates,
      // which move slowly: a probe that beat plain decoding calls for
      // another soon.
      const double seconds = outcome.draft_seconds + outcome.verify_seconds;
      const bool paid = seconds > 0 && plain > 0 && (outcome.accepted + 1) / seconds >= plain;
      s.probe_interval =
          paid ? a.probe_interval_min : std::min(2 * s.probe_interval, a.probe_interval_max);
      s.steps_since_probe = 0;
    }
  }
}

}  // namespace specula

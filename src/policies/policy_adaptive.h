// The cost-aware policy (design.md): for each drafter, the g in 0..limit
// that maximises expected tokens per second,
//   rate(g) = E(g) / (g * t_draft + t_verify(g + 1)),
//   E(g) = 1 + sum_{j=1..g} prod_{i<j} a_i   (a_i: acceptance at position i),
// against plain decoding's rate(0) = 1 / t_verify(1). A drafter that does
// not pay is switched off (plain steps) with hysteresis, and re-probed with
// short drafts at growing intervals so that speculation comes back when its
// acceptance recovers. Drafts stop early after a token whose confidence
// bucket's acceptance does not pay for one more drafted token.
#pragma once

#include <vector>

#include "policies/policy.h"

namespace specula {

class AdaptivePolicy : public DraftLengthPolicy {
 public:
  explicit AdaptivePolicy(const PolicyOptions& options);
  PolicyKind kind() const override { return PolicyKind::kAdaptive; }
  StepPlan plan(int32_t slot, int32_t limit) const override;

  // The g in 1..limit with the highest estimated rate for `slot`, and that
  // rate (tokens/s).
  struct Best {
    int32_t g = 0;
    double tokens_per_second = 0;
  };
  Best best(int32_t slot, int32_t limit) const;
  // The learned stop threshold for a draft of g tokens by `slot`.
  float stop_threshold(int32_t slot, int32_t g) const;
  // Whether drafting g + 1 tokens could beat g for `slot` if the extra
  // token were always accepted (its cost as estimated).
  bool could_pay(int32_t slot, int32_t g) const;
  // Whether `slot` is switched off (plain steps, probes only).
  bool off(int32_t slot) const;
  int32_t probe_interval(int32_t slot) const;

 protected:
  void on_begin_sequence() override;
  void on_observe(const StepOutcome& outcome) override;

 private:
  struct SlotState {
    bool off = false;
    int32_t steps_since_probe = 0;
    int32_t probe_interval = 0;
    int64_t drafting_steps = 0;  // steps that drafted, for exploration
  };
  SlotState& state(int32_t slot);
  const SlotState* find_state(int32_t slot) const;
  void switch_off(SlotState& s) const;

  std::vector<SlotState> slots_;
  int32_t speculative_steps_since_plain_ = 0;
};

}  // namespace specula

// The statistics of one generation (GenerationStats), recorded beside the
// decoding steps (generation_step.h) instead of woven through them. Each
// step reports what it did and what it cost; the recorder keeps the counts,
// the per-position and per-drafter tallies, the policy's predictions and
// the timings. It neither allocates nor reads a clock after begin().
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "policies/policy.h"
#include "specula/stats.h"
#include "speculative/drafter.h"

namespace specula {

class StepRecorder {
 public:
  // A new generation after `prompt_tokens` tokens, drafting at most
  // `draft_max` tokens per step (0: plain decoding) with `drafters` (one
  // DrafterUsage each, in slot order) under the policy named `policy`.
  void begin(int64_t prompt_tokens, int32_t draft_max, std::string_view policy,
             std::span<Drafter* const> drafters);
  void record_prefill(double seconds) { stats_.prefill_seconds = seconds; }

  // A speculative step planned to draft `requested` tokens (0: plain), for
  // which the policy predicted `predicted_tokens` tokens in
  // `predicted_seconds` seconds. Not called for plain decoding.
  void record_plan(int32_t requested, double predicted_tokens, double predicted_seconds);
  // Drafter `slot` was asked for `requested` tokens under `plan` and
  // proposed `proposal` in `seconds`.
  void record_draft(int32_t slot, const StepPlan& plan, int32_t requested,
                    const DraftProposal& proposal, double seconds);
  void record_target_pass(double seconds);
  // Verification kept `accepted` of `drafted` tokens (drafter `slot`, -1 for
  // a plain step) and took `seconds` (transforms included).
  void record_verify(int32_t slot, int32_t drafted, int32_t accepted, double seconds);
  // Drafter `slot`'s accept() took `seconds`.
  void record_accept(int32_t slot, double seconds);

  // The whole generation's statistics; the recorder is empty afterwards.
  // `estimates`: the policy's, for plain decoding's rate and the speedups.
  GenerationStats finish(StopReason stop_reason, int64_t generated_tokens, double total_seconds,
                         const SpeculationEstimates& estimates);

  const GenerationStats& stats() const { return stats_; }

 private:
  GenerationStats stats_;
  // The policy's predictions for the steps it chose, against plain decoding.
  double predicted_tokens_ = 0;
  double predicted_seconds_ = 0;
  double stop_confidence_sum_ = 0;
  int64_t drafting_steps_ = 0;
};

}  // namespace specula

#include "speculative/step_recorder.h"

#include <cassert>
#include <utility>

namespace specula {

void StepRecorder::begin(int64_t prompt_tokens, int32_t draft_max, std::string_view policy,
                         std::span<Drafter* const> drafters) {
  stats_ = GenerationStats();
  stats_.prompt_tokens = prompt_tokens;
  stats_.draft_max = draft_max;
  stats_.drafted_at.assign(draft_max, 0);
  stats_.accepted_at.assign(draft_max, 0);
  stats_.policy = std::string(policy);
  stats_.draft_length_steps.assign(draft_max + 1, 0);
  for (Drafter* d : drafters) {
    DrafterUsage usage;
    usage.name = d->name();
    usage.drafted_at.assign(draft_max, 0);
    usage.accepted_at.assign(draft_max, 0);
    stats_.drafters.push_back(std::move(usage));
  }
  predicted_tokens_ = 0;
  predicted_seconds_ = 0;
  stop_confidence_sum_ = 0;
  drafting_steps_ = 0;
}

void StepRecorder::record_plan(int32_t requested, double predicted_tokens,
                               double predicted_seconds) {
  assert(requested >= 0 && requested <= stats_.draft_max);
  ++stats_.draft_length_steps[requested];
  predicted_tokens_ += predicted_tokens;
  predicted_seconds_ += predicted_seconds;
}

void StepRecorder::record_draft(int32_t slot, const StepPlan& plan, int32_t requested,
                                const DraftProposal& proposal, double seconds) {
  stats_.draft_seconds += seconds;
  stats_.drafters[slot].seconds += seconds;
  ++drafting_steps_;
  stop_confidence_sum_ += plan.stop_confidence;
  if (plan.probe) ++stats_.probe_steps;
  const size_t drafted = proposal.tokens.size();
  if (drafted < static_cast<size_t>(requested) && !proposal.confidence.empty() &&
      proposal.confidence.back() < plan.stop_confidence) {
    ++stats_.early_stops;
  }
}

void StepRecorder::record_target_pass(double seconds) {
  ++stats_.target_passes;
  stats_.target_seconds += seconds;
}

void StepRecorder::record_verify(int32_t slot, int32_t drafted, int32_t accepted, double seconds) {
  stats_.sampling_seconds += seconds;
  stats_.drafted_tokens += drafted;
  stats_.accepted_tokens += accepted;
  for (int32_t i = 0; i < drafted; ++i) {
    ++stats_.drafted_at[i];
    if (i < accepted) ++stats_.accepted_at[i];
  }
  if (slot < 0) return;
  DrafterUsage& usage = stats_.drafters[slot];
  ++usage.steps;
  usage.drafted_tokens += drafted;
  usage.accepted_tokens += accepted;
  for (int32_t i = 0; i < drafted; ++i) {
    ++usage.drafted_at[i];
    if (i < accepted) ++usage.accepted_at[i];
  }
}

void StepRecorder::record_accept(int32_t slot, double seconds) {
  stats_.draft_seconds += seconds;
  stats_.drafters[slot].seconds += seconds;
}

GenerationStats StepRecorder::finish(StopReason stop_reason, int64_t generated_tokens,
                                     double total_seconds, const SpeculationEstimates& estimates) {
  stats_.stop_reason = stop_reason;
  stats_.generated_tokens = generated_tokens;
  stats_.total_seconds = total_seconds;
  const double plain_rate = estimates.plain_tokens_per_second();
  stats_.plain_tokens_per_second_estimate = plain_rate;
  if (plain_rate > 0 && predicted_seconds_ > 0) {
    stats_.estimated_speedup = predicted_tokens_ / predicted_seconds_ / plain_rate;
    stats_.realised_speedup = stats_.decode_tokens_per_second() / plain_rate;
  }
  if (drafting_steps_ > 0) stats_.mean_stop_confidence = stop_confidence_sum_ / drafting_steps_;
  return std::exchange(stats_, GenerationStats());
}

}  // namespace specula

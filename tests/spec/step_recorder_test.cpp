// The step recorder against counts worked out by hand for three scripted
// steps: a full draft, a short (early-stopped, probing) draft by the other
// drafter, and a plain step.
#include "speculative/step_recorder.h"

#include <gtest/gtest.h>

#include <vector>

#include "spec/pipeline_fakes.h"

namespace specula {
namespace {

using testing::ScriptedDrafter;

DraftProposal proposal(std::vector<int32_t> tokens, std::vector<float> confidence) {
  DraftProposal p;
  p.tokens = std::move(tokens);
  p.confidence = std::move(confidence);
  return p;
}

// The three steps; returns what finish() gives with `estimates`.
GenerationStats record_three_steps(const SpeculationEstimates& estimates) {
  ScriptedDrafter a({}, "a"), b({}, "b");
  Drafter* drafters[] = {&a, &b};
  StepRecorder recorder;
  recorder.begin(7, 3, "fixed", drafters);
  recorder.record_prefill(0.010);
  // Step 1: drafter a drafts 3 of 3, the verifier keeps 1.
  recorder.record_plan(3, 2.5, 0.010);
  recorder.record_draft(0, StepPlan{3, 0.2f, false}, 3, proposal({4, 4, 4}, {0.9f, 0.8f, 0.7f}),
                        0.002);
  recorder.record_target_pass(0.005);
  recorder.record_verify(0, 3, 1, 0.001);
  recorder.record_accept(0, 0.0005);
  recorder.record_accept(1, 0.0001);
  // Step 2: drafter b asked for 2 (a probe) stops after 1 below 0.5; kept.
  recorder.record_plan(2, 2.0, 0.008);
  recorder.record_draft(1, StepPlan{2, 0.5f, true}, 2, proposal({4}, {0.3f}), 0.001);
  recorder.record_target_pass(0.004);
  recorder.record_verify(1, 1, 1, 0.001);
  recorder.record_accept(0, 0.0002);
  recorder.record_accept(1, 0.0004);
  // Step 3: plain.
  recorder.record_plan(0, 1.0, 0.004);
  recorder.record_target_pass(0.003);
  recorder.record_verify(-1, 0, 0, 0.0005);
  recorder.record_accept(0, 0.0001);
  recorder.record_accept(1, 0.0001);
  return recorder.finish(StopReason::kMaxTokens, 6, 0.050, estimates);
}

TEST(StepRecorder, CountsAndTimesMatchTheStepsByHand) {
  const GenerationStats s = record_three_steps(SpeculationEstimates());
  EXPECT_EQ(s.prompt_tokens, 7);
  EXPECT_EQ(s.generated_tokens, 6);
  EXPECT_EQ(s.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(s.policy, "fixed");
  EXPECT_EQ(s.draft_max, 3);
  EXPECT_EQ(s.target_passes, 3);
  EXPECT_EQ(s.drafted_tokens, 4);
  EXPECT_EQ(s.accepted_tokens, 2);
  EXPECT_EQ(s.drafted_at, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(s.accepted_at, (std::vector<int64_t>{2, 0, 0}));
  EXPECT_EQ(s.draft_length_steps, (std::vector<int64_t>{1, 0, 1, 1}));
  EXPECT_EQ(s.probe_steps, 1);
  EXPECT_EQ(s.early_stops, 1);  // step 1 drafted all it was asked
  EXPECT_NEAR(s.mean_stop_confidence, (0.2 + 0.5) / 2, 1e-6);
  EXPECT_DOUBLE_EQ(s.prefill_seconds, 0.010);
  EXPECT_DOUBLE_EQ(s.total_seconds, 0.050);
  EXPECT_NEAR(s.target_seconds, 0.012, 1e-12);
  EXPECT_NEAR(s.sampling_seconds, 0.0025, 1e-12);
  // Proposals 0.003, accepts 0.0006 + 0.0006 + 0.0002.
  EXPECT_NEAR(s.draft_seconds, 0.0044, 1e-12);

  ASSERT_EQ(s.drafters.size(), 2u);
  const DrafterUsage& a = s.drafters[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.steps, 1);
  EXPECT_EQ(a.drafted_tokens, 3);
  EXPECT_EQ(a.accepted_tokens, 1);
  EXPECT_EQ(a.drafted_at, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(a.accepted_at, (std::vector<int64_t>{1, 0, 0}));
  EXPECT_NEAR(a.seconds, 0.002 + 0.0005 + 0.0002 + 0.0001, 1e-12);
  const DrafterUsage& b = s.drafters[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.steps, 1);
  EXPECT_EQ(b.drafted_tokens, 1);
  EXPECT_EQ(b.accepted_tokens, 1);
  EXPECT_EQ(b.drafted_at, (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(b.accepted_at, (std::vector<int64_t>{1, 0, 0}));
  EXPECT_NEAR(b.seconds, 0.001 + 0.0001 + 0.0004 + 0.0001, 1e-12);

  // Nothing measured: no plain rate, so no speedups.
  EXPECT_EQ(s.plain_tokens_per_second_estimate, 0.0);
  EXPECT_EQ(s.estimated_speedup, 0.0);
  EXPECT_EQ(s.realised_speedup, 0.0);
}

TEST(StepRecorder, SpeedupsAreAgainstThePolicysPlainRate) {
  SpeculationEstimates estimates;
  StepOutcome plain;
  plain.verify_seconds = 0.004;
  estimates.observe(plain);
  const double rate = estimates.plain_tokens_per_second();
  ASSERT_GT(rate, 0.0);
  const GenerationStats s = record_three_steps(estimates);
  EXPECT_DOUBLE_EQ(s.plain_tokens_per_second_estimate, rate);
  // Predicted: (2.5 + 2 + 1) tokens in (0.010 + 0.008 + 0.004) s.
  EXPECT_NEAR(s.estimated_speedup, 5.5 / 0.022 / rate, 1e-9);
  // Realised: 6 tokens in the 0.040 s after prefill.
  EXPECT_NEAR(s.realised_speedup, 6 / 0.040 / rate, 1e-9);
}

TEST(StepRecorder, FinishLeavesItReadyForTheNextGeneration) {
  StepRecorder recorder;
  recorder.begin(3, 2, "fixed", {});
  recorder.record_plan(2, 1.0, 1.0);
  recorder.record_target_pass(0.5);
  (void)recorder.finish(StopReason::kMaxTokens, 1, 1.0, SpeculationEstimates());
  recorder.begin(4, 0, "plain", {});
  recorder.record_target_pass(0.25);
  SpeculationEstimates estimates;
  StepOutcome plain;
  plain.verify_seconds = 0.25;
  estimates.observe(plain);
  const GenerationStats s = recorder.finish(StopReason::kEndOfGeneration, 1, 0.5, estimates);
  EXPECT_EQ(s.prompt_tokens, 4);
  EXPECT_EQ(s.target_passes, 1);
  EXPECT_EQ(s.draft_length_steps, (std::vector<int64_t>{0}));
  // The first generation's prediction is gone: none was made in this one.
  EXPECT_GT(s.plain_tokens_per_second_estimate, 0.0);
  EXPECT_EQ(s.estimated_speedup, 0.0);
  EXPECT_DOUBLE_EQ(s.target_seconds, 0.25);
}

}  // namespace
}  // namespace specula

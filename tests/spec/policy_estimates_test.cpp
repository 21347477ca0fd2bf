// The online estimates behind the adaptive policy, fed synthetic
// observations; expected values are computed here by hand or in closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "sampling/sampling.h"
#include "spec/policy_estimates.h"

namespace specula {
namespace {

TEST(AcceptanceEstimate, StartsAtThePriorAndLearnsPerPosition) {
  AcceptanceOptions o;
  o.prior_mean = 0.5;
  AcceptanceEstimate estimate(o);
  EXPECT_DOUBLE_EQ(estimate.at(0), 0.5);
  EXPECT_DOUBLE_EQ(estimate.expected_tokens(0), 1.0);
  EXPECT_DOUBLE_EQ(estimate.expected_tokens(2), 1.0 + 0.5 + 0.25);
  // Position 0 always accepted, position 1 always rejected.
  for (int i = 0; i < 200; ++i) estimate.observe(4, 1);
  EXPECT_GT(estimate.at(0), 0.9);
  EXPECT_LT(estimate.at(1), 0.1);
  EXPECT_EQ(estimate.trials_at(2), 0.0);  // never judged
  EXPECT_NEAR(estimate.expected_tokens(1), 1.0 + estimate.at(0), 1e-12);
}

TEST(AcceptanceEstimate, ExpectedTokensMatchTheClosedForm) {
  // Simulated drafts with a constant acceptance a: E(g) -> (1 - a^(g+1)) / (1 - a).
  AcceptanceOptions o;
  o.decay = 0.999;  // a long memory: an accurate estimate
  AcceptanceEstimate estimate(o);
  Rng rng(5);
  const double a = 0.7;
  for (int step = 0; step < 20000; ++step) {
    int32_t accepted = 0;
    while (accepted < 6 && rng.uniform() < a) ++accepted;
    estimate.observe(6, accepted);
  }
  for (int32_t g = 0; g <= 6; ++g) {
    EXPECT_NEAR(estimate.expected_tokens(g), (1 - std::pow(a, g + 1)) / (1 - a), 0.08) << g;
  }
}

TEST(AcceptanceEstimate, FollowsADriftAndCapsCarryOver) {
  AcceptanceEstimate estimate;  // decay 0.95
  for (int i = 0; i < 100; ++i) estimate.observe(1, 1);
  EXPECT_GT(estimate.at(0), 0.9);
  for (int i = 0; i < 60; ++i) estimate.observe(1, 0);
  EXPECT_LT(estimate.at(0), 0.15);
  estimate.cap(4.0);
  EXPECT_LE(estimate.trials_at(0), 4.0 + 1e-12);
  EXPECT_LT(estimate.at(0), 0.2);  // the rate is kept
}

TEST(ConfidenceCalibration, PriorIsTheConfidenceOrTheOverallRateAndThresholdSeparatesBuckets) {
  ConfidenceCalibration calibration(10);
  // Nothing seen: the overall rate's prior is 0.5, so every bucket below
  // starts at 0.5 and those above at their midpoint.
  EXPECT_NEAR(calibration.acceptance(0.33f), 0.5, 1e-12);   // bucket [0.3, 0.4)
  EXPECT_NEAR(calibration.acceptance(0.83f), 0.85, 1e-12);  // bucket [0.8, 0.9)
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.0), 0.0f);
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.5), 0.0f);  // every bucket starts >= 0.5
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.6), 0.6f);  // midpoints 0.65.. qualify
  EXPECT_FLOAT_EQ(calibration.threshold_for(2.0), 1.0f);  // none does
  // An underconfident drafter: tokens at confidence 0.2-0.3 accepted 90%.
  // Its low buckets move up with the overall rate before they have data.
  ConfidenceCalibration underconfident(10);
  for (int i = 0; i < 200; ++i) underconfident.observe(0.25f, i % 10 != 0);
  EXPECT_GT(underconfident.acceptance(0.15f), 0.85);  // no data there: the overall rate
  EXPECT_FLOAT_EQ(underconfident.threshold_for(0.8), 0.0f);
  // Tokens below 0.2 always accepted, the rest never: only a cut at 1 works
  // for "every bucket above qualifies".
  for (int i = 0; i < 500; ++i) {
    calibration.observe(0.05f + 0.1f * (i % 10), i % 10 < 2);
  }
  EXPECT_GT(calibration.acceptance(0.1f), 0.9);
  EXPECT_LT(calibration.acceptance(0.7f), 0.1);
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.5), 1.0f);
}

TEST(VerifyCost, InterpolatesAndExtrapolatesMonotonically) {
  CostOptions o;
  o.ewma_weight = 0.5;
  o.prior_row_fraction = 0.1;
  VerifyCost cost(o);
  EXPECT_FALSE(cost.any());
  EXPECT_EQ(cost.seconds(3), 0.0);
  cost.observe(1, 0.010);
  EXPECT_DOUBLE_EQ(cost.seconds(1), 0.010);
  EXPECT_NEAR(cost.seconds(3), 0.010 * (1 + 0.1 * 2), 1e-12);  // the prior slope
  cost.observe(5, 0.014);
  EXPECT_NEAR(cost.seconds(3), 0.012, 1e-12);  // linear between 1 and 5
  EXPECT_NEAR(cost.seconds(7), 0.016, 1e-12);  // the measured slope beyond
  cost.observe(5, 0.018);                      // EWMA: 0.014 + 0.5 * 0.004
  EXPECT_NEAR(cost.seconds(5), 0.016, 1e-12);
  // A noisy measurement below a smaller n's does not make the curve dip.
  cost.observe(3, 0.009);
  EXPECT_DOUBLE_EQ(cost.seconds(3), 0.010);
  EXPECT_TRUE(cost.measured(3));
  EXPECT_FALSE(cost.measured(2));
}

TEST(SpeculationEstimates, PredictsStepsFromTheParts) {
  SpeculationEstimates estimates;
  StepOutcome plain;
  plain.verify_seconds = 0.010;
  estimates.observe(plain);
  EXPECT_NEAR(estimates.plain_tokens_per_second(), 100.0, 1e-9);
  StepOutcome step;
  step.slot = 1;
  step.requested = step.drafted = 4;
  step.accepted = 2;
  step.draft_seconds = 0.004;
  step.verify_seconds = 0.012;
  const std::vector<float> confidence = {0.9f, 0.8f, 0.3f, 0.2f};
  step.confidence = confidence;
  estimates.observe(step);
  ASSERT_NE(estimates.find(1), nullptr);
  EXPECT_EQ(estimates.find(2), nullptr);
  const DrafterEstimate& d = *estimates.find(1);
  EXPECT_NEAR(d.seconds_per_token.mean(), 0.001, 1e-12);
  EXPECT_NEAR(d.calibration.observations(), 3.0, 1e-12);  // tokens 0..2 were judged
  EXPECT_NEAR(estimates.step_seconds(1, 4), 0.004 + 0.012, 1e-12);
  EXPECT_NEAR(estimates.expected_tokens(1, 4), d.acceptance.expected_tokens(4), 1e-12);
  EXPECT_DOUBLE_EQ(estimates.expected_tokens(1, 0), 1.0);
}

}  // namespace
}  // namespace specula

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

TEST(VerifyCost, OneLineThroughEveryMeasuredRowCount) {
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
  EXPECT_NEAR(cost.seconds(3), 0.012, 1e-12);  // the line through (1, 10 ms), (5, 14 ms)
  EXPECT_NEAR(cost.seconds(7), 0.016, 1e-12);
  cost.observe(5, 0.018);  // EWMA at 5: 0.014 + 0.5 * 0.004
  EXPECT_NEAR(cost.seconds(5), 0.016, 1e-12);
  // A third n: the weighted least-squares line through (1, 10 ms, weight 1),
  // (3, 9 ms, 1), (5, 16 ms, 2), worked out by hand: mean n = 3.5, mean t =
  // 12.75 ms, covariance 0.0185, variance 11 -> slope 0.0185 / 11 per row.
  cost.observe(3, 0.009);
  const double slope = 0.0185 / 11;
  EXPECT_NEAR(cost.seconds(3), 0.01275 + slope * (3 - 3.5), 1e-12);
  EXPECT_NEAR(cost.seconds(9), 0.01275 + slope * (9 - 3.5), 1e-12);
  for (int32_t n = 1; n < 12; ++n) EXPECT_LE(cost.seconds(n), cost.seconds(n + 1));
  EXPECT_TRUE(cost.measured(3));
  EXPECT_FALSE(cost.measured(2));
}

TEST(VerifyCost, ANegativeSlopeIsFlat) {
  VerifyCost cost;
  cost.observe(2, 0.004);
  cost.observe(4, 0.003);  // noise: more rows measured cheaper
  EXPECT_NEAR(cost.seconds(1), 0.0035, 1e-12);
  EXPECT_NEAR(cost.seconds(8), 0.0035, 1e-12);
}

// Steps of 2-4 rows cost 3 ms + 0.3 ms per row; one step of 4 rows took
// 100 ms (preempted). The estimate beyond stays near the truth instead of
// pricing long drafts out for good.
TEST(VerifyCost, OneSlowStepDoesNotPriceLongDraftsOut) {
  CostOptions o;
  o.ewma_weight = 0.1;
  VerifyCost cost(o);
  for (int i = 0; i < 20; ++i) {
    for (int32_t n = 2; n <= 4; ++n) cost.observe(n, 0.003 + 0.0003 * n);
  }
  const double before = cost.seconds(9);
  EXPECT_NEAR(before, 0.003 + 0.0003 * 9, 1e-6);
  cost.observe(4, 0.100);
  // Clipped to 2x the estimate at 4 rows, weighted 0.1: t(4) rises by 10%
  // of 4.2 ms; the line through 2..4 tilts but stays within 30% at 9 rows.
  EXPECT_LT(cost.seconds(9), 1.3 * before);
  EXPECT_GT(cost.seconds(9), before);
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

// The online estimates behind the adaptive policy, fed synthetic
// observations; expected values are computed here by hand or in closed form.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "policies/policy_estimates.h"
#include "sampling/sampling.h"

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
  // ~20 trials (decay 0.95) of 0, shrunk towards at(0) with 4 trials' weight.
  EXPECT_LT(estimate.at(1), 0.2);
  EXPECT_EQ(estimate.trials_at(2), 0.0);  // never judged
  EXPECT_NEAR(estimate.expected_tokens(1), 1.0 + estimate.at(0), 1e-12);
  EXPECT_NEAR(estimate.expected_tokens(3),
              1.0 + estimate.at(0) * (1.0 + estimate.at(1) * (1.0 + estimate.at(2))), 1e-12);
}

// Prompt lookup's shape: the first token is a coin flip, and once it is
// right the copied run goes on (every later token accepted). Drafting 2
// tokens, position 2 is never judged: it borrows from position 1 (~0.86),
// not from the pooled rate (~0.67, dragged down by position 0's
// rejections), so a longer draft is priced as paying.
TEST(AcceptanceEstimate, DeepPositionsBorrowFromThePositionBefore) {
  AcceptanceEstimate estimate;
  for (int i = 0; i < 200; ++i) estimate.observe(2, i % 2 == 0 ? 2 : 0);
  EXPECT_NEAR(estimate.at(0), 0.5, 0.05);
  // ~10 trials, all accepted, shrunk towards at(0) with 4 trials' weight.
  EXPECT_GT(estimate.at(1), 0.8);
  EXPECT_EQ(estimate.trials_at(2), 0.0);
  EXPECT_NEAR(estimate.at(2), estimate.at(1), 1e-12);
  EXPECT_LT(estimate.pooled(), 0.75);
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

TEST(AcceptanceEstimate, APositionNoLongerDraftedFadesToThePooledRate) {
  // Position 1 learned as poor, then only one-token drafts, all accepted: its
  // old evidence fades with every draft, so the estimate returns to the
  // pooled rate and a longer draft gets tried again. Without the fade it
  // would stay near 0 for good: short drafts never judge position 1.
  AcceptanceEstimate estimate;  // decay 0.95
  for (int i = 0; i < 40; ++i) estimate.observe(2, 1);
  EXPECT_LT(estimate.at(1), 0.2);
  const double trials = estimate.trials_at(1);
  for (int i = 0; i < 100; ++i) estimate.observe(1, 1);
  EXPECT_NEAR(estimate.trials_at(1), trials * std::pow(0.95, 100), 1e-9);
  EXPECT_GT(estimate.pooled(), 0.9);
  EXPECT_GT(estimate.at(1), 0.85);
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

TEST(ConfidenceCalibration, AFewRejectionsInAHighBucketDoNotStopEveryDraft) {
  // Tokens at 0.35 and 0.65 accepted 90% of the time, three at 0.95 all
  // rejected. Bucket 9 alone reads (0 + 2 x 0.95) / (3 + 2) = 0.38, below
  // 0.6; "every bucket above qualifies" would then stop after every token.
  // The monotone fit pools it with the well-observed buckets below.
  ConfidenceCalibration calibration(10);
  for (int i = 0; i < 200; ++i) {
    calibration.observe(0.35f, i % 10 != 0);
    calibration.observe(0.65f, i % 10 != 0);
  }
  for (int i = 0; i < 3; ++i) calibration.observe(0.95f, false);
  EXPECT_NEAR(calibration.acceptance(0.95f), 0.38, 0.01);
  const std::vector<double> fitted = calibration.monotone_acceptance();
  ASSERT_EQ(fitted.size(), 10u);
  for (size_t b = 1; b < fitted.size(); ++b) EXPECT_LE(fitted[b - 1], fitted[b] + 1e-12) << b;
  EXPECT_GT(fitted[9], 0.8);
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.6), 0.0f);
  EXPECT_FLOAT_EQ(calibration.threshold_for(0.95), 1.0f);  // no bucket is that good
}

TEST(Ewma, AveragesItsFirstSamplesThenDecays) {
  Ewma e;
  EXPECT_FALSE(e.known());
  e.observe(10.0, 0.1);
  EXPECT_DOUBLE_EQ(e.mean(), 10.0);
  // Weight max(0.1, 1 / k): the plain mean while that is above 0.1 (a
  // first sample no longer outweighs the next nine), then 0.1.
  e.observe(20.0, 0.1);
  EXPECT_DOUBLE_EQ(e.mean(), 15.0);
  e.observe(30.0, 0.1);
  EXPECT_DOUBLE_EQ(e.mean(), 20.0);
  for (int i = 0; i < 7; ++i) e.observe(20.0, 0.1);
  EXPECT_NEAR(e.mean(), 20.0, 1e-12);  // 10 samples of mean 20
  e.observe(120.0, 0.1);
  EXPECT_NEAR(e.mean(), 30.0, 1e-12);  // 11th: weight 0.1
}

TEST(VerifyCost, ALevelTimesALineThroughTheMeasuredShape) {
  CostOptions o;
  o.ewma_weight = 0.5;
  o.shape_weight = 0.5;
  o.prior_row_fraction = 0.1;
  VerifyCost cost(o);
  EXPECT_FALSE(cost.any());
  EXPECT_EQ(cost.seconds(3), 0.0);
  cost.observe(1, 0.010);
  EXPECT_DOUBLE_EQ(cost.seconds(1), 0.010);
  EXPECT_NEAR(cost.seconds(3), 0.010 * (1 + 0.1 * 2), 1e-12);  // the prior shape
  // 14 ms at 5 rows: its ratio to the level is 1.4 (the first sample at n
  // is taken whole); the level stays (14 / 1.4 = 10 ms by the prior shape).
  cost.observe(5, 0.014);
  EXPECT_NEAR(cost.shape_at(5), 1.4, 1e-12);
  EXPECT_NEAR(cost.seconds(3), 0.012, 1e-12);  // the line through (1, 1), (5, 1.4)
  EXPECT_NEAR(cost.seconds(7), 0.016, 1e-12);
  EXPECT_TRUE(cost.measured(5));
  EXPECT_FALSE(cost.measured(2));
  // A machine whose passes cost exactly 10 ms + 2 ms per extra row, seen at
  // n = 1, 3 and 5: the estimate converges to it at every n, measured or not.
  for (int i = 0; i < 200; ++i) {
    for (int32_t n : {1, 3, 5}) cost.observe(n, 0.010 + 0.002 * (n - 1));
  }
  for (int32_t n = 1; n <= 9; ++n) EXPECT_NEAR(cost.seconds(n), 0.010 + 0.002 * (n - 1), 1e-8);
}

TEST(VerifyCost, ASpeedChangeSeenAtOneRowCountMovesEveryRowCount) {
  // Shape learned at 1 and 3 rows (10 ms, 12 ms); then the machine slows to
  // half speed while only 3-row steps run (the policy drafting g = 2). One
  // row is priced at the new speed too: the old per-n averages kept 10 ms
  // for it, and plain decoding looked twice as fast as it was.
  VerifyCost cost;
  for (int i = 0; i < 100; ++i) {
    cost.observe(1, 0.010);
    cost.observe(3, 0.012);
  }
  EXPECT_NEAR(cost.seconds(1), 0.010, 1e-5);
  for (int i = 0; i < 60; ++i) cost.observe(3, 0.024);
  EXPECT_NEAR(cost.seconds(3), 0.024, 0.024 * 0.03);
  // Without a one-row step the split between speed and shape is a guess:
  // the level takes most of the change (it moves 5x faster).
  EXPECT_NEAR(cost.seconds(1), 0.020, 0.020 * 0.12);
  EXPECT_NEAR(cost.shape_at(3), 1.2, 0.15);
  // One-row steps again (plain decoding's refresh): the split is learned.
  for (int i = 0; i < 300; ++i) {
    cost.observe(1, 0.020);
    cost.observe(3, 0.024);
  }
  EXPECT_NEAR(cost.seconds(1), 0.020, 0.020 * 0.01);
  EXPECT_NEAR(cost.shape_at(3), 1.2, 0.01);
}

TEST(VerifyCost, ANegativeSlopeIsFlat) {
  VerifyCost cost;         // ewma_weight 0.1, prior_row_fraction 0.1
  cost.observe(2, 0.004);  // level 4 / 1.1 ms by the prior shape
  cost.observe(4, 0.003);  // noise: more rows measured cheaper
  // The ratio at 4 rows, 1.1 x 3 / 4 (to the step before, priced by its
  // shape), is below the one at 2: the shape is flat, 1 at every n. Level:
  // 4 / 1.1 + 0.5 x (3 / 1 - 4 / 1.1) ms (the second sample: the plain
  // mean of the two).
  const double level = 0.004 / 1.1 + 0.5 * (0.003 - 0.004 / 1.1);
  EXPECT_NEAR(cost.seconds(1), level, 1e-12);
  EXPECT_NEAR(cost.seconds(8), level, 1e-12);
}

// A policy that settled on one draft length runs one row count step after
// step. The passes of one run of the padded shipped pair on Zen 4 (2
// threads, F16 target; `specula bench` on the same target measured t(1)
// 35.2 ms and t(5) / t(1) 1.25): steps of 1 to 8 rows, then 5 rows at 24
// steps in a row, one plain step (the policy's refresh of t(1)) among
// them. While one row count runs, the split between level and shape stays
// where the steps before put it; the plain step then fixes it for good.
// Taking each sample's ratio to a level it had just moved let the split
// drift (shape(5) 1.06 before the plain step), and the plain step moved it
// only for a few steps (1.09 and t(1) 38.6 ms at the end).
TEST(VerifyCost, OneRowCountStepAfterStepKeepsTheShape) {
  const std::vector<std::pair<int32_t, double>> passes = {
      {1, 35.22}, {3, 37.48}, {2, 37.66}, {4, 39.64}, {6, 47.24}, {2, 37.58},
      {4, 40.51}, {4, 39.52}, {4, 38.61}, {4, 38.86}, {4, 38.29}, {6, 46.59},
      {4, 44.39}, {5, 41.49}, {5, 40.68}, {8, 62.36}, {5, 46.18}, {5, 47.27},
      {5, 44.92}, {5, 44.72}, {5, 43.06}, {5, 43.12}, {5, 40.45}, {5, 40.50}};
  const std::vector<std::pair<int32_t, double>> after_refresh = {
      {1, 35.14}, {5, 45.44}, {5, 42.75}, {5, 40.21}, {5, 39.81}, {5, 41.02},
      {5, 41.33}, {5, 42.64}, {5, 41.90}, {5, 52.11}, {5, 41.46}, {5, 41.40},
      {5, 41.54}, {5, 41.60}, {5, 43.00}, {5, 41.88}};
  VerifyCost cost;
  for (auto [rows, ms] : passes) cost.observe(rows, ms * 1e-3);
  const double shape_before = cost.shape_at(5);
  for (int i = 0; i < 10; ++i) cost.observe(5, 0.0425);
  EXPECT_DOUBLE_EQ(cost.shape_at(5), shape_before);  // no drift
  for (auto [rows, ms] : after_refresh) cost.observe(rows, ms * 1e-3);
  EXPECT_NEAR(cost.shape_at(5), 1.25, 0.06);
  EXPECT_NEAR(cost.seconds(1), 0.0352, 0.0352 * 0.03);
}

// Steps of 2-4 rows cost 3 ms + 0.3 ms per row; one step of 4 rows took
// 100 ms (preempted). The estimate beyond stays near the truth instead of
// pricing long drafts out for good.
TEST(VerifyCost, OneSlowStepDoesNotPriceLongDraftsOut) {
  VerifyCost cost;  // ewma_weight 0.1, shape_weight 0.05
  for (int i = 0; i < 200; ++i) {
    for (int32_t n = 2; n <= 4; ++n) cost.observe(n, 0.003 + 0.0003 * n);
  }
  const double before = cost.seconds(9);
  // Within 0.2%: the first ratios, priced by the prior shape, fade by 2%
  // a sample.
  EXPECT_NEAR(before, 0.003 + 0.0003 * 9, 1e-5);
  cost.observe(4, 0.100);
  // Clipped to 2x the estimate at 4 rows: the level rises by 10% of that
  // excess, the shape by 5%; t(9) stays within 30%.
  EXPECT_LT(cost.seconds(9), 1.3 * before);
  EXPECT_GT(cost.seconds(9), before);
}

// A Zen 4 Q4_0 curve, flat up to 4 rows and then steep (t(n) / t(1) 1.1
// at 4, 1.5 at 5, +0.4 per row after), measured at the row counts a
// policy drafting g = 3 and exploring g = 4 runs: 1, 4, 5. Every measured
// n is priced about as measured (drawn a little towards the hinge), and 8
// rows by the hinge past its knee at 4 (level 1.05, +0.45 per row: 2.85
// for a truth of 2.7), where the line through the three priced it 1.9 and
// made g = 7 look cheap.
TEST(VerifyCost, AFlatThenSteepCurveIsPricedAsMeasured) {
  const auto truth = [](int32_t n) {
    return n <= 4 ? 1.0 + 0.1 * (n - 1) / 3 : 1.1 + 0.4 * (n - 4);
  };
  VerifyCost cost;
  for (int i = 0; i < 400; ++i) {
    for (int32_t n : {1, 4, 5}) cost.observe(n, 0.010 * truth(n));
  }
  for (int32_t n : {1, 4, 5}) EXPECT_NEAR(cost.shape_at(n), truth(n), 0.015) << n;
  EXPECT_NEAR(cost.shape_at(8), 2.85, 0.05);
  EXPECT_NEAR(cost.shape_at(2), 1.0 + 0.1 / 3, 0.01);  // between 1 and 4: joined by a line
}

TEST(VerifyCost, PassesMeasuredAtZeroSecondsKeepAFiniteShape) {
  VerifyCost cost;
  cost.observe(1, 0.0);
  cost.observe(3, 0.0);
  cost.observe(5, 0.0);
  for (int32_t n = 1; n <= 9; ++n) {
    EXPECT_TRUE(std::isfinite(cost.shape_at(n))) << n;
    EXPECT_GE(cost.shape_at(n), 1.0) << n;
    EXPECT_EQ(cost.seconds(n), 0.0) << n;
  }
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
  // t_verify(5): the ratio at 5 rows is 12 / 10 (to the one-row step
  // before it), and the level moves by 0.5 x (12 / 1.2 - 10) ms = 0 (0.5:
  // the second sample weighs as much as the first), so the sample is
  // reproduced exactly.
  EXPECT_NEAR(estimates.verify().seconds(1), 0.010, 1e-12);
  EXPECT_NEAR(estimates.verify().shape_at(5), 1.2, 1e-12);
  EXPECT_NEAR(estimates.step_seconds(1, 4), 0.004 + 0.012, 1e-12);
  EXPECT_NEAR(estimates.expected_tokens(1, 4), d.acceptance.expected_tokens(4), 1e-12);
  EXPECT_DOUBLE_EQ(estimates.expected_tokens(1, 0), 1.0);
}

}  // namespace
}  // namespace specula

// The shared weighted fits: expected values worked out by hand here.
#include "core/curve_fits.h"

#include <gtest/gtest.h>

#include <vector>

namespace specula {
namespace {

TEST(FitHinge, FindsTheKneeOfAFlatThenSteepCurve) {
  // Flat at 1.0 up to x = 4, then +0.25 per unit: exact, so the knee at 4
  // fits with no error (a line through them would not).
  std::vector<WeightedPoint> points;
  for (int x : {1, 2, 4, 6, 8}) {
    points.push_back({static_cast<double>(x), x <= 4 ? 1.0 : 1.0 + 0.25 * (x - 4), 1.0});
  }
  const Hinge h = fit_hinge(points);
  EXPECT_DOUBLE_EQ(h.knee, 4.0);
  EXPECT_NEAR(h.level, 1.0, 1e-12);
  EXPECT_NEAR(h.slope, 0.25, 1e-12);
  EXPECT_NEAR(h.at(16), 4.0, 1e-12);
  EXPECT_NEAR(h.at(3), 1.0, 1e-12);
}

TEST(FitHinge, ALineIsTheKneeAtZeroAndAFallingOneIsFlat) {
  const std::vector<WeightedPoint> line = {{1, 3, 1}, {2, 5, 1}, {3, 7, 1}};
  const Hinge h = fit_hinge(line);  // knee 0 and knee 1 both fit exactly: the earliest wins
  EXPECT_DOUBLE_EQ(h.knee, 0.0);
  EXPECT_NEAR(h.at(5), 11.0, 1e-12);
  // Falling: slope 0, the weighted mean (3 x 1 + 1 x 5) / 4 = 2.
  const std::vector<WeightedPoint> falling = {{1, 5, 1}, {2, 1, 3}};
  const Hinge f = fit_hinge(falling);
  EXPECT_DOUBLE_EQ(f.slope, 0.0);
  EXPECT_NEAR(f.at(1), 2.0, 1e-12);
  EXPECT_NEAR(f.at(9), 2.0, 1e-12);
}

TEST(FitNonDecreasing, PoolsNeighboursOutOfOrderIntoTheirWeightedMean) {
  const std::vector<double> values = {1, 3, 2, 2, 5};
  const std::vector<double> weights = {1, 1, 1, 2, 1};
  // 3, 2, 2 (weights 1, 1, 2) pool to (3 + 2 + 4) / 4 = 2.25.
  const std::vector<double> fitted = fit_non_decreasing(values, weights);
  const std::vector<double> expected = {1, 2.25, 2.25, 2.25, 5};
  ASSERT_EQ(fitted.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(fitted[i], expected[i], 1e-12) << i;
  const std::vector<double> sorted = {1, 2, 3};
  const std::vector<double> ones = {1, 1, 1};
  EXPECT_EQ(fit_non_decreasing(sorted, ones), sorted);
}

}  // namespace
}  // namespace specula

// The learned cost curve (cost_curve.h): medians per row bucket, so a few
// slow passes move nothing; a hinge fitted through them (flat, then linear),
// non-decreasing in rows, whose per-row cost noise in neighbouring buckets
// cannot make free or dear; the prior shape while only one row count is
// known.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "serve/cost_curve.h"

namespace specula {
namespace {

TEST(CostCurve, EmptyUntilMeasuredAndIgnoresBadSamples) {
  CostCurve c;
  EXPECT_FALSE(c.any());
  EXPECT_EQ(c.seconds(4), 0.0);
  c.observe(0, 1.0);
  c.observe(3, 0.0);
  c.observe(3, -1.0);
  c.observe(3, std::numeric_limits<double>::infinity());
  EXPECT_FALSE(c.any());
  EXPECT_EQ(c.samples(), 0);
}

TEST(CostCurve, OnePointUsesThePriorShape) {
  CostCurveOptions o;
  o.prior_row_fraction = 0.1;
  CostCurve c(o);
  c.observe(1, 0.010);
  EXPECT_DOUBLE_EQ(c.seconds(1), 0.010);
  EXPECT_NEAR(c.seconds(11), 0.010 * 2.0, 1e-12);  // 1 + 0.1 * 10
}

TEST(CostCurve, MediansIgnoreOutliers) {
  CostCurve c;
  for (int i = 0; i < 7; ++i) c.observe(4, 0.010);
  c.observe(4, 5.0);  // a preempted pass
  c.observe(4, 0.0001);
  EXPECT_DOUBLE_EQ(c.seconds(4), 0.010);
}

TEST(CostCurve, FollowsTheLastWindowOfSamples) {
  CostCurveOptions o;
  o.samples_per_bucket = 5;
  CostCurve c(o);
  for (int i = 0; i < 5; ++i) c.observe(2, 0.010);
  for (int i = 0; i < 5; ++i) c.observe(2, 0.020);  // the machine slowed down
  EXPECT_DOUBLE_EQ(c.seconds(2), 0.020);
}

TEST(CostCurve, FlatThenLinear) {
  CostCurve c;
  // Flat to 8 rows, then 1 ms per row.
  for (int rep = 0; rep < 3; ++rep) {
    c.observe(1, 0.010);
    c.observe(8, 0.010);
    c.observe(16, 0.018);
  }
  EXPECT_NEAR(c.seconds(1), 0.010, 1e-12);
  EXPECT_NEAR(c.seconds(4), 0.010, 1e-12);
  EXPECT_NEAR(c.seconds(12), 0.014, 1e-12);
  EXPECT_NEAR(c.seconds(24), 0.026, 1e-12);  // beyond: the same slope
  ASSERT_EQ(c.points().size(), 3u);
  EXPECT_EQ(c.points()[1].rows, 8);
  EXPECT_NEAR(c.points()[2].seconds, 0.018, 1e-12);
}

TEST(CostCurve, NonDecreasingInRows) {
  CostCurve c;
  // Noise made 3 rows look cheaper than 2.
  for (int rep = 0; rep < 3; ++rep) {
    c.observe(1, 0.010);
    c.observe(2, 0.014);
    c.observe(3, 0.012);
    c.observe(4, 0.016);
  }
  double last = 0;
  for (int32_t rows = 1; rows <= 40; ++rows) {
    EXPECT_GE(c.seconds(rows), last) << rows;
    last = c.seconds(rows);
  }
  EXPECT_GT(c.seconds(4), c.seconds(1));
}

TEST(CostCurve, NoisyNeighboursDoNotMakeRowsFree) {
  // Flat to 4 rows, then 1 ms per row, each bucket's median off by up to
  // +-0.8 ms (a loaded machine): the marginal cost of a row past the knee
  // stays near 1 ms everywhere; joined piece by piece, some rows would cost
  // nothing and others twice as much.
  CostCurve c;
  const double noise[] = {0.0008, -0.0006, 0.0007, -0.0008, 0.0005, -0.0007, 0.0008, -0.0005};
  for (int rep = 0; rep < 5; ++rep) {
    for (int32_t rows = 1; rows <= 24; ++rows) {
      c.observe(rows, 0.010 + 0.001 * std::max(0, rows - 4) + noise[rows % 8]);
    }
  }
  for (int32_t rows = 6; rows < 30; ++rows) {
    const double marginal = c.seconds(rows + 1) - c.seconds(rows);
    EXPECT_GT(marginal, 0.0007) << rows;
    EXPECT_LT(marginal, 0.0013) << rows;
  }
  EXPECT_NEAR(c.seconds(1), 0.010, 0.001);
}

TEST(CostCurve, BucketsAreExactToSixteenThenGeometric) {
  for (int32_t r = 1; r <= 16; ++r) EXPECT_EQ(CostCurve::bucket_of(r), r - 1);
  EXPECT_EQ(CostCurve::bucket_of(17), 16);
  EXPECT_EQ(CostCurve::bucket_of(19), 16);  // 16 * 2^(1/4) = 19.03
  EXPECT_EQ(CostCurve::bucket_of(20), 17);
  EXPECT_EQ(CostCurve::bucket_of(32), 19);
  EXPECT_EQ(CostCurve::bucket_of(64), 23);
  int32_t last = 0;
  for (int32_t r = 1; r < 5000; ++r) {
    EXPECT_GE(CostCurve::bucket_of(r), last);
    last = CostCurve::bucket_of(r);
  }
}

}  // namespace
}  // namespace specula

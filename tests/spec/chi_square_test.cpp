// The chi-square survival function against published table values, so that
// the losslessness tests' p-values can be trusted.
#include "spec/chi_square.h"

#include <gtest/gtest.h>

namespace specula::testing {
namespace {

TEST(ChiSquare, SurvivalMatchesTableValues) {
  struct Case {
    double statistic;
    double dof;
    double p;
  };
  // Critical values from standard chi-square tables (upper-tail p).
  const Case cases[] = {
      {3.841459, 1, 0.05},     {6.634897, 1, 0.01},    {10.827566, 1, 0.001},
      {5.991465, 2, 0.05},     {18.307038, 10, 0.05},  {23.209251, 10, 0.01},
      {15.086272, 5, 0.01},    {59.703007, 30, 0.001}, {124.342113, 100, 0.05},
      {135.806723, 100, 0.01}, {0.454936, 1, 0.5},     {9.341818, 10, 0.5},
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(chi_square_survival(c.statistic, c.dof), c.p, c.p * 1e-4)
        << "chi2 = " << c.statistic << ", dof = " << c.dof;
  }
}

TEST(ChiSquare, TwoDegreesOfFreedomIsAnExponential) {
  // With 2 degrees of freedom the survival function is exactly exp(-x/2).
  for (double x : {0.1, 1.0, 4.0, 10.0, 30.0, 80.0}) {
    EXPECT_NEAR(chi_square_survival(x, 2), std::exp(-x / 2), std::exp(-x / 2) * 1e-10);
  }
  EXPECT_DOUBLE_EQ(chi_square_survival(0.0, 3), 1.0);
}

TEST(ChiSquare, TestAcceptsAFitAndRejectsAMisfit) {
  const std::vector<double> probs = {0.5, 0.3, 0.2};
  EXPECT_GT(chi_square_test({5010, 2985, 2005}, probs).p_value, 0.5);
  EXPECT_LT(chi_square_test({5300, 2800, 1900}, probs).p_value, 1e-4);
  // A count where the probability is zero is an immediate rejection.
  EXPECT_EQ(chi_square_test({5000, 3000, 1999, 1}, {0.5, 0.3, 0.2, 0.0}).p_value, 0.0);
}

}  // namespace
}  // namespace specula::testing

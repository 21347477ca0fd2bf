// Goodness-of-fit by Pearson's chi-square, with the survival function
// computed here from the regularized incomplete gamma function (no
// statistics package), for the losslessness tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace specula::testing {

// P(a, x) by its power series; converges quickly for x < a + 1.
inline double lower_gamma_series(double a, double x) {
  double term = 1.0 / a;
  double sum = term;
  for (int n = 1; n < 10000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Q(a, x) by its continued fraction (modified Lentz); for x >= a + 1.
inline double upper_gamma_fraction(double a, double x) {
  const double tiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / tiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

// The regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) / Gamma(a).
inline double regularized_upper_gamma(double a, double x) {
  if (x <= 0.0) return 1.0;
  if (x < a + 1.0) return 1.0 - lower_gamma_series(a, x);
  return upper_gamma_fraction(a, x);
}

// P(X >= statistic) for X ~ chi-square with `dof` degrees of freedom.
inline double chi_square_survival(double statistic, double dof) {
  return regularized_upper_gamma(dof / 2.0, statistic / 2.0);
}

struct GoodnessOfFit {
  double statistic = 0;
  int dof = 0;
  double p_value = 1;
  std::string detail;  // for failure messages
};

// Pearson's test of observed counts against expected probabilities (summing
// to 1). Cells expected below 5 are pooled into one cell so the chi-square
// approximation holds; a count in a cell of probability 0 gives p = 0.
inline GoodnessOfFit chi_square_test(const std::vector<int64_t>& observed,
                                     const std::vector<double>& expected_probs) {
  GoodnessOfFit fit;
  int64_t total = 0;
  for (int64_t n : observed) total += n;
  double pooled_expected = 0;
  int64_t pooled_observed = 0;
  int cells = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double expected = expected_probs[i] * static_cast<double>(total);
    if (expected_probs[i] <= 0.0) {
      if (observed[i] > 0) {
        fit.p_value = 0;
        fit.statistic = std::numeric_limits<double>::infinity();
        fit.detail = "cell " + std::to_string(i) + " has probability 0 but was seen " +
                     std::to_string(observed[i]) + " times";
        return fit;
      }
      continue;
    }
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_observed += observed[i];
      continue;
    }
    const double diff = static_cast<double>(observed[i]) - expected;
    fit.statistic += diff * diff / expected;
    ++cells;
  }
  if (pooled_expected > 0) {
    const double diff = static_cast<double>(pooled_observed) - pooled_expected;
    fit.statistic += diff * diff / pooled_expected;
    ++cells;
  }
  fit.dof = cells - 1;
  fit.p_value = fit.dof > 0 ? chi_square_survival(fit.statistic, fit.dof) : 1.0;
  fit.detail = "chi2 = " + std::to_string(fit.statistic) + ", dof = " + std::to_string(fit.dof) +
               ", p = " + std::to_string(fit.p_value) + ", samples = " + std::to_string(total);
  return fit;
}

}  // namespace specula::testing

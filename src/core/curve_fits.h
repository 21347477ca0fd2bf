// Small weighted fits shared by the cost and acceptance estimates: a hinge
// (flat, then a line) for costs against rows, and a non-decreasing
// (isotonic) fit for noisy values that must not fall.
#pragma once

#include <span>
#include <vector>

namespace specula {

struct WeightedPoint {
  double x = 0, y = 0, weight = 0;  // weight > 0
};

// y = level + slope * max(0, x - knee), slope >= 0.
struct Hinge {
  double level = 0, slope = 0, knee = 0;
  double at(double x) const { return level + slope * (x > knee ? x - knee : 0.0); }
};

// The weighted least-squares hinge with its knee at 0 (a line, for x > 0)
// or at one of the points' x; the smallest error wins, ties keep the
// earliest knee. A slope the data makes negative is 0 (a flat weighted
// mean). Points sorted by x, at least one.
Hinge fit_hinge(std::span<const WeightedPoint> points);

// The weighted least-squares non-decreasing sequence through `values`
// (pool adjacent violators): neighbours out of order are merged into
// their weighted mean. weights.size() == values.size(), weights > 0.
std::vector<double> fit_non_decreasing(std::span<const double> values,
                                       std::span<const double> weights);

}  // namespace specula

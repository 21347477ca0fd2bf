#include "core/curve_fits.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace specula {

Hinge fit_hinge(std::span<const WeightedPoint> points) {
  assert(!points.empty());
  Hinge best;
  double best_error = std::numeric_limits<double>::infinity();
  for (size_t candidate = 0; candidate <= points.size(); ++candidate) {
    const double knee = candidate == 0 ? 0.0 : points[candidate - 1].x;
    const auto x_of = [&](const WeightedPoint& p) { return std::max(0.0, p.x - knee); };
    double w_sum = 0, x_mean = 0, y_mean = 0;
    for (const WeightedPoint& p : points) {
      w_sum += p.weight;
      x_mean += p.weight * x_of(p);
      y_mean += p.weight * p.y;
    }
    x_mean /= w_sum;
    y_mean /= w_sum;
    double sxx = 0, sxy = 0;
    for (const WeightedPoint& p : points) {
      const double dx = x_of(p) - x_mean;
      sxx += p.weight * dx * dx;
      sxy += p.weight * dx * (p.y - y_mean);
    }
    Hinge h;
    h.knee = knee;
    h.slope = sxx > 0 ? std::max(0.0, sxy / sxx) : 0.0;
    h.level = y_mean - h.slope * x_mean;
    double error = 0;
    for (const WeightedPoint& p : points) error += p.weight * (p.y - h.at(p.x)) * (p.y - h.at(p.x));
    if (error < best_error * (1.0 - 1e-12)) {
      best_error = error;
      best = h;
    }
  }
  return best;
}

std::vector<double> fit_non_decreasing(std::span<const double> values,
                                       std::span<const double> weights) {
  assert(values.size() == weights.size());
  struct Block {
    size_t first, last;
    double mean, weight;
  };
  std::vector<Block> blocks;
  blocks.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    Block block{i, i, values[i], weights[i]};
    while (!blocks.empty() && blocks.back().mean >= block.mean) {
      const Block& low = blocks.back();
      const double weight = low.weight + block.weight;
      block = {low.first, block.last, (low.mean * low.weight + block.mean * block.weight) / weight,
               weight};
      blocks.pop_back();
    }
    blocks.push_back(block);
  }
  std::vector<double> fitted(values.size());
  for (const Block& block : blocks) {
    std::fill(fitted.begin() + static_cast<std::ptrdiff_t>(block.first),
              fitted.begin() + static_cast<std::ptrdiff_t>(block.last) + 1, block.mean);
  }
  return fitted;
}

}  // namespace specula

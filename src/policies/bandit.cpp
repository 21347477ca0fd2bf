#include "policies/bandit.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace specula {
namespace {

// Below this discounted weight an arm counts as untried.
constexpr double kUntried = 1e-3;

}  // namespace

double standard_normal(Rng& rng) {
  const double u1 = 1.0 - rng.uniform();  // (0, 1]: log is finite
  const double u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

DrafterBandit::DrafterBandit(int32_t n_arms, BanditOptions options) : options_(options) {
  if (n_arms < 1) fail("a drafter bandit needs at least one drafter");
  if (!(options.discount > 0.0 && options.discount <= 1.0) || options.carry_over_weight < 0.0) {
    fail("bandit options out of range: discount in (0, 1], carry-over weight >= 0");
  }
  arms_.resize(static_cast<size_t>(n_arms));
}

void DrafterBandit::begin_sequence() {
  for (Arm& arm : arms_) {
    if (arm.weight <= options_.carry_over_weight) continue;
    const double scale = options_.carry_over_weight / arm.weight;
    arm.weight *= scale;
    arm.sum *= scale;
    arm.sum_squares *= scale;
  }
}

double DrafterBandit::mean(int32_t arm) const {
  const Arm& a = arms_.at(static_cast<size_t>(arm));
  return a.weight > 0 ? a.sum / a.weight : 0.0;
}

double DrafterBandit::weight(int32_t arm) const {
  return arms_.at(static_cast<size_t>(arm)).weight;
}

int64_t DrafterBandit::pulls(int32_t arm) const {
  return arms_.at(static_cast<size_t>(arm)).pulls;
}

double DrafterBandit::pooled_variance() const {
  double weight = 0, sum = 0, sum_squares = 0;
  for (const Arm& a : arms_) {
    weight += a.weight;
    sum += a.sum;
    sum_squares += a.sum_squares;
  }
  if (weight <= 0) return 0.0;
  const double m = sum / weight;
  // Spread around the overall mean: includes the gap between arms, which
  // keeps a thinly observed arm's posterior wide enough to be re-tried.
  return std::max(0.0, sum_squares / weight - m * m);
}

double DrafterBandit::variance(const Arm& a, double pooled) const {
  const double m = a.sum / a.weight;
  const double own = std::max(0.0, a.sum_squares / a.weight - m * m);
  // One pseudo-observation of the pooled variance: an arm seen once or
  // twice does not claim to be certain.
  const double v = (a.weight * own + pooled) / (a.weight + 1.0);
  return std::max(v, 1e-12 * (m * m + 1.0));
}

int32_t DrafterBandit::choose(std::span<const int32_t> candidates, Rng& rng) const {
  assert(!candidates.empty());
  for (int32_t c : candidates) {
    if (arms_.at(static_cast<size_t>(c)).weight < kUntried) return c;
  }
  if (candidates.size() == 1) return candidates[0];
  const double pooled = pooled_variance();
  int32_t best = candidates[0];
  double best_draw = -INFINITY;
  for (int32_t c : candidates) {
    const Arm& a = arms_[static_cast<size_t>(c)];
    const double draw =
        a.sum / a.weight + std::sqrt(variance(a, pooled) / a.weight) * standard_normal(rng);
    if (draw > best_draw) {
      best_draw = draw;
      best = c;
    }
  }
  return best;
}

void DrafterBandit::observe_step(int32_t arm, int32_t emitted, double measured_seconds) {
  const double seconds = options_.step_seconds
                             ? options_.step_seconds(arm, emitted, measured_seconds)
                             : measured_seconds;
  if (seconds > 0) observe(arm, emitted / seconds);
}

void DrafterBandit::observe(int32_t arm, double reward) {
  if (!std::isfinite(reward)) return;
  for (Arm& a : arms_) {
    a.weight *= options_.discount;
    a.sum *= options_.discount;
    a.sum_squares *= options_.discount;
  }
  Arm& a = arms_.at(static_cast<size_t>(arm));
  a.weight += 1.0;
  a.sum += reward;
  a.sum_squares += reward * reward;
  ++a.pulls;
}

}  // namespace specula

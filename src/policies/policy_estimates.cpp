#include "policies/policy_estimates.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/curve_fits.h"

namespace specula {

AcceptanceEstimate::AcceptanceEstimate(AcceptanceOptions options) : options_(options) {}

void AcceptanceEstimate::observe(int32_t drafted, int32_t accepted) {
  assert(accepted >= 0 && accepted <= drafted);
  const int32_t judged = std::min({drafted, accepted + 1, options_.max_positions});
  if (static_cast<int32_t>(positions_.size()) < judged) positions_.resize(judged);
  for (int32_t i = 0; i < judged; ++i) {
    const bool kept = i < accepted;
    positions_[i].observe(kept, options_.decay);
    pooled_.observe(kept, options_.decay);
  }
  // Positions past the judged ones learn nothing from this draft, but their
  // evidence ages like everyone's: when short drafts are all that run, an
  // old verdict on a deep position fades towards its prior (the estimate
  // of the position before it, at()) instead of deciding every later
  // draft length.
  for (size_t i = judged; i < positions_.size(); ++i) positions_[i].fade(options_.decay);
}

double AcceptanceEstimate::pooled() const {
  return pooled_.mean(options_.prior_mean, options_.prior_weight);
}

double AcceptanceEstimate::at(int32_t position) const {
  // Position 0 is shrunk towards the pooled rate, each later one towards
  // the estimate before it: conditional acceptance is about flat in depth
  // for a draft model (0.66-0.77 at positions 0-2 on the shipped pair) and
  // rises to ~1 after the first token for prompt lookup (it matches a
  // whole run or fails at once), so the pooled rate, dragged down by
  // position 0's rejections, underpriced the deep positions a policy
  // drafting short rarely judges, and it kept drafting short.
  double estimate = pooled();
  const int32_t known = static_cast<int32_t>(positions_.size());
  for (int32_t i = 0; i <= position && i < known; ++i) {
    estimate = positions_[i].mean(estimate, options_.pooling_weight);
  }
  return estimate;
}

double AcceptanceEstimate::trials_at(int32_t position) const {
  if (position < 0 || position >= static_cast<int32_t>(positions_.size())) return 0.0;
  return positions_[position].trials();
}

double AcceptanceEstimate::expected_tokens(int32_t g) const {
  double expected = 1.0;
  double all_accepted = 1.0;
  double a = pooled();  // at(j), built up as at() does
  const int32_t known = static_cast<int32_t>(positions_.size());
  for (int32_t j = 0; j < g; ++j) {
    if (j < known) a = positions_[j].mean(a, options_.pooling_weight);
    all_accepted *= a;
    expected += all_accepted;
  }
  return expected;
}

void AcceptanceEstimate::cap(double max_trials) {
  for (DecayedRate& rate : positions_) rate.cap(max_trials);
  pooled_.cap(max_trials);
}

ConfidenceCalibration::ConfidenceCalibration(int32_t buckets, double decay, double prior_weight)
    : buckets_(static_cast<size_t>(std::max(1, buckets))),
      decay_(decay),
      prior_weight_(prior_weight) {}

int32_t ConfidenceCalibration::bucket_of(float confidence) const {
  const int32_t n = buckets();
  const int32_t b =
      static_cast<int32_t>(std::clamp(confidence, 0.0f, 1.0f) * static_cast<float>(n));
  return std::min(b, n - 1);
}

double ConfidenceCalibration::prior(int32_t bucket) const {
  const double midpoint = (bucket + 0.5) / buckets();
  return std::max(midpoint, all_.mean(0.5, prior_weight_));
}

void ConfidenceCalibration::observe(float confidence, bool accepted) {
  buckets_[bucket_of(confidence)].observe(accepted, decay_);
  all_.observe(accepted, decay_);
}

double ConfidenceCalibration::acceptance(float confidence) const {
  const int32_t b = bucket_of(confidence);
  return buckets_[b].mean(prior(b), prior_weight_);
}

std::vector<double> ConfidenceCalibration::monotone_acceptance() const {
  const int32_t n = buckets();
  std::vector<double> rates(static_cast<size_t>(n)), weights(static_cast<size_t>(n));
  for (int32_t b = 0; b < n; ++b) {
    rates[b] = buckets_[b].mean(prior(b), prior_weight_);
    weights[b] = buckets_[b].trials() + prior_weight_;
  }
  return fit_non_decreasing(rates, weights);
}

float ConfidenceCalibration::threshold_for(double needed) const {
  if (needed <= 0.0) return 0.0f;
  const std::vector<double> fitted = monotone_acceptance();
  const int32_t n = buckets();
  int32_t lowest = n;  // the fit is non-decreasing: every bucket from here on qualifies
  while (lowest > 0 && fitted[lowest - 1] >= needed) --lowest;
  return static_cast<float>(lowest) / static_cast<float>(n);
}

double ConfidenceCalibration::observations() const {
  double total = 0.0;
  for (const DecayedRate& rate : buckets_) total += rate.trials();
  return total;
}

void ConfidenceCalibration::cap(double max_trials) {
  for (DecayedRate& rate : buckets_) rate.cap(max_trials);
  all_.cap(max_trials);
}

VerifyCost::VerifyCost(CostOptions options) : options_(options) {}

void VerifyCost::observe(int32_t rows, double seconds) {
  if (rows < 1 || seconds < 0) return;
  if (static_cast<int32_t>(ratio_by_rows_.size()) < rows) ratio_by_rows_.resize(rows);
  Ewma& ratio = ratio_by_rows_[rows - 1];
  constexpr int64_t kSamplesBeforeClipping = 3;
  if (ratio.samples() >= kSamplesBeforeClipping) {
    seconds = std::min(seconds, options_.outlier_factor * this->seconds(rows));
  }
  // The shape learns only from a step whose row count differs from the
  // step before: its ratio to that step's time, priced by that row
  // count's shape (two passes moments apart see the same machine speed).
  // A step of the same row count again says nothing about the shape.
  // Taking every sample's ratio to the level instead (which the sample
  // had just moved) let the split between level and shape drift while a
  // policy ran one row count: on Zen 4 with g = 4 at nearly every step,
  // shape(5) fell from 1.2 to 1.05 in 30 steps and t(1) rose from 35 to
  // 40 ms (measured: 1.25 and 35 ms), so longer drafts, and speculating
  // at all, looked cheaper than they were.
  const bool first = !level_.known();
  if (first) {
    ratio.observe(shape_at(rows), options_.shape_weight);
  } else if (rows != last_rows_ && last_seconds_ > 0.0) {
    ratio.observe(shape_at(last_rows_) * seconds / last_seconds_, options_.shape_weight);
  }
  last_rows_ = rows;
  last_seconds_ = seconds;
  refit();
  // Then the level moves by what the sample says a one-row pass costs now,
  // so that a change of speed lands in the level.
  level_.observe(seconds / shape_at(rows), options_.ewma_weight);
}

bool VerifyCost::measured(int32_t rows) const {
  return rows >= 1 && rows <= static_cast<int32_t>(ratio_by_rows_.size()) &&
         ratio_by_rows_[rows - 1].known();
}

bool VerifyCost::any() const {
  return level_.known();
}

void VerifyCost::refit() {
  ShapeFit fit;
  std::vector<WeightedPoint> points;
  for (int32_t n = 1; n <= static_cast<int32_t>(ratio_by_rows_.size()); ++n) {
    const Ewma& e = ratio_by_rows_[n - 1];
    if (!e.known()) continue;
    const double w = std::min(static_cast<double>(e.samples()), options_.max_fit_weight);
    points.push_back({static_cast<double>(n), e.mean(), w});
  }
  if (points.size() < 2) {
    shape_ = fit;  // the prior
    return;
  }
  // One hinge through every measured ratio informs the row counts not run
  // lately; each measured one keeps its own ratio, drawn towards the hinge
  // by fit_prior_weight samples, and the ratios are kept non-decreasing in
  // n (more rows never cost less). A line alone priced a curve that is
  // flat up to a tile height and then steep (t(8) / t(1) = 2.1 but t(4) /
  // t(1) = 1.2 on Zen 4, Q4_0) wrong at both ends.
  fit.hinge = fit_hinge(points);
  std::vector<double> weights;
  fit.lowest = points.front().y;
  for (const WeightedPoint& p : points) {
    const double k = options_.fit_prior_weight;
    fit.rows.push_back(p.x);
    fit.values.push_back((p.weight * p.y + k * fit.hinge.at(p.x)) / (p.weight + k));
    weights.push_back(p.weight + k);
    fit.lowest = std::min(fit.lowest, p.y);
  }
  fit.values = fit_non_decreasing(fit.values, weights);
  fit.one = fit.at(1);
  // Only passes measured at 0 s (no clock) could make every ratio 0: the
  // prior then.
  shape_ = fit.one > 0.0 ? std::move(fit) : ShapeFit{};
}

double VerifyCost::ShapeFit::at(int32_t n) const {
  // Between measured row counts: linear; outside them: the hinge's change
  // from the nearest one. No pass is cheaper than half the cheapest one
  // measured.
  const double x = n;
  double value;
  if (x <= rows.front()) {
    value = values.front() + hinge.at(x) - hinge.at(rows.front());
  } else if (x >= rows.back()) {
    value = values.back() + hinge.at(x) - hinge.at(rows.back());
  } else {
    size_t i = 1;
    while (rows[i] < x) ++i;
    const double t = (x - rows[i - 1]) / (rows[i] - rows[i - 1]);
    value = values[i - 1] + t * (values[i] - values[i - 1]);
  }
  return std::max(value, 0.5 * lowest);
}

double VerifyCost::shape_at(int32_t rows) const {
  if (shape_.rows.empty()) return 1.0 + options_.prior_row_fraction * (rows - 1);
  return shape_.at(rows) / shape_.one;
}

double VerifyCost::seconds(int32_t rows) const {
  return level_.known() ? level_.mean() * shape_at(rows) : 0.0;
}

SpeculationEstimates::SpeculationEstimates(AcceptanceOptions acceptance, CostOptions cost)
    : acceptance_options_(acceptance), cost_options_(cost), verify_(cost) {}

DrafterEstimate& SpeculationEstimates::drafter(int32_t slot) {
  assert(slot >= 0);
  while (static_cast<int32_t>(drafters_.size()) <= slot)
    drafters_.emplace_back(acceptance_options_);
  return drafters_[slot];
}

const DrafterEstimate* SpeculationEstimates::find(int32_t slot) const {
  if (slot < 0 || slot >= static_cast<int32_t>(drafters_.size())) return nullptr;
  return &drafters_[slot];
}

void SpeculationEstimates::observe(const StepOutcome& outcome) {
  verify_.observe(outcome.drafted + 1, outcome.verify_seconds);
  if (outcome.slot < 0 || outcome.drafted <= 0) return;
  DrafterEstimate& d = drafter(outcome.slot);
  d.acceptance.observe(outcome.drafted, outcome.accepted);
  d.seconds_per_token.observe(outcome.draft_seconds / outcome.drafted, cost_options_.ewma_weight);
  // Only tokens whose prefix was accepted were judged.
  const int32_t judged = std::min<int32_t>(outcome.accepted + 1, outcome.drafted);
  for (int32_t i = 0; i < judged && i < static_cast<int32_t>(outcome.confidence.size()); ++i) {
    d.calibration.observe(outcome.confidence[i], i < outcome.accepted);
  }
}

void SpeculationEstimates::observe_shadow(int32_t slot, int32_t drafted, int32_t matched) {
  if (slot < 0 || drafted <= 0) return;
  drafter(slot).acceptance.observe(drafted, std::clamp(matched, 0, drafted));
}

double SpeculationEstimates::expected_tokens(int32_t slot, int32_t g) const {
  if (g <= 0) return 1.0;
  const DrafterEstimate* d = find(slot);
  if (d) return d->acceptance.expected_tokens(g);
  return AcceptanceEstimate(acceptance_options_).expected_tokens(g);
}

double SpeculationEstimates::step_seconds(int32_t slot, int32_t g) const {
  double seconds = verify_.seconds(g + 1);
  if (g > 0) {
    const DrafterEstimate* d = find(slot);
    if (d && d->seconds_per_token.known()) seconds += g * d->seconds_per_token.mean();
  }
  return seconds;
}

double SpeculationEstimates::tokens_per_second(int32_t slot, int32_t g) const {
  const double seconds = step_seconds(slot, g);
  return seconds > 0 ? expected_tokens(slot, g) / seconds : 0.0;
}

void SpeculationEstimates::cap(double max_trials) {
  for (DrafterEstimate& d : drafters_) {
    d.acceptance.cap(max_trials);
    d.calibration.cap(max_trials);
  }
}

}  // namespace specula

#include "spec/policy_estimates.h"

#include <algorithm>
#include <cassert>

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
}

double AcceptanceEstimate::pooled() const {
  return pooled_.mean(options_.prior_mean, options_.prior_weight);
}

double AcceptanceEstimate::at(int32_t position) const {
  const double pool = pooled();
  if (position < 0 || position >= static_cast<int32_t>(positions_.size())) return pool;
  return positions_[position].mean(pool, options_.pooling_weight);
}

double AcceptanceEstimate::trials_at(int32_t position) const {
  if (position < 0 || position >= static_cast<int32_t>(positions_.size())) return 0.0;
  return positions_[position].trials();
}

double AcceptanceEstimate::expected_tokens(int32_t g) const {
  double expected = 1.0;
  double all_accepted = 1.0;
  for (int32_t j = 0; j < g; ++j) {
    all_accepted *= at(j);
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

float ConfidenceCalibration::threshold_for(double needed) const {
  if (needed <= 0.0) return 0.0f;
  const int32_t n = buckets();
  int32_t lowest = n;  // lowest bucket from which every bucket qualifies
  for (int32_t b = n - 1; b >= 0; --b) {
    if (buckets_[b].mean(prior(b), prior_weight_) < needed) break;
    lowest = b;
  }
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
  if (static_cast<int32_t>(by_rows_.size()) < rows) by_rows_.resize(rows);
  by_rows_[rows - 1].observe(seconds, options_.ewma_weight);
}

bool VerifyCost::measured(int32_t rows) const {
  return rows >= 1 && rows <= static_cast<int32_t>(by_rows_.size()) && by_rows_[rows - 1].known();
}

bool VerifyCost::any() const {
  return std::any_of(by_rows_.begin(), by_rows_.end(), [](const Ewma& e) { return e.known(); });
}

double VerifyCost::seconds(int32_t rows) const {
  // The measured n nearest below and above `rows`, and the next ones out.
  const int32_t size = static_cast<int32_t>(by_rows_.size());
  auto t = [&](int32_t n) { return by_rows_[n - 1].mean(); };
  int32_t below = 0, below2 = 0, above = 0, above2 = 0;
  double running_max = 0.0;  // of measured t(m), m <= rows: keeps the curve non-decreasing
  for (int32_t n = 1; n <= size; ++n) {
    if (!by_rows_[n - 1].known()) continue;
    if (n <= rows) {
      below2 = below;
      below = n;
      running_max = std::max(running_max, t(n));
    } else if (above == 0) {
      above = n;
    } else if (above2 == 0) {
      above2 = n;
    }
  }
  if (below == rows) return running_max;
  double estimate = 0.0;
  if (below > 0 && above > 0) {
    const double w = static_cast<double>(rows - below) / (above - below);
    estimate = t(below) * (1 - w) + t(above) * w;
  } else if (below > 0) {
    const double slope = below2 > 0 ? std::max(0.0, (t(below) - t(below2)) / (below - below2))
                                    : options_.prior_row_fraction * t(below);
    estimate = t(below) + slope * (rows - below);
  } else if (above > 0) {
    const double slope = above2 > 0 ? std::max(0.0, (t(above2) - t(above)) / (above2 - above))
                                    : options_.prior_row_fraction * t(above);
    // A pass is never cheaper than its share of a perfectly linear one.
    estimate = std::max(t(above) - slope * (above - rows), t(above) * rows / above);
  }
  return std::max(estimate, running_max);
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

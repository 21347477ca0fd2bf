#include "serve/cost_curve.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/curve_fits.h"

namespace specula {
namespace {

constexpr int32_t kExactRows = 16;        // one bucket per row count up to here
constexpr int32_t kBucketsPerDouble = 4;  // then geometric buckets

double median(std::vector<double> values) {
  const size_t n = values.size();
  std::nth_element(values.begin(), values.begin() + n / 2, values.end());
  double m = values[n / 2];
  if (n % 2 == 0) {
    m = (m + *std::max_element(values.begin(), values.begin() + n / 2)) / 2.0;
  }
  return m;
}

}  // namespace

CostCurve::CostCurve(CostCurveOptions options) : options_(options) {
  options_.samples_per_bucket = std::max(1, options_.samples_per_bucket);
}

int32_t CostCurve::bucket_of(int32_t rows) {
  if (rows <= kExactRows) return std::max(rows, 1) - 1;
  const double doublings = std::log2(static_cast<double>(rows) / kExactRows);
  return kExactRows - 1 + static_cast<int32_t>(std::ceil(doublings * kBucketsPerDouble - 1e-9));
}

void CostCurve::observe(int32_t rows, double seconds) {
  if (rows < 1 || !(seconds > 0) || !std::isfinite(seconds)) return;
  const size_t b = static_cast<size_t>(bucket_of(rows));
  if (buckets_.size() <= b) buckets_.resize(b + 1);
  Bucket& bucket = buckets_[b];
  const size_t window = static_cast<size_t>(options_.samples_per_bucket);
  if (bucket.seconds.size() < window) {
    bucket.seconds.push_back(seconds);
    bucket.rows.push_back(rows);
  } else {
    bucket.seconds[bucket.next] = seconds;
    bucket.rows[bucket.next] = rows;
  }
  bucket.next = (bucket.next + 1) % window;
  ++bucket.count;
  ++samples_;
  refit();
}

void CostCurve::refit() {
  // Each measured bucket: its median at its samples' mean row count,
  // weighted by how many samples it holds.
  std::vector<Point> raw;
  std::vector<double> weights;
  for (const Bucket& bucket : buckets_) {
    if (bucket.seconds.empty()) continue;
    double rows = 0;
    for (int32_t r : bucket.rows) rows += r;
    rows /= static_cast<double>(bucket.rows.size());
    raw.push_back({static_cast<int32_t>(std::lround(rows)), median(bucket.seconds)});
    weights.push_back(static_cast<double>(bucket.seconds.size()));
  }
  points_.clear();
  if (raw.empty()) return;
  floor_ = raw.front().seconds;
  for (const Point& p : raw) floor_ = std::min(floor_, p.seconds);
  floor_ *= 0.1;
  if (raw.size() == 1) {
    // The prior shape 1 + f (n - 1) through the one median.
    const double f = options_.prior_row_fraction;
    slope_ = raw[0].seconds * f / (1.0 + f * (raw[0].rows - 1));
    level_ = raw[0].seconds - slope_ * (raw[0].rows - 1);
    knee_ = 1;
  } else {
    // The hinge at each measured row count (and at 0: a line), fitted by
    // weighted least squares; the best one wins.
    std::vector<WeightedPoint> fit_points;
    for (size_t i = 0; i < raw.size(); ++i) {
      fit_points.push_back({static_cast<double>(raw[i].rows), raw[i].seconds, weights[i]});
    }
    const Hinge hinge = fit_hinge(fit_points);
    level_ = hinge.level;
    slope_ = hinge.slope;
    knee_ = static_cast<int32_t>(hinge.knee);
  }
  for (const Point& p : raw) points_.push_back({p.rows, seconds(p.rows)});
}

double CostCurve::seconds(int32_t rows) const {
  if (buckets_.empty() || samples_ == 0) return 0.0;
  rows = std::max(rows, 1);
  return std::max(floor_, level_ + slope_ * std::max(0, rows - knee_));
}

}  // namespace specula

#include "serve/cost_curve.h"

#include <algorithm>
#include <cmath>

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
  // Pool adjacent violators: a non-decreasing fit of the medians.
  std::vector<double> level, weight;
  std::vector<size_t> size;
  for (size_t i = 0; i < raw.size(); ++i) {
    level.push_back(raw[i].seconds);
    weight.push_back(weights[i]);
    size.push_back(1);
    while (level.size() >= 2 && level[level.size() - 2] > level.back()) {
      const size_t n = level.size();
      const double w = weight[n - 2] + weight[n - 1];
      level[n - 2] = (level[n - 2] * weight[n - 2] + level[n - 1] * weight[n - 1]) / w;
      weight[n - 2] = w;
      size[n - 2] += size[n - 1];
      level.pop_back();
      weight.pop_back();
      size.pop_back();
    }
  }
  points_.clear();
  size_t i = 0;
  for (size_t block = 0; block < level.size(); ++block) {
    for (size_t k = 0; k < size[block]; ++k, ++i) points_.push_back({raw[i].rows, level[block]});
  }
  // Rounded mean row counts of neighbouring buckets never coincide (their
  // ranges do not overlap), so the rows stay strictly increasing.
}

double CostCurve::seconds(int32_t rows) const {
  if (points_.empty()) return 0.0;
  rows = std::max(rows, 1);
  const double f = options_.prior_row_fraction;
  const Point& first = points_.front();
  const Point& last = points_.back();
  if (points_.size() == 1) {
    // Scale the one measurement by the prior shape 1 + f (n - 1).
    return first.seconds * (1.0 + f * (rows - 1)) / (1.0 + f * (first.rows - 1));
  }
  auto on_segment = [&](const Point& a, const Point& b) {
    const double slope = std::max(0.0, (b.seconds - a.seconds) / (b.rows - a.rows));
    return a.seconds + slope * (rows - a.rows);
  };
  if (rows <= first.rows) {
    // Below the measured range: the first segment's slope, never below a
    // tenth of the first point (a pass is never free).
    return std::max(on_segment(first, points_[1]), first.seconds * 0.1);
  }
  if (rows >= last.rows) return on_segment(points_[points_.size() - 2], last);
  const auto upper = std::upper_bound(points_.begin(), points_.end(), rows,
                                      [](int32_t r, const Point& p) { return r < p.rows; });
  return on_segment(*(upper - 1), *upper);
}

}  // namespace specula

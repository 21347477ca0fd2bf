// t_target(rows): the measured seconds of one target forward pass against
// the number of rows it carried, learned online by the scheduler (and
// optionally seeded by a short profile at start-up). Flat while the target
// is memory-bound (each weight is read once for all rows), rising once the
// arithmetic dominates; the capacity-aware batch policy (batch_policy.h)
// prices extra verify rows with it.
//
// Robust by construction: rows fall into buckets (every count up to 16,
// then four per doubling), each bucket keeps its last few samples and is
// represented by their median (one preempted pass on a shared machine moves
// nothing), and one curve of the expected shape is fitted through the
// bucket medians (weighted by their samples): a hinge,
//
//   t(rows) = a + b * max(0, rows - k),   b >= 0,
//
// flat up to k rows, then b seconds per row, with k chosen among the
// measured row counts by least squares. A single global shape matters for
// the allocator, which prices a row by t(R + 1) - t(R): joining noisy
// neighbouring medians piece by piece made some rows look free (two
// buckets pooled to one value) and others dear, while the hinge gives every
// row past k the slope all the buckets agree on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace specula {

struct CostCurveOptions {
  int32_t samples_per_bucket = 9;  // the median window
  // Before two row counts are measured, each extra row is assumed to cost
  // this fraction of a one-row pass (between memory-bound ~0 and
  // compute-bound ~1), as VerifyCost assumes.
  double prior_row_fraction = 0.1;
};

class CostCurve {
 public:
  explicit CostCurve(CostCurveOptions options = {});

  // One pass of `rows` rows (>= 1) took `seconds` (> 0; others are ignored).
  void observe(int32_t rows, double seconds);
  // The estimate for a pass of `rows` rows; 0 while nothing is measured.
  double seconds(int32_t rows) const;
  bool any() const { return !points_.empty(); }
  int64_t samples() const { return samples_; }

  // The fitted curve at its measured buckets (rows ascending), for metrics.
  struct Point {
    int32_t rows = 0;
    double seconds = 0;
  };
  const std::vector<Point>& points() const { return points_; }

  // The bucket of a row count (exposed for tests).
  static int32_t bucket_of(int32_t rows);

 private:
  struct Bucket {
    std::vector<double> seconds;  // ring of the last samples
    std::vector<int32_t> rows;
    size_t next = 0;
    int64_t count = 0;
  };
  void refit();

  CostCurveOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<Point> points_;  // the fit, one per measured bucket
  int64_t samples_ = 0;
  // The hinge (with one bucket: the prior shape through its median).
  double level_ = 0, slope_ = 0;
  int32_t knee_ = 0;
  double floor_ = 0;  // a tenth of the cheapest median: no pass is free
};

}  // namespace specula

// GET /metrics in Prometheus' text format (version 0.0.4). The names follow
// vLLM's with the prefix "specula:" (vllm:num_requests_running ->
// specula:num_requests_running; counters end in _total as Prometheus'
// clients expose them), so dashboards built for vLLM need only the prefix
// changed. docs/serving.md lists every name.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "serve/scheduler.h"

namespace specula {

// A cumulative latency histogram (seconds), as Prometheus keeps them.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::vector<double> upper_bounds);
  void observe(double seconds);  // thread-safe

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> counts;  // per bucket, not cumulative; last: +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> upper_bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What the HTTP layer counts itself (the scheduler's counts come from
// SchedulerMetrics).
struct HttpCounters {
  LatencyHistogram time_to_first_token{{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                        0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0}};
  LatencyHistogram inter_token{{0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
                                0.075, 0.1,    0.15,  0.2,  0.3,   0.4,  0.5,   0.75, 1.0,  2.5}};
  LatencyHistogram request_latency{
      {0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0}};
  std::array<std::atomic<uint64_t>, 3> finished{};  // by FinishReason
  std::atomic<uint64_t> rejected_queue_full{0};     // 429s
  std::atomic<uint64_t> rejected_invalid{0};        // 4xx for bad requests
};

std::string prometheus_text(const SchedulerMetrics& scheduler, const HttpCounters& http);

}  // namespace specula

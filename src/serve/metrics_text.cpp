#include "serve/metrics_text.h"

#include <cstdio>

namespace specula {

LatencyHistogram::LatencyHistogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void LatencyHistogram::observe(double seconds) {
  size_t bucket = 0;
  while (bucket < upper_bounds_.size() && seconds > upper_bounds_[bucket]) ++bucket;
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += seconds;
  ++count_;
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  std::lock_guard lock(mutex_);
  return {upper_bounds_, counts_, sum_, count_};
}

namespace {

constexpr const char* kPrefix = "specula:";

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.15g", value);
  return buffer;
}

class Writer {
 public:
  void header(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + std::string(kPrefix) + name + " " + help + "\n";
    out_ += "# TYPE " + std::string(kPrefix) + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::string& labels, const std::string& value) {
    out_ += std::string(kPrefix) + name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + value + "\n";
  }
  void gauge(const std::string& name, const char* help, int64_t value) {
    header(name, "gauge", help);
    sample(name, "", std::to_string(value));
  }
  void counter(const std::string& name, const char* help, int64_t value) {
    header(name, "counter", help);
    sample(name, "", std::to_string(value));
  }
  // A histogram from per-bucket counts (the last bucket is +Inf).
  void histogram(const std::string& name, const char* help, const std::vector<double>& bounds,
                 const std::vector<uint64_t>& counts, double sum, uint64_t count) {
    header(name, "histogram", help);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cumulative += counts[i];
      sample(name + "_bucket", "le=\"" + number(bounds[i]) + "\"", std::to_string(cumulative));
    }
    sample(name + "_bucket", "le=\"+Inf\"", std::to_string(count));
    sample(name + "_sum", "", number(sum));
    sample(name + "_count", "", std::to_string(count));
  }
  void histogram(const std::string& name, const char* help, const LatencyHistogram& h) {
    const LatencyHistogram::Snapshot s = h.snapshot();
    histogram(name, help, s.upper_bounds, s.counts, s.sum, s.count);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// A label value with \, " and newlines escaped.
std::string label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void rows_per_pass(Writer& w, const std::vector<int64_t>& rows) {
  // Powers of two up to 1024 rows.
  std::vector<double> bounds;
  for (int b = 1; b <= 1024; b *= 2) bounds.push_back(b);
  std::vector<uint64_t> counts(bounds.size() + 1, 0);
  double sum = 0;
  uint64_t count = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const uint64_t n = static_cast<uint64_t>(rows[r]);
    if (n == 0) continue;
    size_t bucket = 0;
    while (bucket < bounds.size() && static_cast<double>(r) > bounds[bucket]) ++bucket;
    counts[bucket] += n;
    sum += static_cast<double>(r) * static_cast<double>(n);
    count += n;
  }
  w.histogram("target_pass_rows", "Rows (tokens) per target forward pass.", bounds, counts, sum,
              count);
}

}  // namespace

std::string prometheus_text(const SchedulerMetrics& m, const HttpCounters& http) {
  Writer w;
  w.gauge("num_requests_running", "Requests decoding in a slot.", m.running);
  w.gauge("num_requests_waiting", "Requests queued for a slot.", m.waiting);
  w.counter("prompt_tokens_total", "Prompt tokens prefilled.", m.prompt_tokens);
  w.counter("generation_tokens_total", "Tokens generated.", m.generated_tokens);
  w.counter("num_steps_total", "Scheduler steps (target forward passes).", m.steps);

  w.header("request_success_total", "counter", "Requests finished, by finish reason.");
  const char* reasons[] = {"stop", "length", "cancelled"};
  for (size_t i = 0; i < 3; ++i) {
    w.sample("request_success_total", std::string("finished_reason=\"") + reasons[i] + "\"",
             std::to_string(http.finished[i].load()));
  }
  w.counter("request_rejected_queue_full_total", "Requests answered 429 (wait queue full).",
            static_cast<int64_t>(http.rejected_queue_full.load()));
  w.counter("request_rejected_invalid_total", "Requests answered 4xx for bad input.",
            static_cast<int64_t>(http.rejected_invalid.load()));

  w.histogram("time_to_first_token_seconds", "Time from request to its first token.",
              http.time_to_first_token);
  w.histogram("inter_token_latency_seconds", "Time between consecutive tokens of a request.",
              http.inter_token);
  w.histogram("e2e_request_latency_seconds", "Time from request to its last token.",
              http.request_latency);

  w.counter("spec_decode_num_drafts_total", "Sequence-steps that drafted.", m.num_drafts);
  w.counter("spec_decode_num_draft_tokens_total", "Tokens drafted.", m.num_draft_tokens);
  w.counter("spec_decode_num_accepted_tokens_total", "Drafted tokens accepted.",
            m.num_accepted_tokens);
  w.header("spec_decode_num_accepted_tokens_per_pos_total", "counter",
           "Drafted tokens accepted, by draft position.");
  for (size_t i = 0; i < m.accepted_per_pos.size(); ++i) {
    w.sample("spec_decode_num_accepted_tokens_per_pos_total",
             "position=\"" + std::to_string(i) + "\"", std::to_string(m.accepted_per_pos[i]));
  }
  w.header("spec_decode_draft_length_steps_total", "counter",
           "Sequence-steps by the draft length g the policy chose.");
  for (size_t g = 0; g < m.g_steps.size(); ++g) {
    w.sample("spec_decode_draft_length_steps_total", "g=\"" + std::to_string(g) + "\"",
             std::to_string(m.g_steps[g]));
  }
  w.header("spec_decode_drafter_steps_total", "counter", "Sequence-steps drafted by each drafter.");
  for (size_t i = 0; i < m.drafter_steps.size(); ++i) {
    const std::string name = i < m.drafter_names.size() ? m.drafter_names[i] : std::to_string(i);
    w.sample("spec_decode_drafter_steps_total", "drafter=\"" + label(name) + "\"",
             std::to_string(m.drafter_steps[i]));
  }
  rows_per_pass(w, m.rows_per_pass);
  w.header("target_pass_cost_seconds", "gauge",
           "The learned cost curve: seconds of one target pass of this many rows.");
  for (size_t i = 0; i < m.cost_rows.size() && i < m.cost_seconds.size(); ++i) {
    w.sample("target_pass_cost_seconds", "rows=\"" + std::to_string(m.cost_rows[i]) + "\"",
             number(m.cost_seconds[i]));
  }
  return w.take();
}

}  // namespace specula

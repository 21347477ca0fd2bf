#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <type_traits>

#include "specula/stats.h"

namespace specula {
namespace {

double ratio(double num, double den) {
  return den > 0 ? num / den : 0.0;
}

// A small JSON object writer: the library does not depend on a JSON package,
// and these objects are flat numbers, strings and number arrays.
class JsonObject {
 public:
  void add(std::string_view key, int64_t value) { begin(key) += std::to_string(value); }
  void add(std::string_view key, bool value) { begin(key) += value ? "true" : "false"; }
  void add(std::string_view key, double value) {
    char buffer[32];
    // Non-finite numbers are not JSON; rates here are 0 when undefined anyway.
    std::snprintf(buffer, sizeof buffer, "%.9g", std::isfinite(value) ? value : 0.0);
    begin(key) += buffer;
  }
  void add(std::string_view key, std::string_view value) {
    std::string& out = begin(key);
    out += '"';
    // Drafter names hold file paths: escape what JSON requires.
    for (char c : value) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
        out += buffer;
      } else {
        out += c;
      }
    }
    out += '"';
  }
  template <typename T>
  void add_array(std::string_view key, const std::vector<T>& values) {
    std::string& out = begin(key);
    out += '[';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i) out += ',';
      if constexpr (std::is_floating_point_v<T>) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.9g", std::isfinite(values[i]) ? values[i] : 0.0);
        out += buffer;
      } else {
        out += std::to_string(values[i]);
      }
    }
    out += ']';
  }
  // `json` must already be valid JSON (a nested object or array).
  void add_raw(std::string_view key, std::string_view json) { begin(key).append(json); }
  std::string finish() { return text_ + "}"; }

 private:
  std::string& begin(std::string_view key) {
    text_ += text_.size() > 1 ? ",\"" : "\"";
    text_.append(key).append("\":");
    return text_;
  }
  std::string text_ = "{";
};

}  // namespace

std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kEndOfGeneration:
      return "eos";
    case StopReason::kMaxTokens:
      return "max_tokens";
    case StopReason::kContextFull:
      return "context_full";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kNone:
      break;
  }
  return "none";
}

double DrafterUsage::acceptance_rate() const {
  return ratio(static_cast<double>(accepted_tokens), static_cast<double>(drafted_tokens));
}

double GenerationStats::acceptance_rate() const {
  return ratio(static_cast<double>(accepted_tokens), static_cast<double>(drafted_tokens));
}

double GenerationStats::acceptance_at(size_t position) const {
  if (position >= drafted_at.size() || position >= accepted_at.size()) return 0.0;
  return ratio(static_cast<double>(accepted_at[position]),
               static_cast<double>(drafted_at[position]));
}

double GenerationStats::tokens_per_pass() const {
  return ratio(static_cast<double>(generated_tokens), static_cast<double>(target_passes));
}

double GenerationStats::decode_tokens_per_second() const {
  return ratio(static_cast<double>(generated_tokens), total_seconds - prefill_seconds);
}

double GenerationStats::prefill_tokens_per_second() const {
  return ratio(static_cast<double>(prompt_tokens), prefill_seconds);
}

std::string to_json(const GenerationStats& stats) {
  std::vector<double> acceptance_at;
  for (size_t i = 0; i < stats.drafted_at.size(); ++i) {
    acceptance_at.push_back(stats.acceptance_at(i));
  }
  JsonObject json;
  json.add("prompt_tokens", stats.prompt_tokens);
  json.add("generated_tokens", stats.generated_tokens);
  json.add("target_passes", stats.target_passes);
  json.add("draft_max", static_cast<int64_t>(stats.draft_max));
  json.add("drafted_tokens", stats.drafted_tokens);
  json.add("accepted_tokens", stats.accepted_tokens);
  json.add("acceptance_rate", stats.acceptance_rate());
  json.add_array("drafted_at", stats.drafted_at);
  json.add_array("accepted_at", stats.accepted_at);
  json.add_array("acceptance_at", acceptance_at);
  json.add("tokens_per_pass", stats.tokens_per_pass());
  json.add("prefill_seconds", stats.prefill_seconds);
  json.add("draft_seconds", stats.draft_seconds);
  json.add("target_seconds", stats.target_seconds);
  json.add("sampling_seconds", stats.sampling_seconds);
  json.add("total_seconds", stats.total_seconds);
  json.add("prefill_tokens_per_second", stats.prefill_tokens_per_second());
  json.add("decode_tokens_per_second", stats.decode_tokens_per_second());
  json.add("stop_reason", stop_reason_name(stats.stop_reason));
  json.add("policy", stats.policy);
  json.add_array("draft_length_steps", stats.draft_length_steps);
  json.add("probe_steps", stats.probe_steps);
  json.add("early_stops", stats.early_stops);
  json.add("mean_stop_confidence", stats.mean_stop_confidence);
  std::string drafters = "[";
  for (const DrafterUsage& d : stats.drafters) {
    if (drafters.size() > 1) drafters += ',';
    std::vector<double> acceptance;
    for (size_t i = 0; i < d.drafted_at.size() && i < d.accepted_at.size(); ++i) {
      acceptance.push_back(
          ratio(static_cast<double>(d.accepted_at[i]), static_cast<double>(d.drafted_at[i])));
    }
    JsonObject one;
    one.add("name", d.name);
    one.add("steps", d.steps);
    one.add("drafted_tokens", d.drafted_tokens);
    one.add("accepted_tokens", d.accepted_tokens);
    one.add("acceptance_rate", d.acceptance_rate());
    one.add_array("drafted_at", d.drafted_at);
    one.add_array("accepted_at", d.accepted_at);
    one.add_array("acceptance_at", acceptance);
    one.add("seconds", d.seconds);
    drafters += one.finish();
  }
  drafters += ']';
  json.add_raw("drafters", drafters);
  json.add("plain_tokens_per_second_estimate", stats.plain_tokens_per_second_estimate);
  json.add("estimated_speedup", stats.estimated_speedup);
  json.add("realised_speedup", stats.realised_speedup);
  return json.finish();
}

std::string to_json(const MemoryStats& memory) {
  JsonObject json;
  json.add("peak_resident_bytes", static_cast<int64_t>(memory.peak_resident_bytes));
  json.add("target_file_bytes", static_cast<int64_t>(memory.target_file_bytes));
  json.add("draft_file_bytes", static_cast<int64_t>(memory.draft_file_bytes));
  json.add("target_kv_bytes", static_cast<int64_t>(memory.target_kv_bytes));
  json.add("draft_kv_bytes", static_cast<int64_t>(memory.draft_kv_bytes));
  return json.finish();
}

std::string to_json(const OnlineLearningStats& learning) {
  JsonObject json;
  json.add("enabled", learning.enabled);
  json.add("steps", static_cast<int64_t>(learning.steps));
  json.add("publishes", static_cast<int64_t>(learning.publishes));
  json.add("weight_version", static_cast<int64_t>(learning.weight_version));
  json.add("observed_rows", static_cast<int64_t>(learning.observed_rows));
  json.add("stored_samples", static_cast<int64_t>(learning.stored_samples));
  json.add("dropped_samples", static_cast<int64_t>(learning.dropped_samples));
  json.add("evicted_samples", static_cast<int64_t>(learning.evicted_samples));
  json.add("buffer_bytes", static_cast<int64_t>(learning.buffer_bytes));
  json.add("buffer_samples", static_cast<int64_t>(learning.buffer_samples));
  json.add("parameter_bytes", static_cast<int64_t>(learning.parameter_bytes));
  json.add("last_loss", learning.last_loss);
  return json.finish();
}

uint64_t peak_resident_bytes() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace specula

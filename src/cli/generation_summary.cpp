#include "cli/generation_summary.h"

#include <string>

namespace specula::cli {

void print_learning(std::FILE* out, const OnlineLearningStats& l) {
  std::fprintf(out,
               "specula: online distillation: %llu steps, %llu weight versions (drafting with "
               "v%llu), %llu target rows observed; buffer %.1f MiB (%llu windows, %llu dropped, "
               "%llu evicted); last loss %.4f\n",
               static_cast<unsigned long long>(l.steps),
               static_cast<unsigned long long>(l.publishes),
               static_cast<unsigned long long>(l.weight_version),
               static_cast<unsigned long long>(l.observed_rows), mib(l.buffer_bytes),
               static_cast<unsigned long long>(l.buffer_samples),
               static_cast<unsigned long long>(l.dropped_samples),
               static_cast<unsigned long long>(l.evicted_samples), l.last_loss);
}

void print_generation_stats(std::FILE* out, const GenerationStats& s, bool speculative) {
  std::fprintf(out,
               "specula: %lld tokens in %.2f s: %.1f tokens/s after a %lld-token prompt "
               "(%.1f tokens/s); stop: %s\n",
               static_cast<long long>(s.generated_tokens), s.total_seconds,
               s.decode_tokens_per_second(), static_cast<long long>(s.prompt_tokens),
               s.prefill_tokens_per_second(), std::string(stop_reason_name(s.stop_reason)).c_str());
  if (!speculative) return;
  std::string histogram;
  for (size_t g = 0; g < s.draft_length_steps.size(); ++g) {
    if (s.draft_length_steps[g] == 0) continue;
    char entry[48];
    std::snprintf(entry, sizeof entry, " %zu:%lld", g,
                  static_cast<long long>(s.draft_length_steps[g]));
    histogram += entry;
  }
  std::fprintf(out,
               "specula: policy %s: steps by chosen g%s; %lld probes, %lld early stops; "
               "speedup over plain estimated %.2fx, realised %.2fx\n",
               s.policy.c_str(), histogram.c_str(), static_cast<long long>(s.probe_steps),
               static_cast<long long>(s.early_stops), s.estimated_speedup, s.realised_speedup);
  for (const DrafterUsage& d : s.drafters) {
    std::fprintf(out, "specula: drafter %s: %lld steps, %lld drafted, %lld accepted (%.1f%%)\n",
                 d.name.c_str(), static_cast<long long>(d.steps),
                 static_cast<long long>(d.drafted_tokens),
                 static_cast<long long>(d.accepted_tokens), 100.0 * d.acceptance_rate());
  }
  std::string per_position;
  for (size_t i = 0; i < s.drafted_at.size(); ++i) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, " %.2f", s.acceptance_at(i));
    per_position += buffer;
  }
  std::fprintf(out,
               "specula: draft up to %d: %lld drafted, %lld accepted (%.1f%%), %.2f tokens per "
               "target pass; acceptance by position:%s\n",
               s.draft_max, static_cast<long long>(s.drafted_tokens),
               static_cast<long long>(s.accepted_tokens), 100.0 * s.acceptance_rate(),
               s.tokens_per_pass(), per_position.c_str());
}

}  // namespace specula::cli

#include "cli/distill_speed.h"

#include <cstdio>
#include <string>

#include "benchmark/bench_runner.h"

namespace specula::cli {

void report_distill_speedup(const char* when, const Model& teacher, const Model& student,
                            std::span<const int32_t> held_out, const DistillSpeedOptions& options,
                            ThreadPool& pool) {
  if (options.repeats == 0) return;
  if (static_cast<int64_t>(held_out.size()) < options.prompt_tokens) {
    std::fprintf(stderr, "distill: speedup %s: skipped, the held-out text has %zu tokens (< %d)\n",
                 when, held_out.size(), options.prompt_tokens);
    return;
  }
  BenchOptions bench;
  bench.repeats = options.repeats;
  bench.gen_tokens = options.gen_tokens;
  bench.prompt.assign(held_out.begin(), held_out.begin() + options.prompt_tokens);
  bench.prompt_tokens = options.prompt_tokens;
  bench.max_verify = 5;  // t(g+1) for the predicted speedup of g <= 4
  bench.draft_max_list = {1, 2, 4};
  bench.policies = {PolicyKind::kAdaptive};
  bench.bandwidth_bytes = uint64_t{16} << 20;  // only the decode figures are reported
  const BenchReport report = run_bench(teacher, &student, pool, bench);
  std::string line;
  char buffer[96];
  for (const SpeculativePoint& point : report.speculative) {
    std::snprintf(buffer, sizeof buffer, " | g=%d %.2fx (acceptance %.0f%%)", point.draft_max,
                  point.speedup.median, 100.0 * point.acceptance_rate);
    line += buffer;
  }
  for (const PolicyPoint& point : report.policies) {
    std::snprintf(buffer, sizeof buffer, " | adaptive %.2fx", point.speedup.median);
    line += buffer;
  }
  std::fprintf(stderr,
               "distill: speedup %s over plain decoding (greedy, %d held-out prompt tokens, %d "
               "generated, median of %d; plain %.1f tokens/s)%s\n",
               when, options.prompt_tokens, options.gen_tokens, options.repeats,
               report.decode_tokens_per_second.median, line.c_str());
}

}  // namespace specula::cli

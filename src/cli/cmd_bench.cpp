// `specula bench`: how fast this machine runs a model, and whether
// speculative decoding pays here. Measures read bandwidth, prefill, plain
// decode, the verify-cost curve and plain against speculative decoding in
// one run; prints a table (or --json) and, with --plot-dir, PNG plots.
// docs/bench.md explains every number.
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmark/bench_plot.h"
#include "benchmark/bench_runner.h"
#include "cli/command_registry.h"
#include "cli/field_flags.h"
#include "cli/kv_type_flag.h"
#include "cli/seed_flag.h"
#include "core/cpu_count.h"
#include "core/error.h"
#include "core/split_list.h"
#include "core/thread_pool.h"
#include "drafters/model_drafter.h"
#include "engine/kv_cache_type.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace specula::cli {
namespace {

// The flag of each BenchOptions field (and of the draft) the library's errors name.
constexpr std::array<FieldFlag, 6> kBenchFlags = {{
    {"BenchOptions::repeats", "--repeats"},
    {"BenchOptions::prompt_tokens", "--prompt-tokens"},
    {"BenchOptions::gen_tokens", "--gen-tokens"},
    {"BenchOptions::max_verify", "--max-verify"},
    {"BenchOptions::draft_max_list", "--draft-max-list"},
    {"EngineConfig::draft_path", "--draft"},
}};

struct BenchFlags {
  std::string model_path;
  std::string draft_path;
  int32_t threads = 0;
  std::string kv_type = "f16";
  std::string draft_max_list = "1,2,4,8";
  std::string policies = "adaptive";
  std::string drafter_sets;  // ';'-separated --drafter lists
  std::string prompt;
  int64_t bandwidth_mib = 2048;
  std::string plot_dir;
  bool json = false;
  bool quiet = false;
  BenchOptions options;
  CLI::Option* prompt_tokens_option = nullptr;
};

nlohmann::json spread_json(const Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max},
          {"q1", s.q1},         {"q3", s.q3},   {"samples", s.samples}};
}

nlohmann::json report_json(const BenchReport& r, const BenchFlags& flags) {
  nlohmann::json json;
  json["model"] = flags.model_path;
  json["draft"] = flags.draft_path;
  json["threads"] = r.threads;
  json["kv_type"] = flags.kv_type;
  json["repeats"] = r.repeats;
  json["prompt_tokens"] = r.prompt_tokens;
  json["gen_tokens"] = r.gen_tokens;
  json["sampling"] = "greedy";
  json["target_weight_bytes"] = r.target_weight_bytes;
  json["draft_weight_bytes"] = r.draft_weight_bytes;
  json["read_bandwidth"] = {{"buffer_bytes", r.bandwidth_buffer_bytes},
                            {"gb_per_second", spread_json(r.read_bandwidth_gb_per_second)}};
  json["prefill"] = {{"tokens", r.prompt_tokens},
                     {"tokens_per_second", spread_json(r.prefill_tokens_per_second)}};
  json["decode"] = {{"tokens", r.gen_tokens},
                    {"tokens_per_second", spread_json(r.decode_tokens_per_second)},
                    {"bandwidth_fraction", r.decode_bandwidth_fraction},
                    {"bandwidth_limit_tokens_per_second", r.bandwidth_limit_tokens_per_second}};
  nlohmann::json points = nlohmann::json::array();
  for (const VerifyPoint& p : r.verify) {
    points.push_back(
        {{"rows", p.rows}, {"ratio", spread_json(p.ratio)}, {"seconds", spread_json(p.seconds)}});
  }
  json["verify"] = {{"context_tokens", r.verify_context}, {"points", points}};
  nlohmann::json speculative = nlohmann::json::array();
  for (const SpeculativePoint& p : r.speculative) {
    speculative.push_back(
        {{"draft_max", p.draft_max},
         {"tokens_per_second", spread_json(p.tokens_per_second)},
         {"speedup", spread_json(p.speedup)},
         {"acceptance_rate", p.acceptance_rate},
         {"tokens_per_pass", p.tokens_per_pass},
         {"predicted_speedup",
          p.predicted_speedup >= 0 ? nlohmann::json(p.predicted_speedup) : nlohmann::json()},
         {"identical_to_plain", p.identical_to_plain}});
  }
  json["speculative"] = speculative;
  nlohmann::json policies = nlohmann::json::array();
  for (const PolicyPoint& p : r.policies) {
    policies.push_back({{"policy", std::string(policy_name(p.policy))},
                        {"draft_max", p.draft_max},
                        {"tokens_per_second", spread_json(p.tokens_per_second)},
                        {"speedup", spread_json(p.speedup)},
                        {"vs_best_fixed", spread_json(p.vs_best_fixed)},
                        {"best_fixed_draft_max", p.best_fixed_draft_max},
                        {"acceptance_rate", p.acceptance_rate},
                        {"tokens_per_pass", p.tokens_per_pass},
                        {"draft_length_steps", p.draft_length_steps},
                        {"estimated_speedup", p.estimated_speedup},
                        {"identical_to_plain", p.identical_to_plain}});
  }
  json["policies"] = policies;
  nlohmann::json sets = nlohmann::json::array();
  for (const DrafterSetPoint& p : r.drafter_sets) {
    sets.push_back({{"drafters", p.drafters},
                    {"draft_max", p.draft_max},
                    {"tokens_per_second", spread_json(p.tokens_per_second)},
                    {"speedup", spread_json(p.speedup)},
                    {"acceptance_rate", p.acceptance_rate},
                    {"tokens_per_pass", p.tokens_per_pass},
                    {"steps_by_drafter", p.steps_by_drafter},
                    {"identical_to_plain", p.identical_to_plain}});
  }
  json["drafter_sets"] = sets;
  if (!flags.draft_path.empty()) {
    json["draft_forward_seconds"] = spread_json(r.draft_forward_seconds);
  }
  json["memory"] = nlohmann::json::parse(to_json(r.memory));
  return json;
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

void print_drafter_sets(const BenchReport& r) {
  if (r.drafter_sets.empty()) return;
  std::printf(
      "\ndrafter sets in the same runs (adaptive policy, g within 1..%d; a bandit picks among "
      "several), ratios per repeat\n",
      r.drafter_sets.front().draft_max);
  std::printf("  %-24s %22s %22s %11s %12s %14s %10s\n", "drafters", "tokens/s", "vs plain",
              "acceptance", "tokens/pass", "steps", "identical");
  for (const DrafterSetPoint& p : r.drafter_sets) {
    std::string steps;
    for (int64_t n : p.steps_by_drafter) {
      if (!steps.empty()) steps += '/';
      steps += std::to_string(n);
    }
    std::printf("  %-24s %9.2f [%5.1f - %5.1f] %8.2fx [%.2f - %.2f] %10.1f%% %12.2f %14s %10s\n",
                p.drafters.c_str(), p.tokens_per_second.median, p.tokens_per_second.min,
                p.tokens_per_second.max, p.speedup.median, p.speedup.min, p.speedup.max,
                100 * p.acceptance_rate, p.tokens_per_pass, steps.c_str(),
                p.identical_to_plain ? "yes" : "NO");
  }
}

void print_table(const BenchReport& r, const BenchFlags& flags) {
  std::printf("specula bench: %s (%.1f MiB of weights per token)", flags.model_path.c_str(),
              mib(r.target_weight_bytes));
  if (!flags.draft_path.empty()) {
    std::printf(", draft %s (%.1f MiB)", flags.draft_path.c_str(), mib(r.draft_weight_bytes));
  }
  std::printf(
      "\n%d threads, %s KV cache, %d repeats, greedy; median and [min - max] over repeats\n\n",
      r.threads, flags.kv_type.c_str(), r.repeats);

  auto row = [](const char* what, const Spread& s, const char* note) {
    std::printf("  %-34s %10.2f   [%.2f - %.2f]%s\n", what, s.median, s.min, s.max, note);
  };
  const std::string buffer = "  (" + std::to_string(r.bandwidth_buffer_bytes >> 20) + " MiB read)";
  row("read bandwidth, GB/s", r.read_bandwidth_gb_per_second, buffer.c_str());
  const std::string prefill = "prefill " + std::to_string(r.prompt_tokens) + " tokens, tokens/s";
  row(prefill.c_str(), r.prefill_tokens_per_second, "");
  const std::string decode = "decode " + std::to_string(r.gen_tokens) + " tokens, tokens/s";
  row(decode.c_str(), r.decode_tokens_per_second, "");
  std::printf("  %-34s %10.2f   (ceiling %.1f tokens/s = bandwidth / weight bytes)\n",
              "decode share of read bandwidth", r.decode_bandwidth_fraction,
              r.bandwidth_limit_tokens_per_second);

  std::printf("\nverify cost: n rows appended to %d tokens of context, t(n)/t(1)\n",
              r.verify_context);
  std::printf("  %4s %10s %21s %8s %15s\n", "n", "t(n) ms", "[min - max]", "ratio", "[min - max]");
  for (const VerifyPoint& p : r.verify) {
    std::printf("  %4d %10.3f   [%7.3f - %7.3f] %8.2f   [%.2f - %.2f]\n", p.rows,
                p.seconds.median * 1e3, p.seconds.min * 1e3, p.seconds.max * 1e3, p.ratio.median,
                p.ratio.min, p.ratio.max);
  }

  if (r.speculative.empty()) {
    print_drafter_sets(r);
    return;
  }
  std::printf("\nspeculative vs plain, interleaved in the same run (draft forward %.3f ms)\n",
              r.draft_forward_seconds.median * 1e3);
  std::printf("  %4s %22s %22s %11s %12s %10s %10s\n", "g", "tokens/s", "speedup", "acceptance",
              "tokens/pass", "predicted", "identical");
  std::printf("  %4s %9.2f [%5.1f - %5.1f] %22s\n", "0", r.decode_tokens_per_second.median,
              r.decode_tokens_per_second.min, r.decode_tokens_per_second.max, "(plain)");
  for (const SpeculativePoint& p : r.speculative) {
    char predicted[16] = "-";
    if (p.predicted_speedup >= 0) {
      std::snprintf(predicted, sizeof predicted, "%.2fx", p.predicted_speedup);
    }
    std::printf("  %4d %9.2f [%5.1f - %5.1f] %8.2fx [%.2f - %.2f] %10.1f%% %12.2f %10s %10s\n",
                p.draft_max, p.tokens_per_second.median, p.tokens_per_second.min,
                p.tokens_per_second.max, p.speedup.median, p.speedup.min, p.speedup.max,
                100 * p.acceptance_rate, p.tokens_per_pass, predicted,
                p.identical_to_plain ? "yes" : "NO");
  }
  print_drafter_sets(r);
  if (r.policies.empty()) return;
  std::printf("\npolicies in the same runs (g chosen within 1..%d), ratios per repeat\n",
              r.policies.front().draft_max);
  std::printf("  %-10s %22s %22s %26s %11s %12s %10s\n", "policy", "tokens/s", "vs plain",
              "vs best fixed g", "acceptance", "tokens/pass", "identical");
  for (const PolicyPoint& p : r.policies) {
    char best[40];
    std::snprintf(best, sizeof best, "%.2fx [%.2f - %.2f] g=%d", p.vs_best_fixed.median,
                  p.vs_best_fixed.min, p.vs_best_fixed.max, p.best_fixed_draft_max);
    std::printf("  %-10s %9.2f [%5.1f - %5.1f] %8.2fx [%.2f - %.2f] %26s %10.1f%% %12.2f %10s\n",
                std::string(policy_name(p.policy)).c_str(), p.tokens_per_second.median,
                p.tokens_per_second.min, p.tokens_per_second.max, p.speedup.median, p.speedup.min,
                p.speedup.max, best, 100 * p.acceptance_rate, p.tokens_per_pass,
                p.identical_to_plain ? "yes" : "NO");
  }
}

// PNG plots of the verify-cost curve and the speedups (needs gnuplot).
void write_plots(const BenchReport& report, const BenchFlags& flags) {
  const std::string title = std::filesystem::path(flags.model_path).filename().string() + ", " +
                            std::to_string(report.threads) + " threads";
  const PlotOutcome plots = write_bench_plots(report, flags.plot_dir, title);
  if (!plots.skipped.empty()) {
    std::fprintf(stderr, "specula: no plots: %s; the data and plots.gp are in %s\n",
                 plots.skipped.c_str(), flags.plot_dir.c_str());
  } else {
    for (const std::string& image : plots.images) {
      std::fprintf(stderr, "specula: wrote %s\n", image.c_str());
    }
  }
}

// Greedy speculative decoding must give plain decoding's tokens: a
// difference is a bug in the engine, never noise.
void check_identical_to_plain(const BenchReport& report) {
  for (const PolicyPoint& p : report.policies) {
    if (!p.identical_to_plain) {
      fail("greedy speculative decoding with the ", policy_name(p.policy),
           " policy gave different tokens than plain decoding: a bug in the engine; please "
           "report it");
    }
  }
  for (const DrafterSetPoint& p : report.drafter_sets) {
    if (!p.identical_to_plain) {
      fail("greedy speculative decoding with the drafters ", p.drafters,
           " gave different tokens than plain decoding: a bug in the engine; please report it");
    }
  }
  for (const SpeculativePoint& p : report.speculative) {
    if (!p.identical_to_plain) {
      fail("greedy speculative decoding with g = ", p.draft_max,
           " gave different tokens than plain decoding: a bug in the engine; please report it");
    }
  }
}

void run(BenchFlags& flags) {
  BenchOptions& options = flags.options;
  options.draft_max_list = split_int_list(flags.draft_max_list, "--draft-max-list");
  options.policies.clear();
  for (const std::string& name : split_list(flags.policies, "--policy")) {
    if (name != "none") options.policies.push_back(parse_policy(name));
  }
  options.drafter_sets.clear();
  if (!flags.drafter_sets.empty()) {
    options.drafter_sets = split_list(flags.drafter_sets, "--drafter-sets", ';');
  }
  if (flags.bandwidth_mib < 1 || flags.bandwidth_mib > (int64_t{1} << 20)) {
    fail("--bandwidth-mb is ", flags.bandwidth_mib,
         ": use 1..1048576 MiB (several times the last-level cache; 2048 by default)");
  }
  options.bandwidth_bytes = static_cast<uint64_t>(flags.bandwidth_mib) << 20;
  if (flags.threads < 0) {
    fail("--threads is ", flags.threads, ": use 0 for one per physical core or a positive count");
  }
  if (!flags.prompt.empty() && flags.prompt_tokens_option->count() > 0) {
    fail("give either --prompt (its tokens set the prompt length) or --prompt-tokens, not both");
  }
  check_bench_options(options);

  const DType kv_type = kv_dtype(kv_cache_type(flags.kv_type));
  const std::unique_ptr<Model> target = Model::load(flags.model_path, kv_type);
  std::unique_ptr<Model> draft;
  if (!flags.draft_path.empty()) {
    draft = Model::load(flags.draft_path, kv_type);
    check_same_vocabulary(*target, *draft);
  }
  if (!flags.prompt.empty()) {
    const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(target->file());
    options.prompt = tokenizer->encode(flags.prompt, /*add_special=*/true, /*parse_special=*/true);
    if (options.prompt.empty()) fail("--prompt '", flags.prompt, "' gives no tokens");
  }
  ThreadPool pool(resolve_thread_count(flags.threads));

  const auto start = std::chrono::steady_clock::now();
  BenchProgress progress;
  if (!flags.quiet) {
    progress = [start](std::string_view line) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "bench [%6.1f s] %.*s\n", elapsed, static_cast<int>(line.size()),
                   line.data());
    };
  }
  const BenchReport report = run_bench(*target, draft.get(), pool, options, progress);

  if (flags.json) {
    std::printf("%s\n", report_json(report, flags).dump(2).c_str());
  } else {
    print_table(report, flags);
  }
  std::fflush(stdout);

  if (!flags.plot_dir.empty()) write_plots(report, flags);
  check_identical_to_plain(report);
}

const bool registered = register_command({
    "bench",
    "Measure read bandwidth, prefill, decode, verify cost and speculative speedup",
    [](CLI::App& sub) {
      auto flags = std::make_shared<BenchFlags>();
      BenchOptions& o = flags->options;
      sub.add_option("-m,--model", flags->model_path, "Target model (GGUF)")->required();
      sub.add_option("-d,--draft", flags->draft_path,
                     "Draft model (GGUF) with the target's vocabulary: adds speculative vs "
                     "plain");
      sub.add_option("-t,--threads", flags->threads,
                     "Threads; 0: one per physical core this process may use")
          ->capture_default_str();
      add_kv_type_flag(sub, flags->kv_type);
      sub.add_option("-r,--repeats", o.repeats, "Repeats of every measurement (median, spread)")
          ->capture_default_str();
      flags->prompt_tokens_option =
          sub.add_option("-P,--prompt-tokens", o.prompt_tokens,
                         "Prompt length: prefill batch and decode context (pseudo-random ids)")
              ->capture_default_str();
      sub.add_option("-p,--prompt", flags->prompt,
                     "Prompt text instead of pseudo-random ids (needs the model's tokenizer)");
      sub.add_option("-G,--gen-tokens", o.gen_tokens, "Tokens generated per decode run")
          ->capture_default_str();
      sub.add_option("--max-verify", o.max_verify, "Verify-cost curve covers n = 1..this rows")
          ->capture_default_str();
      sub.add_option("--draft-max-list", flags->draft_max_list,
                     "Draft lengths g compared with plain decoding (with --draft)")
          ->capture_default_str();
      sub.add_option("--policy", flags->policies,
                     "Draft-length policies compared in the same runs, e.g. "
                     "adaptive,heuristic (bound: the largest --draft-max-list g); none: skip")
          ->capture_default_str();
      sub.add_option("--drafter-sets", flags->drafter_sets,
                     "Drafter sets compared in the same runs, separated by ';', each a --drafter "
                     "list run with the adaptive policy (and a bandit when it names several), "
                     "e.g. 'lookup;suffix;model,lookup,suffix'");
      sub.add_option("--bandwidth-mb", flags->bandwidth_mib,
                     "Buffer read for the bandwidth figure, MiB (several times the L3 cache)")
          ->capture_default_str();
      sub.add_option("--seed", o.seed, "Seed of the pseudo-random prompt")
          ->check(seed_value())
          ->capture_default_str();
      sub.add_flag("--json", flags->json, "Print the results as JSON instead of a table");
      sub.add_option("--plot-dir", flags->plot_dir,
                     "Write verify-cost.png and speedup.png here (needs gnuplot)");
      sub.add_flag("-q,--quiet", flags->quiet, "No progress lines on stderr");
      sub.callback([flags] { with_flag_names(kBenchFlags, [&] { run(*flags); }); });
    },
});

}  // namespace
}  // namespace specula::cli

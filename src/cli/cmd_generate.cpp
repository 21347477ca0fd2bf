// `specula generate`: text (or token ids) in, a continuation streamed out,
// by plain decoding or, with --draft, exact speculative decoding.
#include <charconv>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "core/error.h"
#include "specula/engine.h"

namespace specula::cli {
namespace {

struct GenerateFlags {
  std::string prompt_positional;
  std::string prompt;
  std::string prompt_ids;
  EngineConfig engine;
  GenerateOptions options;
  std::string policy = "adaptive";
  std::string drafters;  // "model,lookup"; empty: the engine's default
  bool json = false;
  bool quiet = false;
};

// "model, lookup" -> {"model", "lookup"}.
std::vector<std::string> parse_names(const std::string& text) {
  std::vector<std::string> names;
  std::string current;
  for (char c : text + ",") {
    if (c == ',' || c == ' ') {
      if (!current.empty()) names.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (names.empty())
    fail("--drafter '", text, "' names no drafter: write e.g. --drafter model,lookup");
  return names;
}

// "1,2, 3" or "1 2 3" -> ids.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if (*p == ',' || *p == ' ') {
      ++p;
      continue;
    }
    int32_t id = 0;
    const auto [next, error] = std::from_chars(p, end, id);
    if (error != std::errc() || (next < end && *next != ',' && *next != ' ')) {
      fail("--prompt-ids '", text, "' is not a list of integers: write e.g. --prompt-ids 1,15,42");
    }
    ids.push_back(id);
    p = next;
  }
  if (ids.empty()) fail("--prompt-ids is empty: give at least one token id");
  return ids;
}

void print_summary(const GenerateResult& result, bool speculative) {
  const GenerationStats& s = result.stats;
  std::fprintf(stderr,
               "\nspecula: %lld tokens in %.2f s: %.1f tokens/s after a %lld-token prompt "
               "(%.1f tokens/s); stop: %s\n",
               static_cast<long long>(s.generated_tokens), s.total_seconds,
               s.decode_tokens_per_second(), static_cast<long long>(s.prompt_tokens),
               s.prefill_tokens_per_second(), std::string(stop_reason_name(s.stop_reason)).c_str());
  if (speculative) {
    std::string histogram;
    for (size_t g = 0; g < s.draft_length_steps.size(); ++g) {
      if (s.draft_length_steps[g] == 0) continue;
      histogram += " " + std::to_string(g) + ":" + std::to_string(s.draft_length_steps[g]);
    }
    std::fprintf(stderr,
                 "specula: policy %s: steps by chosen g%s; %lld probes, %lld early stops; "
                 "speedup over plain estimated %.2fx, realised %.2fx\n",
                 s.policy.c_str(), histogram.c_str(), static_cast<long long>(s.probe_steps),
                 static_cast<long long>(s.early_stops), s.estimated_speedup, s.realised_speedup);
    for (const DrafterUsage& d : s.drafters) {
      std::fprintf(
          stderr, "specula: drafter %s: %lld steps, %lld drafted, %lld accepted (%.1f%%)\n",
          d.name.c_str(), static_cast<long long>(d.steps), static_cast<long long>(d.drafted_tokens),
          static_cast<long long>(d.accepted_tokens), 100.0 * d.acceptance_rate());
    }
    std::string per_position;
    for (size_t i = 0; i < s.drafted_at.size(); ++i) {
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, " %.2f", s.acceptance_at(i));
      per_position += buffer;
    }
    std::fprintf(stderr,
                 "specula: draft up to %d: %lld drafted, %lld accepted (%.1f%%), %.2f tokens per "
                 "target pass; acceptance by position:%s\n",
                 s.draft_max, static_cast<long long>(s.drafted_tokens),
                 static_cast<long long>(s.accepted_tokens), 100.0 * s.acceptance_rate(),
                 s.tokens_per_pass(), per_position.c_str());
  }
  std::fprintf(stderr,
               "specula: time: prefill %.3f s, draft %.3f s, target %.3f s (%lld passes), "
               "sampling %.3f s; peak memory %.1f MiB\n",
               s.prefill_seconds, s.draft_seconds, s.target_seconds,
               static_cast<long long>(s.target_passes), s.sampling_seconds,
               static_cast<double>(result.memory.peak_resident_bytes) / (1024.0 * 1024.0));
}

void run(GenerateFlags& flags) {
  if (!flags.prompt.empty() && !flags.prompt_positional.empty()) {
    fail("the prompt is given twice (as an argument and with -p): give it once");
  }
  const std::string& prompt = flags.prompt.empty() ? flags.prompt_positional : flags.prompt;
  if (!prompt.empty() && !flags.prompt_ids.empty()) {
    fail("give the prompt either as text or with --prompt-ids, not both");
  }
  if (prompt.empty() && flags.prompt_ids.empty()) {
    fail("no prompt: give text (specula generate --model M \"Once upon a time\") or --prompt-ids");
  }
  const std::vector<int32_t> ids =
      flags.prompt_ids.empty() ? std::vector<int32_t>() : parse_ids(flags.prompt_ids);
  flags.options.policy = parse_policy(flags.policy);
  if (!flags.drafters.empty()) flags.engine.drafters = parse_names(flags.drafters);
  if (flags.engine.suffix_cache_tokens < 1) {
    fail("--suffix-cache-tokens is ", flags.engine.suffix_cache_tokens,
         ": the suffix cache needs a budget of at least 1 token (default 65536)");
  }

  const std::unique_ptr<Engine> engine = Engine::load(flags.engine);
  const bool stream = !flags.json;
  const bool text_output = engine->has_tokenizer();
  TokenTextCallback on_token = [&](int32_t token, std::string_view text) {
    if (!stream) return;
    if (text_output) {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else if (token >= 0) {
      std::printf("%d ", token);
    }
    std::fflush(stdout);
  };
  const GenerateResult result = ids.empty()
                                    ? engine->generate(prompt, flags.options, on_token)
                                    : engine->generate_from_tokens(ids, flags.options, on_token);
  const bool speculative = !engine->drafter_names().empty() && flags.options.draft_max > 0;

  if (flags.json) {
    nlohmann::json json;
    json["model"] = flags.engine.model_path;
    json["draft"] = flags.engine.draft_path;
    json["mode"] = speculative ? "speculative" : "plain";
    json["policy"] = speculative ? std::string(policy_name(flags.options.policy)) : "plain";
    json["drafters"] = speculative ? engine->drafter_names() : std::vector<std::string>();
    json["prompt_tokens"] = result.prompt_tokens;
    json["tokens"] = result.tokens;
    json["text"] = result.text;
    json["n_ctx"] = result.n_ctx;
    json["threads"] = engine->n_threads();
    json["sampling"] = {{"temperature", flags.options.temperature},
                        {"top_k", flags.options.top_k},
                        {"top_p", flags.options.top_p},
                        {"min_p", flags.options.min_p},
                        {"seed", flags.options.seed}};
    json["stats"] = nlohmann::json::parse(to_json(result.stats));
    json["memory"] = nlohmann::json::parse(to_json(result.memory));
    // Generated text may hold invalid UTF-8 (a random model's bytes): replace it.
    std::printf("%s\n", json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
  }
  std::fflush(stdout);
  if (!flags.quiet) print_summary(result, speculative);
}

const bool registered = register_command({
    "generate",
    "Generate text from a prompt by exact speculative decoding (plainly where it does not pay)",
    [](CLI::App& sub) {
      auto flags = std::make_shared<GenerateFlags>();
      GenerateOptions& o = flags->options;
      sub.add_option("prompt", flags->prompt_positional, "Prompt text");
      sub.add_option("-p,--prompt", flags->prompt, "Prompt text (instead of the argument)");
      sub.add_option("--prompt-ids", flags->prompt_ids,
                     "Prompt as token ids, e.g. 1,15,42 (for models without a supported "
                     "tokenizer)");
      sub.add_option("-m,--model", flags->engine.model_path, "Target model (GGUF)")->required();
      sub.add_option("-d,--draft", flags->engine.draft_path,
                     "Draft model (GGUF) with the target's vocabulary: turns on speculative "
                     "decoding");
      sub.add_option("--draft-max", o.draft_max,
                     "The most tokens drafted per step (g); the policy chooses within it; 0 "
                     "decodes plainly")
          ->capture_default_str();
      sub.add_option("--policy", flags->policy,
                     "How g is chosen: adaptive (cost-aware, falls back to plain decoding), "
                     "fixed (g = --draft-max), heuristic (+2/-1), confidence (stop below "
                     "--confidence-threshold)")
          ->capture_default_str();
      sub.add_option("--drafter", flags->drafters,
                     "Drafters to choose among: model, lookup[:N|:MIN-MAX], suffix, self[:K], e.g. "
                     "model,lookup,suffix,self (default: model when --draft is given, and "
                     "lookup); several: a bandit picks per step");
      sub.add_option("--suffix-cache-tokens", flags->engine.suffix_cache_tokens,
                     "Memory budget of the suffix drafter's cache, in tokens (~300-900 "
                     "bytes each); the oldest are evicted beyond it")
          ->capture_default_str();
      sub.add_option("--confidence-threshold", o.confidence_threshold,
                     "For --policy confidence: stop a draft after a token the drafter gives "
                     "less than this probability")
          ->capture_default_str();
      sub.add_option("-n,--n-predict", o.max_new_tokens, "Tokens to generate at most")
          ->capture_default_str();
      sub.add_option("--temp", o.temperature, "Temperature; 0 is greedy")->capture_default_str();
      sub.add_option("--top-k", o.top_k, "Keep the k most probable tokens; 0 is off")
          ->capture_default_str();
      sub.add_option("--top-p", o.top_p, "Keep the most probable tokens up to this mass; 1 is off")
          ->capture_default_str();
      sub.add_option("--min-p", o.min_p,
                     "Keep tokens at least this fraction as probable as the best; 0 is off")
          ->capture_default_str();
      sub.add_option("--seed", o.seed, "Random seed: the same seed replays the same tokens")
          ->capture_default_str();
      sub.add_option("-t,--threads", flags->engine.n_threads, "Threads; 0 uses every core")
          ->capture_default_str();
      sub.add_option("-c,--ctx", o.n_ctx,
                     "Context size in tokens; 0 sizes it to the prompt and -n, capped at the "
                     "model's training context")
          ->capture_default_str();
      sub.add_flag("--ignore-eos", o.ignore_eos, "Keep generating past end-of-text tokens");
      sub.add_flag("--json", flags->json,
                   "Print token ids, text and statistics as JSON instead of streaming text");
      sub.add_flag("-q,--quiet", flags->quiet, "No statistics summary on stderr");
      sub.callback([flags] { run(*flags); });
    },
});

}  // namespace
}  // namespace specula::cli

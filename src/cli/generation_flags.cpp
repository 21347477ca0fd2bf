#include "cli/generation_flags.h"

#include "cli/kv_type_flag.h"
#include "cli/seed_flag.h"
#include "core/error.h"
#include "core/split_list.h"

namespace specula::cli {

void add_generation_flags(CLI::App& sub, GenerationFlags& flags) {
  GenerateOptions& o = flags.options;
  sub.add_option("-m,--model", flags.engine.model_path, "Target model (GGUF)")->required();
  sub.add_option("-d,--draft", flags.engine.draft_path,
                 "Draft model (GGUF) with the target's vocabulary: turns on speculative "
                 "decoding");
  sub.add_option("--draft-max", o.draft_max,
                 "The most tokens drafted per step (g); the policy chooses within it; 0 "
                 "decodes plainly")
      ->capture_default_str();
  sub.add_option("--policy", flags.policy,
                 "How g is chosen: adaptive (cost-aware, falls back to plain decoding), "
                 "fixed (g = --draft-max), heuristic (+2/-1), confidence (stop below "
                 "--confidence-threshold)")
      ->capture_default_str();
  sub.add_option("--drafter", flags.drafters,
                 "Drafters to choose among: model, lookup[:N|:MIN-MAX], suffix, self[:K], e.g. "
                 "model,lookup,suffix,self (default: model when --draft is given, and "
                 "lookup); several: a bandit picks per step");
  sub.add_option("--suffix-cache-tokens", flags.engine.suffix_cache_tokens,
                 "Memory budget of the suffix drafter's cache, in tokens (~300-900 "
                 "bytes each); the oldest are evicted beyond it")
      ->capture_default_str();
  sub.add_option("--confidence-threshold", o.confidence_threshold,
                 "For --policy confidence: stop a draft after a token the drafter gives "
                 "less than this probability")
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
      ->check(seed_value())
      ->capture_default_str();
  sub.add_option("-t,--threads", flags.engine.n_threads,
                 "Threads; 0: one per physical core this process may use")
      ->capture_default_str();
  add_kv_type_flag(sub, flags.kv_type);
}

void resolve_generation_flags(GenerationFlags& flags, const CLI::App& sub) {
  if (sub.count("--drafter") > 0 && flags.drafters.empty()) {
    fail(
        "--drafter is empty: name the drafters, e.g. --drafter model,lookup, or leave the "
        "flag out for the default");
  }
  flags.options.policy = parse_policy(flags.policy);
  flags.engine.kv_cache_type = kv_cache_type(flags.kv_type);
  if (!flags.drafters.empty()) flags.engine.drafters = split_list(flags.drafters, "--drafter");
  if (flags.engine.suffix_cache_tokens < 1) {
    fail("--suffix-cache-tokens is ", flags.engine.suffix_cache_tokens,
         ": the suffix cache needs a budget of at least 1 token (default 65536)");
  }
}

}  // namespace specula::cli

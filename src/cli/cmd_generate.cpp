// `specula generate`: text (or token ids) in, a continuation streamed out,
// by plain decoding or, with --draft, exact speculative decoding.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "cli/field_flags.h"
#include "cli/generation_flags.h"
#include "cli/generation_summary.h"
#include "cli/online_distill_flags.h"
#include "cli/prompt_file.h"
#include "cli/stop_on_signals.h"
#include "core/error.h"
#include "core/split_list.h"
#include "gguf/gguf_writer.h"
#include "specula/engine.h"

namespace specula::cli {
namespace {

struct GenerateFlags : GenerationFlags {
  std::string prompt_positional;
  std::string prompt;
  std::string prompt_ids;
  std::string prompt_file;  // several prompts, one engine
  std::string prompt_separator = "---";
  std::string osd_save;  // where the learned draft goes at exit
  bool json = false;
  bool quiet = false;
};

// One line per request of a --prompt-file run.
void print_request_line(size_t index, size_t count, const GenerateResult& result) {
  const GenerationStats& s = result.stats;
  std::fprintf(stderr,
               "specula: request %zu/%zu: %lld tokens, %.1f tokens/s, acceptance %.1f%%, %.2f "
               "tokens per pass, realised speedup %.2fx",
               index + 1, count, static_cast<long long>(s.generated_tokens),
               s.decode_tokens_per_second(), 100.0 * s.acceptance_rate(), s.tokens_per_pass(),
               s.realised_speedup);
  if (result.learning.enabled) {
    std::fprintf(stderr, "; draft weights v%llu after %llu learner steps",
                 static_cast<unsigned long long>(result.learning.weight_version),
                 static_cast<unsigned long long>(result.learning.steps));
  }
  std::fprintf(stderr, "\n");
}

void print_summary(const GenerateResult& result, bool speculative) {
  const GenerationStats& s = result.stats;
  std::fprintf(stderr, "\n");
  print_generation_stats(stderr, s, speculative);
  if (result.learning.enabled) print_learning(stderr, result.learning);
  std::fprintf(stderr,
               "specula: time: prefill %.3f s, draft %.3f s, target %.3f s (%lld passes), "
               "sampling %.3f s; peak memory %.1f MiB\n",
               s.prefill_seconds, s.draft_seconds, s.target_seconds,
               static_cast<long long>(s.target_passes), s.sampling_seconds,
               mib(result.memory.peak_resident_bytes));
}

nlohmann::json result_json(const GenerateFlags& flags, const Engine& engine,
                           const GenerateResult& result, bool speculative) {
  nlohmann::json json;
  json["model"] = flags.engine.model_path;
  json["draft"] = flags.engine.draft_path;
  json["mode"] = speculative ? "speculative" : "plain";
  json["policy"] = speculative ? std::string(policy_name(flags.options.policy)) : "plain";
  json["drafters"] = speculative ? engine.drafter_names() : std::vector<std::string>();
  json["prompt_tokens"] = result.prompt_tokens;
  json["tokens"] = result.tokens;
  json["text"] = result.text;
  json["n_ctx"] = result.n_ctx;
  json["threads"] = engine.n_threads();
  json["kv_type"] = flags.kv_type;
  json["sampling"] = {{"temperature", flags.options.temperature},
                      {"top_k", flags.options.top_k},
                      {"top_p", flags.options.top_p},
                      {"min_p", flags.options.min_p},
                      {"seed", flags.options.seed}};
  json["stats"] = nlohmann::json::parse(to_json(result.stats));
  json["memory"] = nlohmann::json::parse(to_json(result.memory));
  // Each drafter's share (draft_file_bytes and draft_kv_bytes are their sums).
  nlohmann::json drafters = nlohmann::json::array();
  for (const DrafterMemory& d : result.memory.drafters) {
    drafters.push_back({{"name", d.name},
                        {"file_bytes", d.file_bytes},
                        {"kv_bytes", d.kv_bytes},
                        {"cache_bytes", d.cache_bytes},
                        {"learning_bytes", d.learning_bytes}});
  }
  json["memory"]["drafters"] = drafters;
  json["learning"] = nlohmann::json::parse(to_json(result.learning));
  return json;
}

// The prompts of this run: one from the argument, -p or --prompt-ids, or
// several from --prompt-file. Empty `texts` with `ids` set: token ids.
struct Prompts {
  std::vector<std::string> texts;
  std::vector<int32_t> ids;
};

Prompts read_prompts(const GenerateFlags& flags) {
  if (!flags.prompt.empty() && !flags.prompt_positional.empty()) {
    fail("the prompt is given twice (as an argument and with -p): give it once");
  }
  const std::string& prompt = flags.prompt.empty() ? flags.prompt_positional : flags.prompt;
  const int sources =
      int(!prompt.empty()) + int(!flags.prompt_ids.empty()) + int(!flags.prompt_file.empty());
  if (sources > 1) {
    fail("give the prompt one way: as text, with --prompt-ids or with --prompt-file");
  }
  if (sources == 0) {
    fail(
        "no prompt: give text (specula generate --model M \"Once upon a time\"), --prompt-ids "
        "or --prompt-file");
  }
  Prompts prompts;
  if (!flags.prompt_ids.empty()) {
    prompts.ids = split_int_list(flags.prompt_ids, "--prompt-ids");
  } else if (!flags.prompt_file.empty()) {
    prompts.texts = read_prompt_file(flags.prompt_file, flags.prompt_separator);
  } else {
    prompts.texts = {prompt};
  }
  return prompts;
}

void check_save_path(const std::string& path, bool online_distill) {
  if (path.empty()) return;
  if (!online_distill) {
    fail("--osd-save writes the draft that online distillation learned: add --online-distill");
  }
  // Fail now rather than after the whole run, when the learned weights
  // would be lost.
  try {
    check_output_path(path);
  } catch (const Error& e) {
    fail("--osd-save ", e.what());
  }
}

void run(GenerateFlags& flags, const CLI::App& sub) {
  const Prompts prompts = read_prompts(flags);
  resolve_generation_flags(flags, sub);
  check_save_path(flags.osd_save, flags.engine.online_distill.enabled);

  const std::unique_ptr<Engine> engine = Engine::load(flags.engine);
  // With --osd-save, SIGINT/SIGTERM end the run after the current token and
  // the learned draft is still saved: minutes of learning are not lost to
  // Ctrl-C or a job system's TERM.
  std::optional<StopOnSignals> stop;
  if (!flags.osd_save.empty()) {
    stop.emplace();
    flags.options.cancel = &g_stop_requested;
  }
  const auto stopped = [&] { return stop && stop->stop_requested(); };
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
  const bool speculative = !engine->drafter_names().empty() && flags.options.draft_max > 0;
  const size_t count = prompts.ids.empty() ? prompts.texts.size() : 1;
  const bool several = count > 1;
  int64_t total_tokens = 0;
  double total_decode_seconds = 0;
  int64_t total_drafted = 0, total_accepted = 0;
  size_t done = 0;
  for (size_t i = 0; i < count && !stopped(); ++i, ++done) {
    const GenerateResult result =
        prompts.ids.empty() ? engine->generate(prompts.texts[i], flags.options, on_token)
                            : engine->generate_from_tokens(prompts.ids, flags.options, on_token);
    const GenerationStats& s = result.stats;
    total_tokens += s.generated_tokens;
    if (s.decode_tokens_per_second() > 0) {
      total_decode_seconds +=
          static_cast<double>(s.generated_tokens) / s.decode_tokens_per_second();
    }
    total_drafted += s.drafted_tokens;
    total_accepted += s.accepted_tokens;
    if (flags.json) {
      nlohmann::json json = result_json(flags, *engine, result, speculative);
      // Generated text may hold invalid UTF-8 (a random model's bytes): replace it.
      const auto replace = nlohmann::json::error_handler_t::replace;
      if (several) {
        json["request"] = i;
        std::printf("%s\n", json.dump(-1, ' ', false, replace).c_str());  // JSON Lines
      } else {
        std::printf("%s\n", json.dump(2, ' ', false, replace).c_str());
      }
    } else {
      std::printf("\n");
      if (several && i + 1 < count) std::printf("%s\n", flags.prompt_separator.c_str());
    }
    std::fflush(stdout);
    if (flags.quiet) continue;
    if (several) {
      print_request_line(i, count, result);
    } else {
      print_summary(result, speculative);
    }
  }
  if (several && !flags.quiet) {
    std::fprintf(
        stderr,
        "specula: %zu requests: %lld tokens, %.1f tokens/s after the prompts, "
        "acceptance %.1f%%\n",
        count, static_cast<long long>(total_tokens),
        total_decode_seconds > 0 ? static_cast<double>(total_tokens) / total_decode_seconds : 0.0,
        total_drafted > 0
            ? 100.0 * static_cast<double>(total_accepted) / static_cast<double>(total_drafted)
            : 0.0);
    const OnlineLearningStats learning = engine->online_learning_stats();
    if (learning.enabled) print_learning(stderr, learning);
  }
  if (!flags.osd_save.empty()) {
    engine->save_learned_draft(flags.osd_save);
    if (stopped()) {
      fail("interrupted by a signal after ", done, " of ", count,
           " requests; the learned draft was saved to ", flags.osd_save);
    }
    if (!flags.quiet) {
      std::fprintf(stderr, "specula: saved the learned draft to %s\n", flags.osd_save.c_str());
    }
  }
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
      sub.add_option("--prompt-file", flags->prompt_file,
                     "Several prompts, run one after another in one engine (what one request "
                     "learns serves the next): a file, or - for standard input, with prompts "
                     "separated by lines holding only --prompt-separator");
      sub.add_option("--prompt-separator", flags->prompt_separator,
                     "The line between prompts in --prompt-file (also printed between outputs)")
          ->capture_default_str();
      add_generation_flags(sub, *flags);
      sub.add_option("-n,--n-predict", o.max_new_tokens, "Tokens to generate at most")
          ->capture_default_str();
      sub.add_option("-c,--ctx", o.n_ctx,
                     "Context size in tokens; 0 sizes it to the prompt and -n, capped at the "
                     "model's training context")
          ->capture_default_str();
      sub.add_flag("--ignore-eos", o.ignore_eos, "Keep generating past end-of-text tokens");
      sub.add_flag("--json", flags->json,
                   "Print token ids, text and statistics as JSON instead of streaming text (one "
                   "line per request with --prompt-file)");
      sub.add_flag("-q,--quiet", flags->quiet, "No statistics summary on stderr");
      add_online_distill_flags(sub, flags->engine.online_distill);
      sub.add_option("--osd-save", flags->osd_save,
                     "With --online-distill: write the learned draft to this GGUF file at the "
                     "end (load it later with --draft)")
          ->group("Online distillation (the draft learns while generating)");
      sub.callback([flags, &sub] {
        with_flag_names(kOnlineDistillFlags,
                        [&] { with_flag_names(kGenerationFlagNames, [&] { run(*flags, sub); }); });
      });
    },
});

}  // namespace
}  // namespace specula::cli

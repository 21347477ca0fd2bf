// The flags `specula generate` and `specula chat` share: the models, the
// drafters and the draft-length policy, sampling and threads. Each command
// adds its own -n and -c (their help differs) and its other flags.
#pragma once

#include <CLI/CLI.hpp>
#include <array>
#include <string>

#include "cli/field_flags.h"
#include "specula/engine.h"

namespace specula::cli {

// The flag of each EngineConfig and GenerateOptions field the library's
// errors name (the --osd-* ones: kOnlineDistillFlags).
inline constexpr std::array<FieldFlag, 10> kGenerationFlagNames = {{
    {"EngineConfig::model_path", "--model"},
    {"EngineConfig::draft_path", "--draft"},
    {"Engine::generate_from_tokens", "--prompt-ids"},
    {"GeneratorOptions::max_new_tokens", "-n"},
    {"GeneratorOptions::draft_max", "--draft-max"},
    {"PolicyOptions::confidence_threshold", "--confidence-threshold"},
    {"EngineConfig::drafters", "--drafter"},
    {"EngineConfig::suffix_cache_tokens", "--suffix-cache-tokens"},
    {"GenerateOptions::n_ctx", "--ctx"},
    {"GenerateOptions::max_new_tokens", "-n"},
}};

struct GenerationFlags {
  EngineConfig engine;
  GenerateOptions options;
  std::string policy = "adaptive";
  std::string drafters;  // "model,lookup"; empty: the engine's default
  std::string kv_type = "f16";
};

// -m, -d, --draft-max, --policy, --drafter, --suffix-cache-tokens,
// --confidence-threshold, --temp, --top-k, --top-p, --min-p, --seed, -t,
// --kv-type.
void add_generation_flags(CLI::App& sub, GenerationFlags& flags);

// After parsing: the policy and drafter list into engine and options, and
// errors for an empty --drafter or a suffix cache budget below 1.
void resolve_generation_flags(GenerationFlags& flags, const CLI::App& sub);

}  // namespace specula::cli

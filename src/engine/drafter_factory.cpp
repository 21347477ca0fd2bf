#include "engine/drafter_factory.h"

#include <charconv>

#include "core/error.h"
#include "drafters/model_drafter.h"
#include "drafters/self_drafter.h"
#include "drafters/suffix_cache_drafter.h"
#include "online/learning_model_drafter.h"

namespace specula {
namespace {

// The whole of `text` as a positive int32, or fail naming `spec`.
int32_t parse_count(const std::string& text, const std::string& spec, const char* what) {
  int32_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end || value < 1) {
    fail("drafter '", spec, "': '", text, "' is not a valid ", what,
         " (a whole number >= 1); drafters: ", drafter_spec_help());
  }
  return value;
}

}  // namespace

const char* drafter_spec_help() {
  return "model, lookup[:N|:MIN-MAX], suffix, self[:K]";
}

DrafterSpec parse_drafter_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const bool has_argument = colon != std::string::npos;
  const std::string argument = has_argument ? spec.substr(colon + 1) : std::string();
  DrafterSpec parsed;
  if (name == "model" || name == "suffix") {
    if (has_argument) {
      fail("drafter '", spec, "': '", name, "' takes no argument; drafters: ", drafter_spec_help());
    }
    parsed.kind = name == "model" ? DrafterKind::kModel : DrafterKind::kSuffix;
  } else if (name == "lookup") {
    parsed.kind = DrafterKind::kLookup;
    if (has_argument) {
      const size_t dash = argument.find('-');
      if (dash == std::string::npos) {
        parsed.lookup.min_ngram = 1;
        parsed.lookup.max_ngram = parse_count(argument, spec, "n-gram size");
      } else {
        parsed.lookup.min_ngram = parse_count(argument.substr(0, dash), spec, "n-gram size");
        parsed.lookup.max_ngram = parse_count(argument.substr(dash + 1), spec, "n-gram size");
      }
      validate(parsed.lookup);
    }
  } else if (name == "self") {
    parsed.kind = DrafterKind::kSelf;
    if (has_argument) parsed.self_layers = parse_count(argument, spec, "layer count");
  } else {
    fail("unknown drafter '", spec, "': use one of ", drafter_spec_help());
  }
  return parsed;
}

void check_drafter_spec(const std::string& spec, const DrafterResources& resources) {
  const DrafterSpec parsed = parse_drafter_spec(spec);
  switch (parsed.kind) {
    case DrafterKind::kModel:
      if (resources.draft == nullptr) {
        fail(
            "the drafter 'model' needs a draft model file: set EngineConfig::draft_path, or use "
            "lookup, "
            "suffix or self, which need none");
      }
      break;
    case DrafterKind::kSuffix:
      if (resources.suffix_cache == nullptr) {
        fail("the drafter 'suffix' needs the engine's suffix cache, and none was given");
      }
      break;
    case DrafterKind::kSelf: {
      if (resources.target == nullptr) fail("the drafter '", spec, "' needs the target model");
      const int32_t n_layer = resources.target->config().n_layer;
      if (parsed.self_layers > n_layer) {
        fail("drafter '", spec, "': the target ", resources.target->file().path(), " has ", n_layer,
             " layers; give self:1 .. self:", n_layer);
      }
      break;
    }
    case DrafterKind::kLookup:
      break;
  }
}

std::unique_ptr<Drafter> make_drafter(const std::string& spec, const DrafterResources& resources) {
  check_drafter_spec(spec, resources);
  const DrafterSpec parsed = parse_drafter_spec(spec);
  if ((parsed.kind == DrafterKind::kModel || parsed.kind == DrafterKind::kSelf) &&
      resources.n_ctx < 1) {
    fail("drafter '", spec, "': its context size is ", resources.n_ctx,
         ": it must be at least 1 token");
  }
  switch (parsed.kind) {
    case DrafterKind::kModel:
      if (resources.online_distiller) {
        return std::make_unique<LearningModelDrafter>(*resources.draft, resources.n_ctx,
                                                      resources.pool, resources.online_distiller);
      }
      return std::make_unique<ModelDrafter>(*resources.draft, resources.n_ctx, resources.pool);
    case DrafterKind::kLookup:
      return std::make_unique<PromptLookupDrafter>(parsed.lookup);
    case DrafterKind::kSuffix:
      return std::make_unique<SuffixCacheDrafter>(*resources.suffix_cache);
    case DrafterKind::kSelf:
      return std::make_unique<SelfDrafter>(*resources.target, parsed.self_layers, resources.n_ctx,
                                           resources.pool);
  }
  fail("unknown drafter '", spec, "'");
}

}  // namespace specula

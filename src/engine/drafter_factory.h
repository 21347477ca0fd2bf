// Drafters by name, for the command line, the Engine and the server:
// make_drafter("self:8", resources) builds the drafter a --drafter flag
// names. Spec grammar (case-sensitive, no spaces):
//
//   model           the draft model file          (needs resources.draft); a
//                   learning one with resources.online_distiller
//   lookup          prompt lookup, n-grams 1..3
//   lookup:N        prompt lookup, n-grams 1..N
//   lookup:MIN-MAX  prompt lookup, n-grams MIN..MAX (1 <= MIN <= MAX <= 64)
//   suffix          the engine's shared suffix cache (needs resources.suffix_cache)
//   self            the target's first quarter of its layers, rounded up
//   self:K          the target's first K layers     (needs resources.target)
//
// A drafter's name() is the spec that rebuilds it ("lookup", "lookup:2-4",
// "suffix", "self:8"), except the model drafter's, which names its file.
// Bad specs and missing resources throw Error saying what to write instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "drafters/prompt_lookup_drafter.h"
#include "drafters/suffix_cache.h"
#include "model/model.h"
#include "speculative/drafter.h"

namespace specula {

class OnlineDistiller;

// What drafters may need; each must outlive the drafters built from it.
struct DrafterResources {
  const Model* target = nullptr;        // "self"
  const Model* draft = nullptr;         // "model"
  SuffixCache* suffix_cache = nullptr;  // "suffix"
  int32_t n_ctx = 0;                    // the model and self drafters' cache sizes
  ThreadPool* pool = nullptr;           // for their forwards; null: one thread
  // When set, "model" builds a LearningModelDrafter that learns through this
  // distiller (built from `draft`); shared so that drafters rebuilt for
  // another context keep what it learned.
  std::shared_ptr<OnlineDistiller> online_distiller;
};

enum class DrafterKind { kModel, kLookup, kSuffix, kSelf };

// A spec, parsed.
struct DrafterSpec {
  DrafterKind kind = DrafterKind::kLookup;
  PromptLookupOptions lookup;  // kLookup
  int32_t self_layers = 0;     // kSelf; 0: the default (a quarter)
};

// Throws Error for an unknown name or a malformed argument.
DrafterSpec parse_drafter_spec(const std::string& spec);

// Parses `spec` and checks that `resources` hold what it needs (a draft
// model, a target with enough layers, a suffix cache); n_ctx is not needed.
// For checking flags before any generation.
void check_drafter_spec(const std::string& spec, const DrafterResources& resources);

// Builds the drafter `spec` names (check_drafter_spec's checks, and n_ctx
// >= 1 for the model and self drafters).
std::unique_ptr<Drafter> make_drafter(const std::string& spec, const DrafterResources& resources);

// "model, lookup[:N|:MIN-MAX], suffix, self[:K]": for help and error text.
const char* drafter_spec_help();

}  // namespace specula

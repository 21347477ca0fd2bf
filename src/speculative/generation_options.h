// What a generation is asked to do (GeneratorOptions), who drafts and decides
// (Speculation), and what it gives back (GenerationOutput). Shared by the
// Generator and the decoding steps it is made of (generation_step.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "policies/bandit.h"
#include "policies/policy.h"
#include "sampling/sampling.h"
#include "specula/stats.h"
#include "speculative/drafter.h"
#include "speculative/verifier.h"

namespace specula {

struct GeneratorOptions {
  SamplingParams sampling;
  int32_t max_new_tokens = 128;
  int32_t draft_max = 8;  // the most tokens drafted per step; 0 means plain decoding
  // Ids that end generation (not emitted, not counted).
  std::vector<int32_t> stop_tokens;
  // Null: the exact rule. Tests only: a Verifier subclass with a deliberately
  // wrong rule (tests/spec/wrong_verify_rules.h) proves that the losslessness
  // tests can fail. Must outlive the call.
  Verifier* verifier = nullptr;
};

// Who drafts and who decides; everything pointed to must outlive the call.
struct Speculation {
  // Slots 0..n-1; empty: plain decoding. Every drafter sees every step
  // (observe_target() and accept()), whichever proposed.
  std::vector<Drafter*> drafters;
  // Chooses g per step; keeps its estimates across calls. Null: the
  // Generator's own FixedPolicy (g = draft_max, the classic behaviour).
  DraftLengthPolicy* policy = nullptr;
  // Chooses among the drafters the policy would run; keeps its state across
  // calls. Null: slot 0 proposes.
  DrafterBandit* bandit = nullptr;
};

// Receives each emitted token in order; returns false to stop generating.
using TokenCallback = std::function<bool(int32_t token)>;

struct GenerationOutput {
  std::vector<int32_t> tokens;  // generated, prompt excluded
  GenerationStats stats;
};

}  // namespace specula

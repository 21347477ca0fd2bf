// The decoding loop: plain decoding and speculative decoding are the same
// loop (plain is g = 0 or no drafter). Each step a draft-length policy
// chooses g (0..draft_max) and, with several drafters, a bandit chooses
// which one proposes; neither touches verification, so the output stays
// exact whatever they choose.
//
// Cache discipline: the target's KV cache always holds every token of the
// sequence but the last, whose row opens the next verification pass:
//   rows = [last token, x_1 .. x_g] at positions L-1 .. L-1+g (all logits),
// row i scoring the position of x_(i+1) and row g the one after x_g. After
// the verifier kept k drafted tokens and gave the next token, the sequence
// has L+k+1 tokens and the cache is truncated to L+k.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "sampling/sampling.h"
#include "specula/stats.h"
#include "speculative/drafter.h"
#include "speculative/verifier.h"

namespace specula {

struct GeneratorOptions {
  SamplingParams sampling;
  int32_t max_new_tokens = 128;  // -n
  int32_t draft_max = 4;         // the most tokens drafted per step; 0 means plain decoding
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

class Generator {
 public:
  // `target` (and `pool`, which may be null for one thread) must outlive the
  // Generator. The sequence (prompt + generated) never exceeds n_ctx tokens.
  Generator(const Model& target, int32_t n_ctx, ThreadPool* pool);

  int32_t n_ctx() const { return n_ctx_; }
  const KvCache& cache() const { return cache_; }

  // Generates after `prompt` with the drafters, policy and bandit of
  // `speculation`. Throws Error for an empty prompt, a prompt longer than
  // n_ctx, ids outside the vocabulary or bad options.
  // Reproducible (the same inputs and options.sampling.seed give the same
  // tokens) with the fixed, heuristic and confidence policies and one
  // drafter. The adaptive policy and the bandit decide from measured time,
  // so at temperature > 0 two runs may draft differently and then draw
  // different (equally distributed) tokens; at temperature 0 the tokens are
  // always those of plain greedy decoding.
  GenerationOutput generate(std::span<const int32_t> prompt, const Speculation& speculation,
                            const GeneratorOptions& options, const TokenCallback& on_token = {});
  // One drafter (null: plain decoding), g = options.draft_max every step.
  GenerationOutput generate(std::span<const int32_t> prompt, Drafter* drafter,
                            const GeneratorOptions& options, const TokenCallback& on_token = {});

 private:
  const Model& target_;
  int32_t n_ctx_;
  ThreadPool* pool_;
  KvCache cache_;
  // Reused across steps so that the loop does not allocate once warm.
  std::vector<BatchRow> rows_;
  std::vector<float> logits_;  // (g+1) x n_vocab
  std::vector<float> probs_;   // (g+1) x n_vocab
  DraftProposal proposal_;
  FixedPolicy default_policy_{PolicyOptions{.kind = PolicyKind::kFixed}};
  std::vector<int32_t> candidates_;
};

}  // namespace specula

// The decoding loop: plain decoding and speculative decoding with a fixed
// draft length g are the same loop (plain is g = 0 or no drafter).
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
#include "sampling/sampling.h"
#include "spec/drafter.h"
#include "spec/verifier.h"
#include "specula/stats.h"

namespace specula {

struct GeneratorOptions {
  SamplingParams sampling;
  int32_t max_new_tokens = 128;  // -n
  int32_t draft_max = 4;         // g; 0 means plain decoding
  // Ids that end generation (not emitted, not counted).
  std::vector<int32_t> stop_tokens;
  // Tests only: a deliberately wrong rule proves the losslessness tests can
  // fail. Production code leaves it at kExact.
  VerifyRule verify_rule = VerifyRule::kExact;
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

  // Generates after `prompt`, with `drafter` (null: plain decoding) proposing
  // up to options.draft_max tokens per step. Reproducible: the same inputs
  // and options.sampling.seed give the same tokens. Throws Error for an empty
  // prompt, a prompt longer than n_ctx, ids outside the vocabulary or bad
  // options.
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
};

}  // namespace specula

// One sequence's decoding, split into the steps a scheduler drives. The
// Generator drives one sequence through them; a server's scheduler can
// drive many, putting the verify rows of all of them into one TargetBatch
// so that a single target forward covers every sequence (continuous
// batching). Each step works on one SequenceState and touches only its
// sequence's rows of the KV cache.
//
//   start_sequence   validate the request, reset the state
//   append_prefill_rows -> target forward -> begin_drafting
//   while ready_for_step:
//     plan_step        the policy (and bandit) choose the drafter and g;
//                      free drafters propose (shadow_drafts.h)
//     draft_step       the drafter proposes (timed, ids checked)
//     append_verify_rows -> target forward (record_target_pass)
//     verify_step      greedy or exact speculative sampling on its rows
//     commit_step      emit with stop checks, roll back the cache, let the
//                      drafters, policy and bandit learn (shadows scored)
//   finish_sequence  the tokens and statistics
//
// Cache discipline: the target's KV cache always holds every token of the
// sequence but the last, whose row opens the next verification pass:
//   rows = [last token, x_1 .. x_g] at positions L-1 .. L-1+g (all logits),
// row i scoring the position of x_(i+1) and row g the one after x_g. After
// the verifier kept k drafted tokens and gave the next token, the sequence
// has L+k+1 tokens and the cache is truncated to L+k.
//
// Once warm (buffers grown to their largest size) no step allocates.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "speculative/generation_options.h"
#include "speculative/step_recorder.h"

namespace specula {

// What a sequence is decoded with; everything pointed to must outlive it.
struct SequenceSetup {
  int32_t seq = 0;    // its sequence id in the target's KvCache (BatchRow::seq)
  int32_t n_ctx = 0;  // the most tokens (prompt + generated) it may hold
  int32_t n_vocab = 0;
  const GeneratorOptions* options = nullptr;
  std::span<Drafter* const> drafters;  // slots 0..n-1; empty: plain decoding
  DraftLengthPolicy* policy = nullptr;
  DrafterBandit* bandit = nullptr;  // ignored with fewer than two drafters
};

// One step's decisions and results; overwritten by the next step.
struct StepState {
  int32_t length = 0;     // sequence length when the step began
  int32_t slot = -1;      // the drafter proposing; -1: a plain step
  int32_t requested = 0;  // g asked of it (0 for a plain step)
  StepPlan plan;
  DraftProposal proposal;
  int32_t first_logits_row = 0;  // its first row among the TargetBatch's logits
  VerifyResult result;
  double propose_seconds = 0;
  double target_seconds = 0;    // the forward its rows were part of
  double sampling_seconds = 0;  // transforms and verification
  double accept_seconds = 0;    // the proposing drafter's accept()

  int32_t drafted() const { return static_cast<int32_t>(proposal.tokens.size()); }
};

// A free drafter's proposal at a step where it did not run, waiting for the
// tokens that decide how much of it matched (shadow_drafts.h).
struct ShadowDraft {
  std::vector<int32_t> tokens;
  int32_t position = 0;  // the sequence length it continued
  int32_t planned = 0;   // the draft length the policy would have asked; 0: none
  bool pending = false;
};

// One sequence being generated: the natural unit of a batch.
struct SequenceState {
  SequenceSetup setup;
  bool speculative = false;     // drafters given and draft_max > 0
  std::vector<int32_t> tokens;  // prompt + generated so far
  std::vector<int32_t> output;  // generated so far
  Rng rng{0};                   // the drafters' and the verifier's
  // The bandit's own stream: choosing a drafter never shifts the random
  // numbers the drafters and the verifier draw.
  Rng bandit_rng{0};
  StopReason stop_reason = StopReason::kNone;
  StepRecorder recorder;
  StepState step;
  // Reused across steps.
  std::vector<float> probs;         // (g+1) x n_vocab
  std::vector<int32_t> candidates;  // drafter slots the bandit may choose
  // Per drafter slot: this step's proposal of a free drafter
  // (Drafter::proposes_for_free), and its shadow draft (shadow_drafts.h).
  std::vector<DraftProposal> free_proposals;
  std::vector<ShadowDraft> shadows;
  Verifier exact_verifier;

  const GeneratorOptions& options() const { return *setup.options; }
  // Null options.verifier: exact_verifier.
  Verifier& verifier();
};

// The rows of one target forward pass, shared by any number of sequences,
// and the logits it wrote (n_logit_rows x n_vocab, in row order).
struct TargetBatch {
  std::vector<BatchRow> rows;
  std::vector<float> logits;
  int32_t n_logit_rows = 0;

  void clear() {
    rows.clear();
    n_logit_rows = 0;
  }
};

// Checks the request (throws Error naming the bad field) and resets `state`
// for `prompt`. Does not touch the cache, drafters, policy or bandit.
void start_sequence(SequenceState& state, const SequenceSetup& setup,
                    std::span<const int32_t> prompt);
// The prompt's tokens but the last (no logits), from position `first` on;
// the caller truncates the sequence's cache rows to `first` first
// (KvCache::truncate(seq, first)), keeping rows of the same tokens.
void append_prefill_rows(const SequenceState& state, TargetBatch& batch, int32_t first = 0);
// After the prefill forward: the drafters, policy and bandit begin the
// sequence (the caller then records the prefill time in state.recorder).
void begin_drafting(SequenceState& state);

// False, with the stop reason set, when the sequence has no room for
// another token (max_new_tokens reached or the context full).
bool ready_for_step(SequenceState& state);
// The most tokens a step may draft: what fits in the context and in
// max_new_tokens besides the target's own token, at most draft_max; 0 for
// plain decoding.
int32_t draft_limit(const SequenceState& state);
// Chooses step.slot, step.plan and step.requested (<= draft_limit).
void plan_step(SequenceState& state);
// The chosen drafter proposes step.requested tokens (none for a plain
// step). Throws Error when it proposes an id outside the vocabulary.
void draft_step(SequenceState& state);
// The last token and the drafted ones, all wanting logits.
void append_verify_rows(SequenceState& state, TargetBatch& batch);
// The sequence's (g+1) x n_vocab raw logits in a forwarded batch.
std::span<const float> verify_logits(const SequenceState& state, const TargetBatch& batch);
void record_target_pass(SequenceState& state, double seconds);
// Sets step.result: greedy matching, or the verifier on the transformed
// distributions.
void verify_step(SequenceState& state, std::span<const float> logits);
// Emits the kept tokens (stopping at a stop token, max_new_tokens or a
// callback returning false), truncates the sequence's cache rows to the
// kept length, and lets the drafters, policy and bandit observe the step.
void commit_step(SequenceState& state, std::span<const float> logits, KvCache& cache,
                 const TokenCallback& on_token);
// The generated tokens and statistics; `state` is spent.
GenerationOutput finish_sequence(SequenceState& state, double total_seconds);

}  // namespace specula

// The drafter interface: something that proposes the next tokens cheaply.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sampling/sampling.h"
#include "specula/stats.h"

namespace specula {

// Up to g proposed tokens. For a drafter that samples from a distribution,
// probs[i] is q_i (n_vocab floats, after the same SamplingParams transform
// the target uses) and tokens[i] was drawn from it. A deterministic drafter
// leaves probs empty: q is one-hot on tokens[i].
struct DraftProposal {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> probs;
  // Optional, empty or one per token: the drafter's own probability of
  // tokens[i] (in [0, 1]), the signal for stopping a draft early. A model
  // drafter gives q_i(tokens[i]) when sampling, and its untransformed
  // softmax(logits)[tokens[i]] when greedy (there q is one-hot and says
  // nothing). Deterministic drafters may leave it empty.
  std::vector<float> confidence;

  // Input, set by the caller before propose() and kept by clear(): a drafter
  // that reports confidence stops drafting after a token whose confidence
  // is below this (that token is still proposed: the policy learns from its
  // fate). 0 never stops early.
  float stop_confidence = 0.0f;

  bool deterministic() const { return probs.empty(); }
  void clear() {
    tokens.clear();
    probs.clear();
    confidence.clear();
  }
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;

  // Starts a new sequence whose tokens so far are `context`.
  virtual void begin(std::span<const int32_t> context) = 0;

  // Proposes up to g tokens continuing `context` (the whole sequence so far,
  // which extends the last context seen by begin/accept). May propose fewer.
  // out.stop_confidence is an input (see DraftProposal).
  virtual void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params,
                       Rng& rng, DraftProposal& out) = 0;

  // After verification: `context` is the sequence now (accepted drafted
  // tokens and the target's correction/bonus token included), and n_accepted
  // of the last proposal's tokens were kept. Drafters roll back state and
  // learn here.
  virtual void accept(std::span<const int32_t> context, int32_t n_accepted) = 0;

  // Free teacher signal (online distillation): called by the Generator after
  // each verification pass, before accept(), with the target's RAW LOGITS
  // (before temperature or any SamplingParams transform) for the positions
  // whose prefix the verifier kept.
  //   target_logits: n_rows x n_vocab floats, row-major;
  //   row i (0 <= i < n_rows) scores the token at position first_position + i
  //   given context[0 .. first_position + i).
  // n_rows = (drafted tokens accepted) + 1, fewer only when generation
  // stopped inside the step: the rows scoring rejected drafts' positions
  // are never passed. context holds at least first_position + n_rows - 1
  // tokens; context[first_position + i] is the token actually emitted there
  // (the last row's may be missing when generation stopped at it, e.g. an
  // end-of-generation token). Plain steps (g = 0) call it too, with one row.
  // The spans are valid only during the call: copy what you keep. The
  // default does nothing, so drafters that do not learn pay one virtual call.
  virtual void observe_target(std::span<const int32_t> context, int32_t first_position,
                              std::span<const float> target_logits, int32_t n_rows,
                              int32_t n_vocab) {
    (void)context;
    (void)first_position;
    (void)target_logits;
    (void)n_rows;
    (void)n_vocab;
  }

  // Whether propose() costs next to nothing (no model: table look-ups),
  // draws no random numbers and leaves nothing that accept() must undo.
  // The step code then asks such a drafter at every step: when it has
  // nothing to propose the bandit does not choose it, and when another
  // drafter runs its proposal is scored against the tokens that follow, a
  // free observation of its acceptance for the policy and the bandit
  // (shadow drafts, shadow_drafts.h).
  virtual bool proposes_for_free() const { return false; }
  // What this drafter holds in memory beyond the target (name left empty:
  // whoever lists drafters names them). Shared tables are reported by each
  // drafter that drafts from them. The default: nothing.
  virtual DrafterMemory memory() const { return {}; }
};

}  // namespace specula

// Draw replay: a check wrapped around a probabilistic drafter that the q it
// records is the q it drew from. Before each propose() it copies the RNG;
// afterwards it re-draws every proposed token from the recorded q_i with
// sample() on the copy, and requires the same token, and the copy to end in
// the RNG's state (exactly one draw per token). A deterministic proposal
// (no q) must not have drawn at all.
//
// The verifier's guarantee rests on q being the distribution the token was
// drawn from; a q computed from other weights (e.g. newer online-distilled
// ones) or a token picked without a draw (an argmax "fast path") breaks it,
// yet the chi-square fits can miss it (issue 15).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "speculative/drafter.h"

namespace specula::testing {

struct DrawReplayCounts {
  int64_t proposals = 0;
  int64_t replayed_tokens = 0;   // tokens re-drawn from their recorded q
  int64_t token_mismatches = 0;  // re-drawn token != proposed token
  int64_t draw_mismatches = 0;   // proposals that drew more or fewer than one per token
  int64_t malformed = 0;         // q missing or of the wrong size
};

class DrawReplayCheck : public Drafter {
 public:
  DrawReplayCheck(Drafter& inner, int32_t n_vocab) : inner_(inner), n_vocab_(n_vocab) {}

  std::string name() const override { return inner_.name(); }
  void begin(std::span<const int32_t> context) override { inner_.begin(context); }
  void accept(std::span<const int32_t> context, int32_t n_accepted) override {
    inner_.accept(context, n_accepted);
  }
  void observe_target(std::span<const int32_t> context, int32_t first_position,
                      std::span<const float> target_logits, int32_t n_rows,
                      int32_t n_vocab) override {
    inner_.observe_target(context, first_position, target_logits, n_rows, n_vocab);
  }
  DrafterMemory memory() const override { return inner_.memory(); }

  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override {
    Rng replay = rng;
    inner_.propose(context, g, params, rng, out);
    ++counts_.proposals;
    if (!out.deterministic()) {
      if (out.probs.size() != out.tokens.size()) {
        ++counts_.malformed;
        return;
      }
      for (size_t i = 0; i < out.tokens.size(); ++i) {
        if (out.probs[i].size() != static_cast<size_t>(n_vocab_)) {
          ++counts_.malformed;
          return;
        }
        ++counts_.replayed_tokens;
        if (sample(out.probs[i], replay) != out.tokens[i]) ++counts_.token_mismatches;
      }
    }
    // The same state gives the same next output (a different one, the same
    // output with probability 2^-64); compared on copies, so the
    // generation's stream is untouched.
    Rng after = rng;
    if (after.next_u64() != replay.next_u64()) ++counts_.draw_mismatches;
  }

  const DrawReplayCounts& counts() const { return counts_; }

 private:
  Drafter& inner_;
  int32_t n_vocab_;
  DrawReplayCounts counts_;
};

}  // namespace specula::testing

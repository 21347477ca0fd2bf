// The drafter interface: something that proposes the next tokens cheaply.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sampling/sampling.h"

namespace specula {

// Up to g proposed tokens. For a drafter that samples from a distribution,
// probs[i] is q_i (n_vocab floats, after the same SamplingParams transform
// the target uses) and tokens[i] was drawn from it. A deterministic drafter
// leaves probs empty: q is one-hot on tokens[i].
struct DraftProposal {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> probs;

  bool deterministic() const { return probs.empty(); }
  void clear() {
    tokens.clear();
    probs.clear();
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
  virtual void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params,
                       Rng& rng, DraftProposal& out) = 0;

  // After verification: `context` is the sequence now (accepted drafted
  // tokens and the target's correction/bonus token included), and n_accepted
  // of the last proposal's tokens were kept. Drafters roll back state and
  // learn here.
  virtual void accept(std::span<const int32_t> context, int32_t n_accepted) = 0;
};

}  // namespace specula

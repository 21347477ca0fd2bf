// Exact speculative sampling (Leviathan et al. 2023, Algorithm 1; Chen et
// al. 2023): keeps drafted tokens so that the output is distributed exactly
// as the target's own samples.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sampling/sampling.h"
#include "speculative/drafter.h"

namespace specula {

struct VerifyResult {
  int32_t n_accepted = 0;  // drafted tokens kept, 0..g
  // The correction (on rejection) or bonus token. The exact rule always
  // gives one; -1 (none) comes only from a deliberately wrong test rule
  // that drops the bonus, and the Generator then emits nothing after the
  // accepted tokens.
  int32_t next_token = 0;
};

// The exact rule. Sampled verification is virtual so that the losslessness
// tests can substitute deliberately wrong rules (tests/spec/
// wrong_verify_rules.h) and prove that they would catch the mistakes people
// really make; the library itself holds no wrong rule. One virtual call per
// step costs nothing next to a forward pass.
class Verifier {
 public:
  Verifier() = default;
  virtual ~Verifier() = default;

  // target_probs holds g+1 distributions p_1..p_(g+1) (n_vocab each, after
  // the same transform as the draft's), row i scoring the position of
  // draft.tokens[i]; row g scores the position after the last draft token.
  // For i = 1..g: accept x_i with probability min(1, p_i(x_i) / q_i(x_i));
  // at the first rejection sample from norm(max(0, p_i - q_i)); if all are
  // accepted sample the bonus token from p_(g+1). When `greedy`, accept while
  // x_i == argmax p_i, and the next token is argmax of the first unmatched row.
  // A deterministic draft (no probs) has q_i one-hot on x_i: acceptance is
  // p_i(x_i) and the residual is p_i without x_i.
  // Consumes random numbers from `rng` only when not greedy; the same inputs
  // and rng state give the same result.
  VerifyResult verify(const DraftProposal& draft, std::span<const float> target_probs,
                      int32_t n_vocab, bool greedy, Rng& rng);

 protected:
  // verify() when not greedy: Algorithm 1 as described above.
  virtual VerifyResult verify_sampled(const DraftProposal& draft,
                                      std::span<const float> target_probs, int32_t n_vocab,
                                      Rng& rng);
  // Draws from norm(max(0, p - q)), or from p when that has (almost) no mass;
  // q empty means one-hot on `drafted`.
  int32_t sample_residual(std::span<const float> p, std::span<const float> q, int32_t drafted,
                          Rng& rng);

 private:
  std::vector<float> residual_;  // reused: no allocation per step once warm
};

// The greedy verification alone: accept while drafted == argmax of the row.
VerifyResult verify_greedy(std::span<const int32_t> drafted, std::span<const float> target_rows,
                           int32_t n_vocab);

}  // namespace specula

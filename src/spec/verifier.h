// Exact speculative sampling (Leviathan et al. 2023, Algorithm 1; Chen et
// al. 2023): keeps drafted tokens so that the output is distributed exactly
// as the target's own samples.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sampling/sampling.h"
#include "spec/drafter.h"

namespace specula {

struct VerifyResult {
  int32_t n_accepted = 0;  // drafted tokens kept, 0..g
  int32_t next_token = 0;  // the correction (on rejection) or bonus token
};

class Verifier {
 public:
  // target_probs holds g+1 distributions p_1..p_(g+1) (n_vocab each, after
  // the same transform as the draft's), row i scoring the position of
  // draft.tokens[i]; row g scores the position after the last draft token.
  // For i = 1..g: accept x_i with probability min(1, p_i(x_i) / q_i(x_i));
  // at the first rejection sample from norm(max(0, p_i - q_i)); if all are
  // accepted sample the bonus token from p_(g+1). When `greedy`, accept while
  // x_i == argmax p_i, and the next token is argmax of the first unmatched row.
  VerifyResult verify(const DraftProposal& draft, std::span<const float> target_probs,
                      int32_t n_vocab, bool greedy, Rng& rng);

 private:
  std::vector<float> residual_;
};

}  // namespace specula

// Deliberately wrong verification rules, the negative controls of the
// losslessness tests (design.md, "How we know it is right"): each is a
// mistake people really make, and the chi-square tests must reject it,
// which proves they have the power to catch it. They live in the test tree
// so that the library holds only the exact rule; the tests reach the
// Generator through GeneratorOptions::verifier.
#pragma once

#include <memory>
#include <span>

#include "speculative/verifier.h"

namespace specula {

enum class VerifyRule {
  kExact,               // Algorithm 1: the library's own Verifier
  kAcceptAll,           // keeps every drafted token
  kResampleFromTarget,  // on rejection draws from p instead of norm(max(0, p - q))
  kInvertedRatio,       // accepts with min(1, q/p)
  kDropBonus,           // no bonus token when all drafted tokens are accepted
};

// A Verifier that applies `rule` when sampling (greedy verification is not
// overridden: the wrong rules are about the sampled path).
class RuleVerifier : public Verifier {
 public:
  explicit RuleVerifier(VerifyRule rule) : rule_(rule) {}

 protected:
  VerifyResult verify_sampled(const DraftProposal& draft, std::span<const float> target_probs,
                              int32_t n_vocab, Rng& rng) override;

 private:
  VerifyRule rule_;
};

// For GeneratorOptions::verifier: null for kExact, so that the exact runs
// take the production path (the Generator's own Verifier); a RuleVerifier
// otherwise.
std::unique_ptr<Verifier> make_verifier(VerifyRule rule);

}  // namespace specula

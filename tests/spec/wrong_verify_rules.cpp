#include "spec/wrong_verify_rules.h"

namespace specula {

VerifyResult RuleVerifier::verify_sampled(const DraftProposal& draft,
                                          std::span<const float> target_probs, int32_t n_vocab,
                                          Rng& rng) {
  if (rule_ == VerifyRule::kExact)
    return Verifier::verify_sampled(draft, target_probs, n_vocab, rng);
  const int32_t g = static_cast<int32_t>(draft.tokens.size());
  auto p_row = [&](int32_t i) {
    return target_probs.subspan(static_cast<size_t>(i) * n_vocab, n_vocab);
  };
  if (rule_ == VerifyRule::kAcceptAll) return {g, sample(p_row(g), rng)};

  for (int32_t i = 0; i < g; ++i) {
    const int32_t x = draft.tokens[i];
    const std::span<const float> p = p_row(i);
    const std::span<const float> q =
        draft.deterministic() ? std::span<const float>() : std::span<const float>(draft.probs[i]);
    const double px = p[x];
    const double qx = q.empty() ? 1.0 : q[x];
    bool accepted = false;
    if (rule_ == VerifyRule::kInvertedRatio) {
      accepted = qx >= px || rng.uniform() * px < qx;
    } else {
      accepted = px >= qx || rng.uniform() * qx < px;
    }
    if (accepted) continue;
    if (rule_ == VerifyRule::kResampleFromTarget) return {i, sample(p, rng)};
    return {i, sample_residual(p, q, x, rng)};
  }
  if (rule_ == VerifyRule::kDropBonus) return {g, -1};
  return {g, sample(p_row(g), rng)};
}

std::unique_ptr<Verifier> make_verifier(VerifyRule rule) {
  if (rule == VerifyRule::kExact) return nullptr;
  return std::make_unique<RuleVerifier>(rule);
}

}  // namespace specula

#include "speculative/verifier.h"

#include <algorithm>
#include <cassert>

namespace specula {
namespace {

// Below this residual mass (out of 1), max(0, p - q) is float noise: p and q
// agree to rounding, a rejection was itself a ~1e-9 event, and p is as good a
// correction as any.
constexpr double kResidualFloor = 1e-9;

std::span<const float> row(std::span<const float> rows, int32_t i, int32_t n_vocab) {
  return rows.subspan(static_cast<size_t>(i) * n_vocab, n_vocab);
}

}  // namespace

VerifyResult verify_greedy(std::span<const int32_t> drafted, std::span<const float> target_rows,
                           int32_t n_vocab) {
  const int32_t g = static_cast<int32_t>(drafted.size());
  assert(target_rows.size() >= static_cast<size_t>(g + 1) * n_vocab);
  for (int32_t i = 0; i < g; ++i) {
    const int32_t best = argmax(row(target_rows, i, n_vocab));
    if (drafted[i] != best) return {i, best};
  }
  return {g, argmax(row(target_rows, g, n_vocab))};
}

VerifyResult Verifier::verify(const DraftProposal& draft, std::span<const float> target_probs,
                              int32_t n_vocab, bool greedy, Rng& rng) {
  if (greedy) return verify_greedy(draft.tokens, target_probs, n_vocab);
  return verify_sampled(draft, target_probs, n_vocab, rng);
}

VerifyResult Verifier::verify_sampled(const DraftProposal& draft,
                                      std::span<const float> target_probs, int32_t n_vocab,
                                      Rng& rng) {
  const int32_t g = static_cast<int32_t>(draft.tokens.size());
  assert(target_probs.size() >= static_cast<size_t>(g + 1) * n_vocab);
  assert(draft.deterministic() || draft.probs.size() >= static_cast<size_t>(g));
  for (int32_t i = 0; i < g; ++i) {
    const int32_t x = draft.tokens[i];
    const std::span<const float> p = row(target_probs, i, n_vocab);
    const std::span<const float> q =
        draft.deterministic() ? std::span<const float>() : std::span<const float>(draft.probs[i]);
    const double px = p[x];
    const double qx = q.empty() ? 1.0 : q[x];
    assert(qx > 0.0 && "a drafter proposed a token its own distribution gives no mass");
    // Accept with probability min(1, p/q); no random number when p >= q.
    if (px >= qx || rng.uniform() * qx < px) continue;
    return {i, sample_residual(p, q, x, rng)};
  }
  return {g, sample(row(target_probs, g, n_vocab), rng)};
}

int32_t Verifier::sample_residual(std::span<const float> p, std::span<const float> q,
                                  int32_t drafted, Rng& rng) {
  residual_.resize(p.size());
  double mass = 0.0;
  if (q.empty()) {  // q one-hot on the drafted token: p without it
    std::copy(p.begin(), p.end(), residual_.begin());
    residual_[drafted] = 0.0f;
    mass = 1.0 - p[drafted];
  } else {
    for (size_t v = 0; v < p.size(); ++v) {
      const float r = std::max(0.0f, p[v] - q[v]);
      residual_[v] = r;
      mass += r;
    }
  }
  if (mass <= kResidualFloor) return sample(p, rng);
  return sample(residual_, rng);
}

}  // namespace specula

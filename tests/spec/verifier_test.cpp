// Verifier behaviour on hand-made rows: greedy matching, the deterministic
// residual, the bonus row, and the float guard when p equals q.
#include "speculative/verifier.h"

#include <gtest/gtest.h>

#include <vector>

namespace specula {
namespace {

DraftProposal deterministic(std::vector<int32_t> tokens) {
  DraftProposal d;
  d.tokens = std::move(tokens);
  return d;
}

TEST(Verifier, GreedyAcceptsWhileTheDraftIsTheArgmax) {
  // Three rows over 4 ids; argmaxes 2, 0 (tie with 3: lowest id), 1.
  const std::vector<float> rows = {0.1f, 0.2f, 0.6f, 0.1f,  //
                                   0.4f, 0.1f, 0.1f, 0.4f,  //
                                   0.2f, 0.5f, 0.2f, 0.1f};
  Verifier verifier;
  Rng rng(1);
  VerifyResult r = verifier.verify(deterministic({2, 0}), rows, 4, true, rng);
  EXPECT_EQ(r.n_accepted, 2);
  EXPECT_EQ(r.next_token, 1);  // bonus: argmax of the last row
  r = verifier.verify(deterministic({2, 3}), rows, 4, true, rng);
  EXPECT_EQ(r.n_accepted, 1);
  EXPECT_EQ(r.next_token, 0);  // the first unmatched row's argmax, tie to the lower id
  r = verifier.verify(deterministic({1, 0}), rows, 4, true, rng);
  EXPECT_EQ(r.n_accepted, 0);
  EXPECT_EQ(r.next_token, 2);
  r = verifier.verify(deterministic({}), rows, 4, true, rng);
  EXPECT_EQ(r.n_accepted, 0);
  EXPECT_EQ(r.next_token, 2);
  // Greedy consumes no randomness.
  Rng fresh(1);
  EXPECT_EQ(rng.next_u64(), fresh.next_u64());
}

TEST(Verifier, DeterministicDraftAcceptsWithProbabilityPAndNeverRedrawsIt) {
  const std::vector<float> rows = {0.5f, 0.3f, 0.2f,  //
                                   1.0f, 0.0f, 0.0f};
  Verifier verifier;
  Rng rng(9);
  int accepted = 0;
  std::vector<int> corrections(3, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const VerifyResult r = verifier.verify(deterministic({0}), rows, 3, false, rng);
    if (r.n_accepted == 1) {
      ++accepted;
      EXPECT_EQ(r.next_token, 0);  // the bonus row is one-hot on 0
    } else {
      ++corrections[r.next_token];
    }
  }
  EXPECT_EQ(corrections[0], 0);  // the residual excludes the drafted token
  EXPECT_NEAR(accepted / double(n), 0.5, 0.02);
  EXPECT_NEAR(corrections[1] / double(n - accepted), 0.6, 0.03);
}

TEST(Verifier, TokenTheTargetForbidsIsAlwaysRejected) {
  DraftProposal d;
  d.tokens = {1};
  d.probs = {{0.5f, 0.5f, 0.0f}};
  const std::vector<float> rows = {0.3f, 0.0f, 0.7f,  //
                                   0.0f, 0.0f, 1.0f};
  Verifier verifier;
  Rng rng(2);
  for (int i = 0; i < 1000; ++i) {
    const VerifyResult r = verifier.verify(d, rows, 3, false, rng);
    ASSERT_EQ(r.n_accepted, 0);
    // Residual max(0, p - q) = {0, 0, 0.7}: only id 2.
    ASSERT_EQ(r.next_token, 2);
  }
}

TEST(Verifier, IdenticalDistributionsAreAlwaysAccepted) {
  DraftProposal d;
  d.tokens = {0, 2};
  d.probs = {{0.2f, 0.3f, 0.5f}, {0.6f, 0.1f, 0.3f}};
  const std::vector<float> rows = {0.2f, 0.3f, 0.5f, 0.6f, 0.1f, 0.3f, 0.0f, 1.0f, 0.0f};
  Verifier verifier;
  Rng rng(3);
  for (int i = 0; i < 100; ++i) {
    const VerifyResult r = verifier.verify(d, rows, 3, false, rng);
    ASSERT_EQ(r.n_accepted, 2);
    ASSERT_EQ(r.next_token, 1);
  }
}

TEST(Verifier, SameRngStateSameResult) {
  DraftProposal d;
  d.tokens = {0, 1, 2};
  d.probs = {{0.6f, 0.2f, 0.2f}, {0.1f, 0.8f, 0.1f}, {0.3f, 0.3f, 0.4f}};
  const std::vector<float> rows = {0.3f, 0.3f, 0.4f, 0.5f, 0.2f, 0.3f,
                                   0.2f, 0.2f, 0.6f, 0.1f, 0.1f, 0.8f};
  Verifier a, b;
  Rng ra(77), rb(77);
  for (int i = 0; i < 1000; ++i) {
    const VerifyResult x = a.verify(d, rows, 3, false, ra);
    const VerifyResult y = b.verify(d, rows, 3, false, rb);
    ASSERT_EQ(x.n_accepted, y.n_accepted);
    ASSERT_EQ(x.next_token, y.next_token);
  }
}

}  // namespace
}  // namespace specula

// The residual norm(max(0, p - q)) when p and q are close (issue 15): a
// verifier that falls back to sampling from p when the residual's mass is
// small (a floor raised from float noise, 1e-9, to 1e-2 passed every other
// test) corrects a rejection towards tokens the draft already over-proposed.
// Here p and q are 0.003 apart in total variation: every correction must
// land where p > q, and the corrections must follow the residual's shape.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "speculative/verifier.h"

namespace specula {
namespace {

constexpr int32_t kVocab = 6;

// q: the draft; p: the target, moving 0.003 of mass from tokens 0 and 1
// (where q > p) to tokens 4 (0.002) and 5 (0.001).
constexpr std::array<float, kVocab> kQ = {0.500f, 0.200f, 0.100f, 0.100f, 0.050f, 0.050f};
constexpr std::array<float, kVocab> kP = {0.498f, 0.199f, 0.100f, 0.100f, 0.052f, 0.051f};

TEST(VerifierResidual, CorrectionsLandOnlyWhereTheTargetExceedsTheDraft) {
  Verifier verifier;
  Rng rng(42);
  // Target rows: p for the drafted position, and p again for the bonus.
  std::vector<float> target(kP.begin(), kP.end());
  target.insert(target.end(), kP.begin(), kP.end());

  std::array<int64_t, kVocab> corrections{};
  int64_t rejections = 0;
  const int64_t trials = 400000;
  for (int64_t t = 0; t < trials; ++t) {
    // Draft token 0 (q 0.500 > p 0.498): rejected with probability 0.004.
    DraftProposal draft;
    draft.tokens = {0};
    draft.probs = {std::vector<float>(kQ.begin(), kQ.end())};
    const VerifyResult result = verifier.verify(draft, target, kVocab, /*greedy=*/false, rng);
    if (result.n_accepted == 1) continue;
    ++rejections;
    ASSERT_GE(result.next_token, 0);
    ASSERT_LT(result.next_token, kVocab);
    ++corrections[static_cast<size_t>(result.next_token)];
  }
  // 400k x 0.004 = 1600 expected rejections.
  ASSERT_GT(rejections, 1300);
  ASSERT_LT(rejections, 1900);
  for (int32_t v = 0; v < 4; ++v) {
    EXPECT_EQ(corrections[static_cast<size_t>(v)], 0)
        << "a correction landed on token " << v << ", where p <= q";
  }
  // The residual is (0.002, 0.001) on tokens 4 and 5: two thirds to token 4.
  const double share_4 = static_cast<double>(corrections[4]) / static_cast<double>(rejections);
  EXPECT_NEAR(share_4, 2.0 / 3.0, 0.05);
}

}  // namespace
}  // namespace specula

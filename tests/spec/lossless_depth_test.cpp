// Losslessness in depth and breadth (issue 15): g = 4 drafts (so the fourth
// draft position, its residual and the bonus after four accepted tokens all
// occur) at temperatures other than 1 with top-k, top-p and min-p, for every
// drafter kind: model, lookup, suffix and self. Generations of 5 tokens
// from a target of vocabulary 4 are tested against the exact joint over
// those 5 tokens (4^5 cells, top-k 3 leaves at most 3^5 of them possible).
// Each fit here was shown to reject a wrong correction rule once when it
// was written (VerifyRule::kResampleFromTarget); the last test keeps one such
// negative control at depth 4.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "drafters/model_drafter.h"
#include "drafters/prompt_lookup_drafter.h"
#include "drafters/self_drafter.h"
#include "drafters/suffix_cache_drafter.h"
#include "spec/chi_square.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "spec/sampling_transform.h"
#include "speculative/generator.h"

namespace specula {
namespace {

using testing::transform;

constexpr int kSamples = 30000;
constexpr double kRejectBelow = 1e-4;
constexpr int32_t kNewTokens = 5;
constexpr int32_t kDraftMax = 4;

RandomModelOptions vocab4_model() {
  RandomModelOptions o;
  o.n_vocab = 4;
  o.n_embd = 16;
  o.n_head = 2;
  o.n_ff = 32;
  o.n_layer = 3;
  o.n_ctx = 32;
  o.seed = 77;
  return o;
}

class LosslessDepth : public testing::SuiteModelPair<LosslessDepth, vocab4_model> {
 protected:
  // kSamples generations of kNewTokens with g = 4; checks the fit and that
  // drafts were both kept and rejected, and that some step drafted 4.
  static void expect_fit(Drafter& drafter, const std::vector<int32_t>& prompt,
                         const SamplingParams& params, uint64_t seed_base,
                         VerifyRule rule = VerifyRule::kExact) {
    const testing::FitResult r = testing::speculative_fit(
        target(), drafter, prompt, params, kDraftMax, kNewTokens, kSamples, rule, seed_base);
    std::fprintf(stderr, "g = 4 fit: p = %.3g, acceptance %.3f, %.2f drafted per generation\n",
                 r.fit.p_value, static_cast<double>(r.accepted) / static_cast<double>(r.drafted),
                 static_cast<double>(r.drafted) / kSamples);
    if (rule == VerifyRule::kExact) {
      EXPECT_GT(r.fit.p_value, kRejectBelow) << r.fit.detail;
    } else {
      EXPECT_LT(r.fit.p_value, kRejectBelow) << r.fit.detail;
    }
    EXPECT_GT(r.accepted, r.drafted / 20) << r.drafted;
    EXPECT_LT(r.accepted, r.drafted * 19 / 20) << r.drafted;
    // More drafted than one token per generation: deep drafts occurred.
    EXPECT_GT(r.drafted, 2 * static_cast<int64_t>(kSamples)) << r.drafted;
  }
};

TEST_F(LosslessDepth, ModelDrafterAtTemperature07WithTopK) {
  ModelDrafter drafter(draft(), 8, nullptr);
  expect_fit(drafter, {1}, transform(0.7f, 3, 1.0f, 0.0f), 101);
}

TEST_F(LosslessDepth, LookupDrafterAtTemperature13WithTopPAndMinP) {
  PromptLookupDrafter drafter;
  // "1 2 3 0 1": its tail matches the start, and 4 tokens follow the match.
  expect_fit(drafter, {1, 2, 3, 0, 1}, transform(1.3f, 0, 0.9f, 0.05f), 202);
}

TEST_F(LosslessDepth, SuffixDrafterAtTemperature12WithEveryFilter) {
  SuffixCache cache;
  SuffixProposalOptions options;
  options.min_probability = 0.0f;
  SuffixCacheDrafter drafter(cache, options);
  expect_fit(drafter, {3, 2}, transform(1.2f, 3, 0.97f, 0.02f), 303);
}

// self:1 (self:2 agrees with this target ~88% of the time, too often for
// the fit to see a wrong correction rule).
TEST_F(LosslessDepth, SelfDrafterAtTemperature15WithMinPAndTopK) {
  SelfDrafter drafter(target(), 1, 8, nullptr);
  expect_fit(drafter, {0, 3}, transform(1.5f, 3, 1.0f, 0.15f), 404);
}

// The negative control at depth 4: the same kind of fit rejects a
// correction drawn from p instead of the residual.
TEST_F(LosslessDepth, CorrectingFromPIsRejectedAtDepthFour) {
  ModelDrafter drafter(draft(), 8, nullptr);
  expect_fit(drafter, {1}, transform(0.7f, 3, 1.0f, 0.0f), 505, VerifyRule::kResampleFromTarget);
}

}  // namespace
}  // namespace specula

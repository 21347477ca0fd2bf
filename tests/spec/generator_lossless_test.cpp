// Losslessness end to end: real (tiny, random) transformer models through
// the Generator and ModelDrafter. The target's exact joint distribution over
// the next 3 tokens (after the sampling transform) is enumerated with fresh
// forwards; >= 100k speculative generations of 3 tokens with g = 2 (so the
// second draft position, the residual and the bonus all occur) must fit it
// by chi-square, for several transforms and both drafter kinds; a wrong rule
// must not.
#include <gtest/gtest.h>

#include <vector>

#include "drafters/model_drafter.h"
#include "spec/chi_square.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "spec/sampling_transform.h"
#include "speculative/generator.h"

namespace specula {
namespace {

using testing::transform;

constexpr int kSamples = 100000;
constexpr double kRejectBelow = 1e-4;
constexpr int32_t kNewTokens = 3;
// One prompt token: no prefill pass, which keeps 100k generations cheap.
const std::vector<int32_t> kPrompt = {2};

class GeneratorLossless
    : public testing::SuiteModelPair<GeneratorLossless, testing::tiny_vocab_model> {
 protected:
  enum class DraftKind { kModel, kRepeatLast };

  // Runs kSamples generations and tests them against the exact joint.
  static testing::GoodnessOfFit fit(const SamplingParams& params, int32_t g, DraftKind kind,
                                    VerifyRule rule, GenerationStats* total = nullptr) {
    const int32_t n_ctx = static_cast<int32_t>(kPrompt.size()) + kNewTokens;
    ModelDrafter model_drafter(draft(), n_ctx, nullptr);
    testing::RepeatLastDrafter repeat_drafter;
    Drafter& drafter = kind == DraftKind::kModel ? static_cast<Drafter&>(model_drafter)
                                                 : static_cast<Drafter&>(repeat_drafter);
    const testing::FitResult result =
        testing::speculative_fit(target(), drafter, kPrompt, params, g, kNewTokens, kSamples, rule);
    if (total) {
      total->drafted_tokens += result.drafted;
      total->accepted_tokens += result.accepted;
    }
    return result.fit;
  }
};

TEST_F(GeneratorLossless, TemperatureOne) {
  GenerationStats total;
  const auto result =
      fit(transform(1.0f, 0, 1.0f, 0.0f), 2, DraftKind::kModel, VerifyRule::kExact, &total);
  EXPECT_GT(result.p_value, kRejectBelow) << result.detail;
  // The test only means something if drafts were both kept and rejected.
  EXPECT_GT(total.accepted_tokens, total.drafted_tokens / 10);
  EXPECT_LT(total.accepted_tokens, total.drafted_tokens * 9 / 10);
}

TEST_F(GeneratorLossless, TemperatureWithTopK) {
  const auto result = fit(transform(0.7f, 3, 1.0f, 0.0f), 2, DraftKind::kModel, VerifyRule::kExact);
  EXPECT_GT(result.p_value, kRejectBelow) << result.detail;
}

TEST_F(GeneratorLossless, TopP) {
  const auto result =
      fit(transform(1.5f, 0, 0.85f, 0.0f), 2, DraftKind::kModel, VerifyRule::kExact);
  EXPECT_GT(result.p_value, kRejectBelow) << result.detail;
}

TEST_F(GeneratorLossless, MinP) {
  const auto result = fit(transform(1.3f, 0, 1.0f, 0.2f), 2, DraftKind::kModel, VerifyRule::kExact);
  EXPECT_GT(result.p_value, kRejectBelow) << result.detail;
}

TEST_F(GeneratorLossless, DeterministicDrafter) {
  const auto result =
      fit(transform(1.0f, 0, 1.0f, 0.0f), 2, DraftKind::kRepeatLast, VerifyRule::kExact);
  EXPECT_GT(result.p_value, kRejectBelow) << result.detail;
}

// Negative controls: the same test must reject deliberately wrong rules.
TEST_F(GeneratorLossless, AcceptingEveryDraftTokenIsRejected) {
  const auto result =
      fit(transform(1.0f, 0, 1.0f, 0.0f), 2, DraftKind::kModel, VerifyRule::kAcceptAll);
  EXPECT_LT(result.p_value, kRejectBelow) << result.detail;
}

TEST_F(GeneratorLossless, CorrectingFromPIsRejected) {
  const auto result =
      fit(transform(1.0f, 0, 1.0f, 0.0f), 2, DraftKind::kModel, VerifyRule::kResampleFromTarget);
  EXPECT_LT(result.p_value, kRejectBelow) << result.detail;
}

TEST_F(GeneratorLossless, CorrectingFromPIsRejectedForADeterministicDrafter) {
  const auto result = fit(transform(0.7f, 3, 1.0f, 0.0f), 2, DraftKind::kRepeatLast,
                          VerifyRule::kResampleFromTarget);
  EXPECT_LT(result.p_value, kRejectBelow) << result.detail;
}

}  // namespace
}  // namespace specula

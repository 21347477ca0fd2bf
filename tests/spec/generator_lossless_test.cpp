// Losslessness end to end: real (tiny, random) transformer models through
// the Generator and ModelDrafter. The target's exact joint distribution over
// the next 3 tokens (after the sampling transform) is enumerated with fresh
// forwards; >= 100k speculative generations of 3 tokens with g = 2 (so the
// second draft position, the residual and the bonus all occur) must fit it
// by chi-square, for several transforms and both drafter kinds; a wrong rule
// must not.
#include <gtest/gtest.h>

#include <vector>

#include "spec/chi_square.h"
#include "spec/generator.h"
#include "spec/model_drafter.h"
#include "spec/model_files.h"

namespace specula {
namespace {

constexpr int kSamples = 100000;
constexpr double kRejectBelow = 1e-4;
constexpr int32_t kNewTokens = 3;
// One prompt token: no prefill pass, which keeps 100k generations cheap.
const std::vector<int32_t> kPrompt = {2};

RandomModelOptions tiny_vocab_model() {
  RandomModelOptions options;
  options.n_vocab = 6;
  options.n_embd = 16;
  options.n_head = 2;
  options.n_ff = 32;
  options.n_layer = 2;
  options.n_ctx = 32;
  options.seed = 5;
  return options;
}

class GeneratorLossless : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    models_ = new testing::ModelPair(
        testing::make_target_and_derived_draft(*dir_, "lossless", tiny_vocab_model()));
  }
  static void TearDownTestSuite() {
    delete models_;
    delete dir_;
  }
  static const Model& target() { return *models_->target; }
  static const Model& draft() { return *models_->draft; }

  // The processed next-token distribution after `sequence`, from a fresh
  // forward over the whole sequence (independent of any generator cache).
  static std::vector<float> next_probs(const std::vector<int32_t>& sequence,
                                       const SamplingParams& params) {
    KvCache cache = target().make_cache(static_cast<int32_t>(sequence.size()));
    std::vector<BatchRow> rows;
    for (size_t i = 0; i < sequence.size(); ++i) {
      rows.push_back({0, static_cast<int32_t>(i), sequence[i], i + 1 == sequence.size()});
    }
    std::vector<float> logits, probs;
    target().forward(rows, cache, logits, nullptr);
    logits_to_probs(logits, params, probs);
    return probs;
  }

  // P(t_1..t_n | prompt) for every n-tuple, cell = base-V number of the tuple.
  static std::vector<double> exact_joint(const SamplingParams& params, int32_t n) {
    const int32_t vocab = target().config().n_vocab;
    std::vector<double> joint = {1.0};
    std::vector<std::vector<int32_t>> prefixes = {kPrompt};
    for (int32_t step = 0; step < n; ++step) {
      std::vector<double> next_joint;
      std::vector<std::vector<int32_t>> next_prefixes;
      for (size_t cell = 0; cell < joint.size(); ++cell) {
        const std::vector<float> probs = next_probs(prefixes[cell], params);
        for (int32_t token = 0; token < vocab; ++token) {
          next_joint.push_back(joint[cell] * probs[token]);
          next_prefixes.push_back(prefixes[cell]);
          next_prefixes.back().push_back(token);
        }
      }
      joint = std::move(next_joint);
      prefixes = std::move(next_prefixes);
    }
    return joint;
  }

  enum class DraftKind { kModel, kRepeatLast };

  // Runs kSamples generations and tests them against the exact joint.
  static testing::GoodnessOfFit fit(const SamplingParams& params, int32_t g, DraftKind kind,
                                    VerifyRule rule, GenerationStats* total = nullptr);

  static testing::TempDir* dir_;
  static testing::ModelPair* models_;
};
testing::TempDir* GeneratorLossless::dir_ = nullptr;
testing::ModelPair* GeneratorLossless::models_ = nullptr;

// A deterministic drafter (q one-hot): proposes the last token g times, the
// way a trivial n-gram drafter would.
class RepeatLastDrafter : public Drafter {
 public:
  std::string name() const override { return "repeat-last"; }
  void begin(std::span<const int32_t>) override {}
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams&, Rng&,
               DraftProposal& out) override {
    out.clear();
    out.tokens.assign(g, context.back());
  }
  void accept(std::span<const int32_t>, int32_t) override {}
};

testing::GoodnessOfFit GeneratorLossless::fit(const SamplingParams& params, int32_t g,
                                              DraftKind kind, VerifyRule rule,
                                              GenerationStats* total) {
  const int32_t vocab = target().config().n_vocab;
  const std::vector<double> expected = exact_joint(params, kNewTokens);
  std::vector<int64_t> counts(expected.size(), 0);
  const int32_t n_ctx = static_cast<int32_t>(kPrompt.size()) + kNewTokens;
  Generator generator(target(), n_ctx, nullptr);
  ModelDrafter model_drafter(draft(), n_ctx, nullptr);
  RepeatLastDrafter repeat_drafter;
  Drafter* drafter = kind == DraftKind::kModel ? static_cast<Drafter*>(&model_drafter)
                                               : static_cast<Drafter*>(&repeat_drafter);
  GeneratorOptions options;
  options.sampling = params;
  options.max_new_tokens = kNewTokens;
  options.draft_max = g;
  options.verify_rule = rule;
  for (int i = 0; i < kSamples; ++i) {
    options.sampling.seed = 1000003ULL * i + 17;
    const GenerationOutput out = generator.generate(kPrompt, drafter, options);
    EXPECT_EQ(out.tokens.size(), static_cast<size_t>(kNewTokens));
    int32_t cell = 0;
    for (int32_t token : out.tokens) cell = cell * vocab + token;
    ++counts[cell];
    if (total) {
      total->drafted_tokens += out.stats.drafted_tokens;
      total->accepted_tokens += out.stats.accepted_tokens;
      total->target_passes += out.stats.target_passes;
    }
  }
  return testing::chi_square_test(counts, expected);
}

SamplingParams transform(float temperature, int32_t top_k, float top_p, float min_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

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

// Every draft-length policy and the drafter bandit change only what is
// drafted, never what is emitted: greedy output equals plain greedy output
// token for token, and at temperature > 0 the samples fit the target's exact
// joint distribution (chi-square, as in generator_lossless_test.cpp), for
// each policy, for a policy that chooses at random (so every g and stop
// threshold occurs), and for the bandit over several drafters. A wrong rule
// is still caught under the random policy (the test keeps its power).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "drafters/model_drafter.h"
#include "drafters/prompt_lookup_drafter.h"
#include "drafters/suffix_cache_drafter.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "spec/chi_square.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "speculative/generator.h"

namespace specula {
namespace {

constexpr int kSamples = 100000;
constexpr double kRejectBelow = 1e-4;
constexpr int32_t kNewTokens = 3;
const std::vector<int32_t> kPrompt = {2};

// Chooses g uniformly in 0..limit and a stop threshold uniformly in [0, 1),
// from its own seeded stream: every decision a policy could make occurs.
class RandomPolicy : public DraftLengthPolicy {
 public:
  RandomPolicy() : DraftLengthPolicy(PolicyOptions{.kind = PolicyKind::kFixed}) {}
  PolicyKind kind() const override { return PolicyKind::kFixed; }
  StepPlan plan(int32_t /*slot*/, int32_t limit) const override {
    if (limit <= 0) return {};
    return {static_cast<int32_t>(rng_.next_u64() % static_cast<uint64_t>(limit + 1)),
            static_cast<float>(rng_.uniform()), false};
  }

 private:
  mutable Rng rng_{12345};
};

SamplingParams temperature_one() {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

class PolicyExactness : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    tiny_ = new testing::ModelPair(
        testing::make_target_and_derived_draft(*dir_, "tiny", testing::tiny_vocab_model()));
    small_ = new testing::ModelPair(
        testing::make_target_and_derived_draft(*dir_, "small", testing::small_model()));
  }
  static void TearDownTestSuite() {
    delete tiny_;
    delete small_;
    delete dir_;
  }

  struct Fit {
    testing::GoodnessOfFit fit;
    GenerationStats total;  // counts summed over the samples
  };

  // kSamples generations of kNewTokens with up to 2 drafted tokens per step.
  static Fit fit(const Speculation& speculation, const SamplingParams& params,
                 VerifyRule rule = VerifyRule::kExact) {
    const Model& target = *tiny_->target;
    const int32_t vocab = target.config().n_vocab;
    const std::vector<double> expected = testing::exact_joint(target, kPrompt, params, kNewTokens);
    std::vector<int64_t> counts(expected.size(), 0);
    Generator generator(target, static_cast<int32_t>(kPrompt.size()) + kNewTokens, nullptr);
    GeneratorOptions options;
    options.sampling = params;
    options.max_new_tokens = kNewTokens;
    options.draft_max = 2;
    const std::unique_ptr<Verifier> verifier = make_verifier(rule);
    options.verifier = verifier.get();
    Fit result;
    result.total.draft_length_steps.assign(3, 0);
    for (int i = 0; i < kSamples; ++i) {
      options.sampling.seed = 1000003ULL * static_cast<uint64_t>(i) + 17;
      const GenerationOutput out = generator.generate(kPrompt, speculation, options);
      EXPECT_EQ(out.tokens.size(), static_cast<size_t>(kNewTokens));
      int32_t cell = 0;
      for (int32_t token : out.tokens) cell = cell * vocab + token;
      ++counts[static_cast<size_t>(cell)];
      result.total.drafted_tokens += out.stats.drafted_tokens;
      result.total.accepted_tokens += out.stats.accepted_tokens;
      result.total.early_stops += out.stats.early_stops;
      for (size_t g = 0; g < out.stats.draft_length_steps.size(); ++g) {
        result.total.draft_length_steps[g] += out.stats.draft_length_steps[g];
      }
    }
    result.fit = testing::chi_square_test(counts, expected);
    return result;
  }

  // Greedy speculative output equals plain greedy output over several
  // prompts, with the policy (and bandit) persisting across the prompts.
  static void expect_greedy_identity(const Speculation& speculation, int64_t* drafted_out) {
    const Model& target = *small_->target;
    Generator generator(target, 96, nullptr);
    int64_t drafted = 0, accepted = 0;
    for (uint64_t seed = 0; seed < 12; ++seed) {
      Rng rng(100 + seed);
      std::vector<int32_t> prompt;
      for (uint64_t i = 0; i < 1 + seed % 6; ++i) {
        prompt.push_back(static_cast<int32_t>(rng.next_u64() % 32));
      }
      // A repeated stretch gives prompt lookup and the suffix cache matches.
      prompt.insert(prompt.end(), prompt.begin(), prompt.end());
      const GenerationOutput plain =
          generator.generate(prompt, nullptr, testing::generation_options(0.0f, 40, 0));
      for (int32_t g : {1, 3, 6}) {
        const GenerationOutput spec =
            generator.generate(prompt, speculation, testing::generation_options(0.0f, 40, g));
        EXPECT_EQ(spec.tokens, plain.tokens) << "prompt " << seed << ", draft_max " << g;
        drafted += spec.stats.drafted_tokens;
        accepted += spec.stats.accepted_tokens;
      }
    }
    EXPECT_GT(drafted, 0);
    if (drafted_out) *drafted_out = drafted;
  }

  static testing::TempDir* dir_;
  static testing::ModelPair* tiny_;
  static testing::ModelPair* small_;
};
testing::TempDir* PolicyExactness::dir_ = nullptr;
testing::ModelPair* PolicyExactness::tiny_ = nullptr;
testing::ModelPair* PolicyExactness::small_ = nullptr;

TEST_F(PolicyExactness, EveryPolicyIsLosslessWithADraftModel) {
  for (PolicyKind kind : {PolicyKind::kHeuristic, PolicyKind::kConfidence, PolicyKind::kAdaptive}) {
    SCOPED_TRACE(std::string(policy_name(kind)));
    PolicyOptions o;
    o.kind = kind;
    o.confidence_threshold = 0.35f;
    const std::unique_ptr<DraftLengthPolicy> policy = make_policy(o);
    ModelDrafter drafter(*tiny_->draft, 4, nullptr);
    Speculation speculation;
    speculation.drafters = {&drafter};
    speculation.policy = policy.get();
    const Fit result = fit(speculation, temperature_one());
    EXPECT_GT(result.fit.p_value, kRejectBelow) << result.fit.detail;
    EXPECT_GT(result.total.drafted_tokens, 0);
    if (kind == PolicyKind::kConfidence) {
      EXPECT_GT(result.total.early_stops, 0);
    }
  }
}

TEST_F(PolicyExactness, RandomDecisionsAreLosslessAndAWrongRuleIsStillCaught) {
  RandomPolicy policy;
  ModelDrafter drafter(*tiny_->draft, 4, nullptr);
  Speculation speculation;
  speculation.drafters = {&drafter};
  speculation.policy = &policy;
  SamplingParams params = temperature_one();
  params.temperature = 0.8f;
  params.top_k = 4;
  const Fit exact = fit(speculation, params);
  EXPECT_GT(exact.fit.p_value, kRejectBelow) << exact.fit.detail;
  // Every choice of g occurred, and drafts stopped early.
  for (int64_t n : exact.total.draft_length_steps) EXPECT_GT(n, 1000);
  EXPECT_GT(exact.total.early_stops, 1000);
  const Fit wrong = fit(speculation, params, VerifyRule::kResampleFromTarget);
  EXPECT_LT(wrong.fit.p_value, kRejectBelow) << wrong.fit.detail;
}

// The bandit's rewards come from an injected clock (each arm's step costs a
// fixed time per drafted position), not from wall time: its choices, and so
// this test's statistic, are the same on every run and every machine.
BanditOptions bandit_with_fake_clock() {
  BanditOptions o;
  o.step_seconds = [](int32_t arm, int32_t emitted, double /*measured*/) {
    return 1e-3 * (1 + arm) + 1e-4 * emitted;
  };
  return o;
}

TEST_F(PolicyExactness, TheBanditOverSeveralDraftersIsLossless) {
  ModelDrafter model_drafter(*tiny_->draft, 4, nullptr);
  testing::RepeatLastDrafter repeat_drafter;
  PromptLookupDrafter lookup_drafter;
  SuffixCache suffix_cache;
  SuffixCacheDrafter suffix_drafter(suffix_cache);
  RandomPolicy policy;  // every g, so that each drafter drafts at every depth
  DrafterBandit bandit(4, bandit_with_fake_clock());
  Speculation speculation;
  speculation.drafters = {&model_drafter, &repeat_drafter, &lookup_drafter, &suffix_drafter};
  speculation.policy = &policy;
  speculation.bandit = &bandit;
  const Fit result = fit(speculation, temperature_one());
  EXPECT_GT(result.fit.p_value, kRejectBelow) << result.fit.detail;
  for (int32_t arm = 0; arm < 4; ++arm) EXPECT_GT(bandit.pulls(arm), 100) << arm;
  std::fprintf(stderr, "bandit losslessness: chi-square %.6f, p = %.6g\n", result.fit.statistic,
               result.fit.p_value);
}

// With the injected clock, two runs from the same state choose the same
// drafters and emit the same tokens (the test above is reproducible).
TEST_F(PolicyExactness, TheBanditWithAnInjectedClockReplaysExactly) {
  auto run = [] {
    ModelDrafter model_drafter(*tiny_->draft, 4, nullptr);
    testing::RepeatLastDrafter repeat_drafter;
    PromptLookupDrafter lookup_drafter;
    RandomPolicy policy;
    DrafterBandit bandit(3, bandit_with_fake_clock());
    Speculation speculation;
    speculation.drafters = {&model_drafter, &repeat_drafter, &lookup_drafter};
    speculation.policy = &policy;
    speculation.bandit = &bandit;
    Generator generator(*tiny_->target, 16, nullptr);
    std::vector<int32_t> tokens;
    std::vector<int64_t> pulls;
    for (uint64_t seed = 0; seed < 300; ++seed) {
      const GenerationOutput out = generator.generate(
          kPrompt, speculation, testing::generation_options(1.0f, kNewTokens, 2, seed));
      tokens.insert(tokens.end(), out.tokens.begin(), out.tokens.end());
    }
    for (int32_t arm = 0; arm < 3; ++arm) pulls.push_back(bandit.pulls(arm));
    return std::make_pair(tokens, pulls);
  };
  const auto first = run();
  const auto second = run();
  EXPECT_EQ(first.first, second.first);
  EXPECT_EQ(first.second, second.second);
  // The clock decided: arm 0 costs least per step, so it is pulled most.
  EXPECT_GT(first.second[0], first.second[2]) << first.second[1];
}

TEST_F(PolicyExactness, GreedyOutputIsPlainGreedyForEveryPolicy) {
  for (PolicyKind kind : {PolicyKind::kFixed, PolicyKind::kHeuristic, PolicyKind::kConfidence,
                          PolicyKind::kAdaptive}) {
    SCOPED_TRACE(std::string(policy_name(kind)));
    PolicyOptions o;
    o.kind = kind;
    const std::unique_ptr<DraftLengthPolicy> policy = make_policy(o);
    ModelDrafter drafter(*small_->draft, 96, nullptr);
    Speculation speculation;
    speculation.drafters = {&drafter};
    speculation.policy = policy.get();
    expect_greedy_identity(speculation, nullptr);
  }
  RandomPolicy random_policy;
  ModelDrafter drafter(*small_->draft, 96, nullptr);
  Speculation speculation;
  speculation.drafters = {&drafter};
  speculation.policy = &random_policy;
  expect_greedy_identity(speculation, nullptr);
}

TEST_F(PolicyExactness, GreedyOutputIsPlainGreedyWithTheBandit) {
  ModelDrafter model_drafter(*small_->draft, 96, nullptr);
  testing::RepeatLastDrafter repeat_drafter;
  PromptLookupDrafter lookup_drafter;
  SuffixCache suffix_cache;
  SuffixCacheDrafter suffix_drafter(suffix_cache);
  for (PolicyKind kind : {PolicyKind::kFixed, PolicyKind::kAdaptive}) {
    PolicyOptions o;
    o.kind = kind;
    const std::unique_ptr<DraftLengthPolicy> policy = make_policy(o);
    DrafterBandit bandit(4);
    Speculation speculation;
    speculation.drafters = {&model_drafter, &repeat_drafter, &lookup_drafter, &suffix_drafter};
    speculation.policy = policy.get();
    speculation.bandit = &bandit;
    expect_greedy_identity(speculation, nullptr);
    int64_t pulls = 0;
    for (int32_t arm = 0; arm < 4; ++arm) pulls += bandit.pulls(arm);
    EXPECT_GT(pulls, 0);
  }
}

TEST_F(PolicyExactness, StatisticsRecordTheDecisions) {
  const Model& target = *small_->target;
  Generator generator(target, 128, nullptr);
  ModelDrafter model_drafter(*small_->draft, 128, nullptr);
  testing::RepeatLastDrafter repeat_drafter;
  RandomPolicy policy;
  DrafterBandit bandit(2);
  Speculation speculation;
  speculation.drafters = {&model_drafter, &repeat_drafter};
  speculation.policy = &policy;
  speculation.bandit = &bandit;
  const std::vector<int32_t> prompt = {1, 2, 3, 4};
  const GenerationOutput out =
      generator.generate(prompt, speculation, testing::generation_options(1.0f, 60, 5, 3));
  const GenerationStats& s = out.stats;
  ASSERT_EQ(s.draft_length_steps.size(), 6u);
  EXPECT_EQ(std::accumulate(s.draft_length_steps.begin(), s.draft_length_steps.end(), int64_t{0}),
            s.target_passes);
  EXPECT_GT(s.draft_length_steps[0], 0);  // the random policy chose plain steps too
  ASSERT_EQ(s.drafters.size(), 2u);
  int64_t drafted = 0, accepted = 0, steps = 0;
  for (const DrafterUsage& d : s.drafters) {
    drafted += d.drafted_tokens;
    accepted += d.accepted_tokens;
    steps += d.steps;
    EXPECT_EQ(std::accumulate(d.drafted_at.begin(), d.drafted_at.end(), int64_t{0}),
              d.drafted_tokens);
    EXPECT_EQ(std::accumulate(d.accepted_at.begin(), d.accepted_at.end(), int64_t{0}),
              d.accepted_tokens);
  }
  EXPECT_EQ(drafted, s.drafted_tokens);
  EXPECT_EQ(accepted, s.accepted_tokens);
  EXPECT_EQ(steps, s.target_passes - s.draft_length_steps[0]);
  EXPECT_EQ(s.drafters[1].name, "repeat-last");
  EXPECT_GT(s.plain_tokens_per_second_estimate, 0.0);
  EXPECT_GT(s.estimated_speedup, 0.0);
  EXPECT_GT(s.realised_speedup, 0.0);

  const nlohmann::json json = nlohmann::json::parse(to_json(s));
  EXPECT_EQ(json["draft_length_steps"].get<std::vector<int64_t>>(), s.draft_length_steps);
  ASSERT_EQ(json["drafters"].size(), 2u);
  EXPECT_EQ(json["drafters"][0]["name"], s.drafters[0].name);
  EXPECT_EQ(json["drafters"][1]["accepted_tokens"], s.drafters[1].accepted_tokens);
  EXPECT_EQ(json["drafters"][0]["acceptance_at"].size(), 5u);
  for (const char* key :
       {"policy", "probe_steps", "early_stops", "mean_stop_confidence",
        "plain_tokens_per_second_estimate", "estimated_speedup", "realised_speedup"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

}  // namespace
}  // namespace specula

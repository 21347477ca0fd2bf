// The decoding steps one by one (generation_step.h), with scripted drafters
// and policies: planning within the limit and among the bandit's
// candidates, drafting with its id check, verification (also of two
// sequences sharing one target forward) and the injectable verifier.
#include "speculative/generation_step.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "spec/model_files.h"
#include "spec/pipeline_fakes.h"

namespace specula {
namespace {

using testing::ScriptedDrafter;
using testing::ScriptedPolicy;

GeneratorOptions step_options(int32_t draft_max, int32_t max_new_tokens, float temperature = 0.0f,
                              uint64_t seed = 0) {
  GeneratorOptions options;
  options.draft_max = draft_max;
  options.max_new_tokens = max_new_tokens;
  options.sampling.temperature = temperature;
  options.sampling.seed = seed;
  return options;
}

// A sequence of `prompt_length` tokens (ids 1, 2, ...) in a context of
// n_ctx over a 32-token vocabulary, nothing generated yet.
SequenceState started(const GeneratorOptions& options, std::span<Drafter* const> drafters,
                      DraftLengthPolicy& policy, int32_t n_ctx, int32_t prompt_length,
                      DrafterBandit* bandit = nullptr) {
  SequenceSetup setup{.seq = 0,
                      .n_ctx = n_ctx,
                      .n_vocab = 32,
                      .options = &options,
                      .drafters = drafters,
                      .policy = &policy,
                      .bandit = bandit};
  std::vector<int32_t> prompt(prompt_length);
  for (int32_t i = 0; i < prompt_length; ++i) prompt[i] = i + 1;
  SequenceState state;
  start_sequence(state, setup, prompt);
  begin_drafting(state);
  return state;
}

// As if `n` tokens had been generated.
void pretend_generated(SequenceState& state, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    state.tokens.push_back(7);
    state.output.push_back(7);
  }
}

TEST(PlanStep, TheLimitIsTheSmallestOfDraftMaxContextAndRemainingTokens) {
  ScriptedDrafter drafter;
  Drafter* drafters[] = {&drafter};
  ScriptedPolicy policy({100});  // wants more than any limit
  // n_ctx 12, prompt 5, draft_max 4, 20 to go: draft_max binds.
  GeneratorOptions options = step_options(4, 20);
  SequenceState state = started(options, drafters, policy, 12, 5);
  EXPECT_EQ(draft_limit(state), 4);
  plan_step(state);
  EXPECT_EQ(state.step.slot, 0);
  EXPECT_EQ(state.step.requested, 4);
  EXPECT_EQ(policy.limits.back(), 4);
  // 9 tokens in a context of 12: room for 3 more, the target's own among them.
  pretend_generated(state, 4);
  EXPECT_EQ(draft_limit(state), 2);
  plan_step(state);
  EXPECT_EQ(state.step.requested, 2);
  EXPECT_EQ(policy.limits.back(), 2);
  EXPECT_EQ(state.step.length, 9);
  // 11 of 12: only the target's token fits, a plain step without asking.
  pretend_generated(state, 2);
  policy.limits.clear();
  plan_step(state);
  EXPECT_EQ(state.step.slot, -1);
  EXPECT_EQ(state.step.requested, 0);
  EXPECT_TRUE(policy.limits.empty());

  // max_new_tokens 3 with 1 generated: 2 to go, so at most 1 drafted.
  options = step_options(4, 3);
  state = started(options, drafters, policy, 100, 5);
  pretend_generated(state, 1);
  plan_step(state);
  EXPECT_EQ(state.step.requested, 1);
  EXPECT_EQ(policy.limits.back(), 1);
}

TEST(PlanStep, PlainWhenThePolicyOrTheOptionsSaySo) {
  ScriptedDrafter drafter;
  Drafter* drafters[] = {&drafter};
  ScriptedPolicy zero({0});
  GeneratorOptions options = step_options(4, 20);
  SequenceState state = started(options, drafters, zero, 64, 5);
  plan_step(state);
  EXPECT_EQ(state.step.slot, -1);
  EXPECT_EQ(state.step.requested, 0);
  // draft_max 0: plain decoding, the policy is not asked.
  ScriptedPolicy eager({3});
  options = step_options(0, 20);
  state = started(options, drafters, eager, 64, 5);
  EXPECT_EQ(draft_limit(state), 0);
  plan_step(state);
  EXPECT_EQ(state.step.requested, 0);
  EXPECT_TRUE(eager.limits.empty());
  EXPECT_EQ(state.recorder.stats().policy, "plain");
}

TEST(PlanStep, TheBanditChoosesOnlyAmongDraftersThePolicyWouldRun) {
  ScriptedDrafter a, b, c;
  Drafter* drafters[] = {&a, &b, &c};
  ScriptedPolicy policy({2, 0, 3});  // slot 1 would not draft
  DrafterBandit bandit(3);
  const GeneratorOptions options = step_options(2, 200, 0.0f, 5);
  SequenceState state = started(options, drafters, policy, 256, 4, &bandit);
  std::vector<int> chosen(3, 0);
  for (int step = 0; step < 40; ++step) {
    plan_step(state);
    ASSERT_TRUE(state.step.slot == 0 || state.step.slot == 2) << state.step.slot;
    EXPECT_EQ(state.step.requested, 2);  // slot 2's 3 capped at draft_max
    ++chosen[state.step.slot];
    bandit.observe(state.step.slot, 1.0);
  }
  EXPECT_GT(chosen[0], 0);
  EXPECT_GT(chosen[2], 0);
  EXPECT_EQ(bandit.pulls(1), 0);

  ScriptedPolicy none({0, 0, 0});
  state = started(options, drafters, none, 256, 4, &bandit);
  plan_step(state);
  EXPECT_EQ(state.step.slot, -1);
  EXPECT_EQ(state.step.requested, 0);
}

TEST(DraftStep, TheChosenDrafterProposesTheRequestedTokens) {
  ScriptedDrafter a({9, 9, 9}, "a"), b({4, 5, 6, 8}, "b");
  Drafter* drafters[] = {&a, &b};
  ScriptedPolicy policy({3, 3});
  const GeneratorOptions options = step_options(3, 20);
  SequenceState state = started(options, drafters, policy, 64, 3);
  plan_step(state);  // no bandit: slot 0
  draft_step(state);
  EXPECT_EQ(state.step.proposal.tokens, (std::vector<int32_t>{9, 9, 9}));
  EXPECT_EQ(a.proposals, 1);
  EXPECT_EQ(b.proposals, 0);
  // A plain step proposes nothing.
  ScriptedPolicy zero({0, 0});
  state = started(options, drafters, zero, 64, 3);
  plan_step(state);
  draft_step(state);
  EXPECT_TRUE(state.step.proposal.tokens.empty());
  EXPECT_EQ(a.proposals, 1);
}

TEST(DraftStep, AnIdOutsideTheVocabularyIsAnErrorNamingTheDrafter) {
  ScriptedDrafter bad({3, 32}, "out-of-range");
  Drafter* drafters[] = {&bad};
  ScriptedPolicy policy({2});
  const GeneratorOptions options = step_options(2, 20);
  SequenceState state = started(options, drafters, policy, 64, 3);
  plan_step(state);
  try {
    draft_step(state);
    FAIL() << "id 32 of a 32-token vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out-of-range"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("32"), std::string::npos) << e.what();
  }
}

// Returns {0, 4} from every sampled verification and counts them.
class CountingVerifier : public Verifier {
 public:
  int calls = 0;

 protected:
  VerifyResult verify_sampled(const DraftProposal&, std::span<const float>, int32_t,
                              Rng&) override {
    ++calls;
    return {0, 4};
  }
};

TEST(VerifyStep, GreedyMatchesArgmaxesAndSamplingUsesTheOptionsVerifier) {
  ScriptedDrafter drafter({2});
  Drafter* drafters[] = {&drafter};
  ScriptedPolicy policy({1});
  CountingVerifier verifier;
  GeneratorOptions options = step_options(1, 20, 0.0f);
  options.verifier = &verifier;
  // Two rows over a vocabulary of 32: argmax 2, then 1.
  std::vector<float> logits(64, 0.0f);
  logits[2] = 5.0f;
  logits[32 + 1] = 5.0f;
  SequenceState state = started(options, drafters, policy, 64, 3);
  plan_step(state);
  draft_step(state);
  verify_step(state, logits);
  EXPECT_EQ(state.step.result.n_accepted, 1);
  EXPECT_EQ(state.step.result.next_token, 1);
  EXPECT_EQ(verifier.calls, 0);  // greedy never samples
  options.sampling.temperature = 1.0f;
  state = started(options, drafters, policy, 64, 3);
  plan_step(state);
  draft_step(state);
  verify_step(state, logits);
  EXPECT_EQ(verifier.calls, 1);
  EXPECT_EQ(state.step.result.n_accepted, 0);
  EXPECT_EQ(state.step.result.next_token, 4);
}

}  // namespace
}  // namespace specula

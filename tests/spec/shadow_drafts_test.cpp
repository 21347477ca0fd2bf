// Shadow drafts (shadow_drafts.h): a free drafter with nothing to propose
// is not offered to the bandit, and a free drafter's proposal at a step it
// did not run is scored against the tokens that followed, for the policy's
// acceptance estimate and the bandit.
#include "speculative/shadow_drafts.h"

#include <gtest/gtest.h>

#include <vector>

#include "policies/bandit.h"
#include "spec/pipeline_fakes.h"
#include "speculative/generation_step.h"

namespace specula {
namespace {

using testing::ScriptedDrafter;
using testing::ScriptedPolicy;

GeneratorOptions options_drafting(int32_t draft_max) {
  GeneratorOptions options;
  options.draft_max = draft_max;
  options.max_new_tokens = 100;
  return options;
}

SequenceState started(const GeneratorOptions& options, std::span<Drafter* const> drafters,
                      DraftLengthPolicy& policy, DrafterBandit* bandit) {
  SequenceSetup setup{.seq = 0,
                      .n_ctx = 256,
                      .n_vocab = 32,
                      .options = &options,
                      .drafters = drafters,
                      .policy = &policy,
                      .bandit = bandit};
  const std::vector<int32_t> prompt = {1, 2, 3, 4};
  SequenceState state;
  start_sequence(state, setup, prompt);
  begin_drafting(state);
  return state;
}

void append(SequenceState& state, std::initializer_list<int32_t> tokens) {
  for (int32_t t : tokens) {
    state.tokens.push_back(t);
    state.output.push_back(t);
  }
}

TEST(ShadowDrafts, AFreeDrafterWithNothingToProposeIsNotOffered) {
  ScriptedDrafter model({9, 9}, "model");
  ScriptedDrafter empty({}, "lookup");
  empty.free = true;
  Drafter* drafters[] = {&model, &empty};
  ScriptedPolicy policy({2, 2});
  DrafterBandit bandit(2);
  bandit.observe(0, 100.0);
  const GeneratorOptions options = options_drafting(2);
  SequenceState state = started(options, drafters, policy, &bandit);
  // An arm never pulled comes first: offered, the empty drafter would be
  // chosen at once.
  for (int step = 0; step < 10; ++step) {
    plan_step(state);
    EXPECT_EQ(state.step.slot, 0);
  }
  // With something to propose it is offered (and, untried, chosen).
  empty.script = {5};
  plan_step(state);
  EXPECT_EQ(state.step.slot, 1);
}

TEST(ShadowDrafts, AProposalNotRunIsScoredAgainstTheTokensThatFollow) {
  ScriptedDrafter model({9, 9, 9}, "model");
  ScriptedDrafter lookup({5, 6, 7}, "lookup");
  lookup.free = true;
  Drafter* drafters[] = {&model, &lookup};
  ScriptedPolicy policy({3, 2});  // lookup would be asked for 2 tokens
  BanditOptions clock;
  clock.step_seconds = [](int32_t, int32_t, double seconds) { return seconds; };
  DrafterBandit bandit(2, clock);
  bandit.observe(0, 100.0);  // the model arm tried, so the bandit keeps it
  const GeneratorOptions options = options_drafting(3);
  SequenceState state = started(options, drafters, policy, &bandit);
  // A one-row pass of 10 ms: the estimates price lookup's step at 2 + 1 rows.
  StepOutcome plain;
  plain.verify_seconds = 0.010;
  policy.observe(plain);

  // Both arms tried (an untried arm would be chosen first); lookup's one
  // reward is so low that the bandit draws the model.
  bandit.observe(1, 1.0);
  plan_step(state);
  ASSERT_EQ(state.step.slot, 0);
  ASSERT_TRUE(state.shadows[1].pending);
  EXPECT_EQ(state.shadows[1].tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(state.shadows[1].planned, 2);
  EXPECT_EQ(lookup.proposals, 1);  // proposed, never run

  // Two tokens that match: its third is undecided, nothing is scored.
  append(state, {5, 6});
  score_shadows(state);
  EXPECT_TRUE(state.shadows[1].pending);
  EXPECT_EQ(policy.estimates().find(1), nullptr);
  const int64_t pulls = bandit.pulls(1);
  // A token that differs: 2 of 3 matched.
  append(state, {4});
  score_shadows(state);
  EXPECT_FALSE(state.shadows[1].pending);
  const DrafterEstimate* estimate = policy.estimates().find(1);
  ASSERT_NE(estimate, nullptr);
  EXPECT_DOUBLE_EQ(estimate->acceptance.trials_at(2), 1.0);
  EXPECT_DOUBLE_EQ(estimate->acceptance.trials_at(3), 0.0);
  EXPECT_GT(estimate->acceptance.at(0), estimate->acceptance.at(2));
  // The bandit: the 2 tokens the policy would have asked for, both matched,
  // plus the target's: 3 tokens in the estimated step of 3 rows.
  EXPECT_EQ(bandit.pulls(1), pulls + 1);
  const double seconds = policy.estimates().step_seconds(1, 2);
  ASSERT_GT(seconds, 0.0);
  const double reward = 3.0 / seconds;
  // Its one earlier reward of 1.0, discounted once (0.97), and this one.
  const double expected_mean = (0.97 * 1.0 + reward) / (0.97 + 1.0);
  EXPECT_NEAR(bandit.mean(1), expected_mean, 1e-9 * reward);
}

TEST(ShadowDrafts, NoShadowsWithoutDrafting) {
  ScriptedDrafter lookup({5, 6}, "lookup");
  lookup.free = true;
  Drafter* drafters[] = {&lookup};
  ScriptedPolicy policy({0});  // plain steps
  const GeneratorOptions options = options_drafting(2);
  SequenceState state = started(options, drafters, policy, nullptr);
  plan_step(state);
  EXPECT_EQ(state.step.slot, -1);
  // A plain step: lookup's proposal is kept as a shadow for the policy.
  EXPECT_TRUE(state.shadows[0].pending);
  append(state, {5, 6});
  score_shadows(state);
  ASSERT_NE(policy.estimates().find(0), nullptr);
  EXPECT_DOUBLE_EQ(policy.estimates().find(0)->acceptance.trials_at(1), 1.0);
  // draft_max 0: nothing is proposed at all.
  const GeneratorOptions off = options_drafting(0);
  SequenceState plain = started(off, drafters, policy, nullptr);
  const int before = lookup.proposals;
  plan_step(plain);
  EXPECT_FALSE(plain.shadows[0].pending);
  EXPECT_EQ(lookup.proposals, before);
}

}  // namespace
}  // namespace specula

// The steps around the target forward on a real (tiny, random) model: the
// verify rows of two sequences share one forward and each is verified from
// its own slice of the logits exactly as if it had run alone; committing a
// step emits with the stop checks, truncates the sequence's cache rows to
// the kept length and tells every drafter how many of its tokens were kept.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "spec/model_files.h"
#include "spec/pipeline_fakes.h"
#include "speculative/generation_step.h"

namespace specula {
namespace {

using testing::ScriptedDrafter;
using testing::ScriptedPolicy;

class StepsOnAModel : public testing::SuiteModelPair<StepsOnAModel, testing::small_model> {};

constexpr int32_t kCtx = 64;

GeneratorOptions sampled_options(uint64_t seed) {
  GeneratorOptions options;
  options.draft_max = 3;
  options.max_new_tokens = 14;
  options.sampling.temperature = 0.9f;
  options.sampling.seed = seed;
  return options;
}

// What one sequence's steps saw: per step the verify logits and the result.
struct Trace {
  std::vector<std::vector<float>> logits;
  std::vector<VerifyResult> results;
  std::vector<int32_t> first_logits_rows;
  std::vector<int32_t> tokens;
};

// Decodes the sequences of `states` (already started, one cache sequence
// each) to the end, every step's verify rows of all of them in one forward.
std::vector<Trace> decode_together(const Model& target, std::vector<SequenceState*> states) {
  KvCache cache = target.make_cache(kCtx, 2);
  TargetBatch batch;
  for (SequenceState* s : states) append_prefill_rows(*s, batch);
  target.forward(batch.rows, cache, batch.logits, nullptr);
  for (SequenceState* s : states) begin_drafting(*s);
  std::vector<Trace> traces(states.size());
  for (;;) {
    batch.clear();
    std::vector<size_t> active;
    for (size_t i = 0; i < states.size(); ++i) {
      if (!ready_for_step(*states[i])) continue;
      plan_step(*states[i]);
      draft_step(*states[i]);
      append_verify_rows(*states[i], batch);
      active.push_back(i);
    }
    if (active.empty()) break;
    target.forward(batch.rows, cache, batch.logits, nullptr);
    for (size_t i : active) {
      const std::span<const float> logits = verify_logits(*states[i], batch);
      verify_step(*states[i], logits);
      traces[i].logits.emplace_back(logits.begin(), logits.end());
      traces[i].results.push_back(states[i]->step.result);
      traces[i].first_logits_rows.push_back(states[i]->step.first_logits_row);
      commit_step(*states[i], logits, cache, {});
    }
  }
  for (size_t i = 0; i < states.size(); ++i) traces[i].tokens = states[i]->output;
  return traces;
}

TEST_F(StepsOnAModel, TwoSequencesInOneForwardVerifyAsEachAlone) {
  const std::vector<int32_t> prompts[2] = {{1, 2, 3, 4, 5}, {9, 8, 7}};
  const GeneratorOptions options[2] = {sampled_options(11), sampled_options(12)};
  ScriptedDrafter drafters[2] = {ScriptedDrafter({3, 7, 7}), ScriptedDrafter({5, 5, 1})};
  FixedPolicy policies[2] = {FixedPolicy(PolicyOptions{.kind = PolicyKind::kFixed}),
                             FixedPolicy(PolicyOptions{.kind = PolicyKind::kFixed})};
  Drafter* slots[2][1] = {{&drafters[0]}, {&drafters[1]}};
  auto start = [&](SequenceState& state, int32_t i) {
    SequenceSetup setup{.seq = i,
                        .n_ctx = kCtx,
                        .n_vocab = target().config().n_vocab,
                        .options = &options[i],
                        .drafters = slots[i],
                        .policy = &policies[i]};
    start_sequence(state, setup, prompts[i]);
  };
  SequenceState together[2], alone[2];
  for (int i = 0; i < 2; ++i) start(together[i], i);
  const std::vector<Trace> batched = decode_together(target(), {&together[0], &together[1]});
  std::vector<Trace> single[2];
  for (int i = 0; i < 2; ++i) {
    start(alone[i], i);
    single[i] = decode_together(target(), {&alone[i]});
  }

  // The first step drafted 3 tokens for each: sequence 1's rows follow
  // sequence 0's four.
  ASSERT_FALSE(batched[1].first_logits_rows.empty());
  EXPECT_EQ(batched[0].first_logits_rows[0], 0);
  EXPECT_EQ(batched[1].first_logits_rows[0], 4);
  for (int i = 0; i < 2; ++i) {
    const Trace& b = batched[i];
    const Trace& a = single[i][0];
    EXPECT_EQ(b.tokens, a.tokens) << "sequence " << i;
    EXPECT_EQ(b.tokens.size(), 14u);
    ASSERT_EQ(b.results.size(), a.results.size()) << "sequence " << i;
    for (size_t step = 0; step < b.results.size(); ++step) {
      EXPECT_EQ(b.results[step].n_accepted, a.results[step].n_accepted) << i << ", " << step;
      EXPECT_EQ(b.results[step].next_token, a.results[step].next_token) << i << ", " << step;
      ASSERT_EQ(b.logits[step].size(), a.logits[step].size());
      for (size_t v = 0; v < b.logits[step].size(); ++v) {
        ASSERT_NEAR(b.logits[step][v], a.logits[step][v], 1e-4f) << i << ", " << step;
      }
    }
  }
  // The slices really are different sequences' (the prompts differ).
  float difference = 0;
  for (size_t v = 0; v < batched[0].logits[0].size(); ++v) {
    difference += std::fabs(batched[0].logits[0][v] - batched[1].logits[0][v]);
  }
  EXPECT_GT(difference, 1e-2f);
}

// Prompt {1, 2, 3, 4}; the proposer (slot 0 of two drafters) drafted
// {5, 6, 7} (fewer when max_new_tokens leaves less room) and the target
// scored them: the state just before verification, whose result each test
// sets by hand.
class CommitCase {
 public:
  CommitCase(const Model& target, GeneratorOptions options) : options_(std::move(options)) {
    cache = target.make_cache(kCtx, 1);
    SequenceSetup setup{.seq = 0,
                        .n_ctx = kCtx,
                        .n_vocab = target.config().n_vocab,
                        .options = &options_,
                        .drafters = drafters_,
                        .policy = &policy_};
    start_sequence(state, setup, std::vector<int32_t>{1, 2, 3, 4});
    append_prefill_rows(state, batch_);
    target.forward(batch_.rows, cache, batch_.logits, nullptr);
    begin_drafting(state);
    plan_step(state);
    draft_step(state);
    batch_.clear();
    append_verify_rows(state, batch_);
    target.forward(batch_.rows, cache, batch_.logits, nullptr);
  }

  // Commits `result`; the callback records each token and returns false
  // at `cancel_at`.
  void commit(VerifyResult result, int32_t cancel_at = -1) {
    state.step.result = result;
    commit_step(state, verify_logits(state, batch_), cache, [&](int32_t token) {
      seen.push_back(token);
      return token != cancel_at;
    });
  }

  ScriptedDrafter proposer{{5, 6, 7}, "proposer"};
  ScriptedDrafter bystander{{}, "bystander"};
  KvCache cache;
  SequenceState state;
  std::vector<int32_t> seen;

 private:
  GeneratorOptions options_;
  Drafter* drafters_[2] = {&proposer, &bystander};
  FixedPolicy policy_{PolicyOptions{.kind = PolicyKind::kFixed}};
  TargetBatch batch_;
};

GeneratorOptions commit_options(int32_t max_new_tokens, std::vector<int32_t> stop_tokens = {}) {
  GeneratorOptions options;
  options.draft_max = 3;
  options.max_new_tokens = max_new_tokens;
  options.stop_tokens = std::move(stop_tokens);
  return options;
}

TEST_F(StepsOnAModel, CommitKeepsTheAcceptedTokensAndTheCorrection) {
  CommitCase c(target(), commit_options(20));
  ASSERT_EQ(c.state.step.proposal.tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(c.cache.length(0), 7);  // 3 prompt rows + last token + 3 drafted
  c.commit({2, 9});
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{5, 6, 9}));
  EXPECT_EQ(c.seen, (std::vector<int32_t>{5, 6, 9}));
  EXPECT_EQ(c.state.tokens.size(), 7u);
  EXPECT_EQ(c.cache.length(0), 6);  // all but the newest token
  EXPECT_EQ(c.state.stop_reason, StopReason::kNone);
  EXPECT_EQ(c.proposer.accepted, (std::vector<int32_t>{2}));
  EXPECT_EQ(c.bystander.accepted, (std::vector<int32_t>{0}));
  EXPECT_EQ(c.bystander.accept_lengths, (std::vector<int32_t>{7}));
  // Rows for the last prompt token and the two kept drafts, from position 4.
  EXPECT_EQ(c.proposer.observed_rows, (std::vector<int32_t>{3}));
  EXPECT_EQ(c.bystander.observed_first, (std::vector<int32_t>{4}));
}

TEST_F(StepsOnAModel, CommitOfARejectedFirstDraftKeepsOnlyTheCorrection) {
  CommitCase c(target(), commit_options(20));
  c.commit({0, 9});
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{9}));
  EXPECT_EQ(c.cache.length(0), 4);
  EXPECT_EQ(c.proposer.accepted, (std::vector<int32_t>{0}));
  EXPECT_EQ(c.proposer.observed_rows, (std::vector<int32_t>{1}));
}

TEST_F(StepsOnAModel, CommitStopsAtAStopTokenWithoutEmittingIt) {
  CommitCase c(target(), commit_options(20, {6}));
  c.commit({3, 9});
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{5}));
  EXPECT_EQ(c.state.stop_reason, StopReason::kEndOfGeneration);
  EXPECT_EQ(c.cache.length(0), 4);
  // The verifier kept 3, whatever emission did with them.
  EXPECT_EQ(c.proposer.accepted, (std::vector<int32_t>{3}));
  EXPECT_EQ(c.proposer.observed_rows, (std::vector<int32_t>{2}));
  EXPECT_FALSE(ready_for_step(c.state));
}

TEST_F(StepsOnAModel, CommitStopsAtMaxNewTokens) {
  CommitCase c(target(), commit_options(2));
  // Two tokens to go: one drafted, the target gives the other.
  ASSERT_EQ(c.state.step.proposal.tokens, (std::vector<int32_t>{5}));
  EXPECT_EQ(c.cache.length(0), 5);
  c.commit({1, 9});
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{5, 9}));
  EXPECT_EQ(c.state.stop_reason, StopReason::kMaxTokens);
  EXPECT_EQ(c.cache.length(0), 5);
  EXPECT_EQ(c.proposer.accepted, (std::vector<int32_t>{1}));
  EXPECT_FALSE(ready_for_step(c.state));
}

TEST_F(StepsOnAModel, CommitStopsWhenTheCallbackCancels) {
  CommitCase c(target(), commit_options(20));
  c.commit({3, 9}, /*cancel_at=*/6);
  EXPECT_EQ(c.seen, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(c.state.stop_reason, StopReason::kCancelled);
  EXPECT_EQ(c.cache.length(0), 5);
  EXPECT_EQ(c.proposer.observed_rows, (std::vector<int32_t>{3}));
}

TEST_F(StepsOnAModel, CommitWithoutANextTokenEmitsOnlyTheKeptDrafts) {
  // A wrong test rule may drop the bonus token (next_token -1).
  CommitCase c(target(), commit_options(20));
  c.commit({3, -1});
  EXPECT_EQ(c.state.output, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(c.cache.length(0), 6);
  EXPECT_EQ(c.state.stop_reason, StopReason::kNone);
}

}  // namespace
}  // namespace specula

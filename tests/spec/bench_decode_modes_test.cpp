// The bench's decode modes as a list: plain first, then each fixed g and
// each policy with the draft model, then each drafter set; each mode runs
// with its own g, policy and drafters, and becomes its own kind of point.
#include "benchmark/bench_decode_modes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "spec/model_files.h"

namespace specula {
namespace {

class BenchDecodeModes : public testing::SuiteModelPair<BenchDecodeModes, testing::small_model> {
 protected:
  static BenchOptions options() {
    BenchOptions o;
    o.draft_max_list = {1, 3};
    o.policies = {PolicyKind::kAdaptive, PolicyKind::kHeuristic};
    o.drafter_sets = {"lookup", "lookup,suffix"};
    return o;
  }
  static std::vector<std::string> names(const DecodeModeList& list) {
    std::vector<std::string> out;
    for (const DecodeMode& mode : list.modes()) out.push_back(mode.name);
    return out;
  }
};

TEST_F(BenchDecodeModes, ListsPlainFixedPoliciesAndDrafterSetsInOrder) {
  ThreadPool pool(1);
  const DecodeModeList with_draft(target(), &draft(), pool, options(), 64);
  EXPECT_EQ(
      names(with_draft),
      (std::vector<std::string>{"plain", "speculative g=1", "speculative g=3", "policy adaptive",
                                "policy heuristic", "drafters lookup", "drafters lookup,suffix"}));
  // Without a draft there is nothing for the fixed g's and the policies to run.
  const DecodeModeList no_draft(target(), nullptr, pool, options(), 64);
  EXPECT_EQ(names(no_draft),
            (std::vector<std::string>{"plain", "drafters lookup", "drafters lookup,suffix"}));
}

TEST_F(BenchDecodeModes, EachModeRunsWithItsOwnSettingsAndBecomesItsPoint) {
  ThreadPool pool(1);
  const int32_t n_ctx = 64;
  DecodeModeList list(target(), &draft(), pool, options(), n_ctx);
  Generator generator(target(), n_ctx, &pool);
  const std::vector<int32_t> prompt = testing::random_tokens(target(), 9, 16);
  std::vector<GenerationStats> first;  // each mode's first run
  for (int32_t repeat = 0; repeat < 2; ++repeat) {
    for (DecodeMode& mode : list.modes()) {
      const GenerationOutput out = mode.run(generator, prompt, 20);
      if (repeat == 0) first.push_back(out.stats);
      mode.tally.add(out);
    }
  }
  ASSERT_EQ(first.size(), 7u);
  EXPECT_EQ(first[0].drafted_tokens, 0);  // plain
  EXPECT_EQ(first[1].draft_max, 1);
  EXPECT_EQ(first[2].draft_max, 3);
  EXPECT_EQ(first[1].policy, "fixed");
  EXPECT_EQ(first[3].policy, "adaptive");
  EXPECT_EQ(first[4].policy, "heuristic");
  EXPECT_EQ(first[4].draft_max, 3);  // the policies choose within the largest g
  EXPECT_EQ(first[5].drafters.size(), 1u);
  ASSERT_EQ(first[6].drafters.size(), 2u);
  EXPECT_EQ(first[6].drafters[1].name, "suffix");
  for (const DecodeMode& mode : list.modes()) {
    EXPECT_EQ(mode.tally.tokens_per_second.size(), 2u) << mode.name;
    EXPECT_EQ(mode.tally.generated, 40) << mode.name;
  }

  BenchReport report;
  list.report(report);
  ASSERT_EQ(report.speculative.size(), 2u);
  EXPECT_EQ(report.speculative[0].draft_max, 1);
  EXPECT_EQ(report.speculative[1].draft_max, 3);
  ASSERT_EQ(report.policies.size(), 2u);
  EXPECT_EQ(report.policies[0].policy, PolicyKind::kAdaptive);
  EXPECT_EQ(report.policies[1].policy, PolicyKind::kHeuristic);
  EXPECT_EQ(report.policies[1].draft_max, 3);
  EXPECT_TRUE(report.policies[1].best_fixed_draft_max == 1 ||
              report.policies[1].best_fixed_draft_max == 3);
  ASSERT_EQ(report.drafter_sets.size(), 2u);
  EXPECT_EQ(report.drafter_sets[0].drafters, "lookup");
  EXPECT_EQ(report.drafter_sets[1].drafters, "lookup,suffix");
  EXPECT_EQ(report.drafter_sets[1].steps_by_drafter.size(), 2u);
  // Greedy decoding: every mode gave plain decoding's tokens.
  for (const SpeculativePoint& p : report.speculative) EXPECT_TRUE(p.identical_to_plain);
  for (const PolicyPoint& p : report.policies) EXPECT_TRUE(p.identical_to_plain);
  for (const DrafterSetPoint& p : report.drafter_sets) EXPECT_TRUE(p.identical_to_plain);
  // The fixed g=3 point's acceptance is what its runs counted (greedy: both
  // runs alike).
  const GenerationStats& g3 = first[2];
  ASSERT_GT(g3.drafted_tokens, 0);
  EXPECT_DOUBLE_EQ(report.speculative[1].acceptance_rate,
                   static_cast<double>(g3.accepted_tokens) / g3.drafted_tokens);
  // The draft's share: its KV cache (F16, the default), sized for the
  // runs' context.
  const ModelConfig& c = draft().config();
  EXPECT_EQ(report.memory.draft_kv_bytes,
            uint64_t{2} * c.n_layer * n_ctx * c.n_head_kv * c.head_dim * sizeof(uint16_t));
  EXPECT_EQ(report.memory.draft_file_bytes, draft().file().file_size());
}

TEST(DecodeTally, AddsRunsAndComparesWithPlain) {
  GenerationOutput a;
  a.tokens = {1, 2, 3};
  a.stats.drafted_tokens = 4;
  a.stats.accepted_tokens = 3;
  a.stats.generated_tokens = 3;
  a.stats.target_passes = 2;
  a.stats.draft_length_steps = {0, 1, 1};
  DecodeTally tally;
  tally.add(a);
  a.stats.draft_length_steps = {2};
  tally.add(a);
  EXPECT_EQ(tally.draft_length_steps, (std::vector<int64_t>{2, 1, 1}));
  EXPECT_DOUBLE_EQ(tally.acceptance_rate(), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(tally.tokens_per_pass(), 6.0 / 4.0);
  EXPECT_TRUE(tally.consistent);
  DecodeTally plain;
  GenerationOutput p;
  p.tokens = {1, 2, 3};
  plain.add(p);
  EXPECT_TRUE(tally.identical_to(plain));
  a.tokens = {1, 2, 4};
  tally.add(a);
  EXPECT_FALSE(tally.consistent);
  EXPECT_FALSE(tally.identical_to(plain));
}

}  // namespace
}  // namespace specula

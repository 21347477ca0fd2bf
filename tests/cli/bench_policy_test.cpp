// `specula bench --policy`: the policies run interleaved with plain decoding
// and the fixed g's, and the JSON reports each with its ratios (median and
// spread) against plain and the best fixed g. No timing assertions.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

// A tiny target/draft pair and the flags every run here shares: 2 repeats
// of 8 tokens, fixed g = 1 and 3.
class BenchPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    pair_ = make_tiny_pair(dir_);
    ASSERT_FALSE(HasFailure());
  }
  std::string bench() const {
    return "bench -q -t 1 -r 2 -G 8 -P 8 --bandwidth-mb 8 --max-verify 4 -m " + pair_.target +
           " --draft-max-list 1,3";
  }
  TempDir dir_;
  TinyPair pair_;
};

TEST_F(BenchPolicy, PoliciesAreComparedInTheSameRuns) {
  const std::string base = bench() + " -d " + pair_.draft;
  const CliResult result = run_cli(base + " --policy adaptive,heuristic --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const json j = json::parse(result.output);
  const json& policies = j.at("policies");
  ASSERT_EQ(policies.size(), 2u) << j.dump(2);
  const char* names[] = {"adaptive", "heuristic"};
  for (size_t i = 0; i < 2; ++i) {
    const json& p = policies[i];
    EXPECT_EQ(p.at("policy"), names[i]);
    EXPECT_EQ(p.at("draft_max"), 3);  // the largest g of the list is the bound
    EXPECT_EQ(p.at("identical_to_plain"), true);
    for (const char* key : {"tokens_per_second", "speedup", "vs_best_fixed"}) {
      const json& spread = p.at(key);
      EXPECT_EQ(spread.at("samples").size(), 2u) << key;
      EXPECT_LE(spread.at("min").get<double>(), spread.at("median").get<double>()) << key;
      EXPECT_LE(spread.at("median").get<double>(), spread.at("max").get<double>()) << key;
      EXPECT_GT(spread.at("median").get<double>(), 0.0) << key;
    }
    const int best = p.at("best_fixed_draft_max");
    EXPECT_TRUE(best == 1 || best == 3) << best;
    int64_t steps = 0;
    for (const json& n : p.at("draft_length_steps")) steps += n.get<int64_t>();
    EXPECT_GT(steps, 0);
  }
  // The table has the section; "none" skips it; a bad name names the flag.
  const CliResult table = run_cli(base + " --policy adaptive");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("policies in the same runs"), std::string::npos) << table.output;
  const json none = json::parse(run_cli(base + " --policy none --json").output);
  EXPECT_TRUE(none.at("policies").empty());
  const CliResult bad = run_cli(base + " --policy best");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("adaptive"), std::string::npos) << bad.output;
}

TEST_F(BenchPolicy, DrafterSetsAreComparedInTheSameRuns) {
  const std::string base = bench() + " --policy none";
  const CliResult result =
      run_cli(base + " -d " + pair_.draft + " --drafter-sets 'lookup;model,lookup,suffix' --json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const json j = json::parse(result.output);
  const json& sets = j.at("drafter_sets");
  ASSERT_EQ(sets.size(), 2u) << j.dump(2);
  EXPECT_EQ(sets[0].at("drafters"), "lookup");
  EXPECT_EQ(sets[1].at("drafters"), "model,lookup,suffix");
  for (size_t i = 0; i < 2; ++i) {
    const json& p = sets[i];
    EXPECT_EQ(p.at("draft_max"), 3);  // the largest g of the list is the bound
    EXPECT_EQ(p.at("identical_to_plain"), true);
    EXPECT_EQ(p.at("speedup").at("samples").size(), 2u);
    EXPECT_GT(p.at("tokens_per_second").at("median").get<double>(), 0.0);
  }
  // One count of drafting steps per drafter (lookup may find nothing to
  // propose in pseudo-random text: zeros are fine, the shape is not).
  EXPECT_LE(sets[0].at("steps_by_drafter").size(), 1u);
  EXPECT_EQ(sets[1].at("steps_by_drafter").size(), 3u);
  // No draft is needed for drafters without one; the table has the section.
  const CliResult no_draft = run_cli(base + " --drafter-sets 'lookup;suffix'");
  EXPECT_EQ(no_draft.exit_code, 0) << no_draft.output;
  EXPECT_NE(no_draft.output.find("drafter sets in the same runs"), std::string::npos)
      << no_draft.output;
  // "model" without --draft, and an unknown name, fail before measuring.
  const CliResult needs_draft = run_cli(base + " --drafter-sets model");
  EXPECT_NE(needs_draft.exit_code, 0);
  EXPECT_NE(needs_draft.output.find("draft"), std::string::npos) << needs_draft.output;
  const CliResult unknown = run_cli(base + " --drafter-sets 'lookup,oracle'");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("oracle"), std::string::npos) << unknown.output;
  const CliResult empty_name = run_cli(base + " --drafter-sets 'lookup,,suffix'");
  EXPECT_NE(empty_name.exit_code, 0);
  EXPECT_NE(empty_name.output.find("empty item"), std::string::npos) << empty_name.output;
}

}  // namespace
}  // namespace specula::testing

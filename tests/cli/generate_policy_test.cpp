// `specula generate --policy/--drafter/--confidence-threshold` end to end on a
// tiny pair: every policy gives plain greedy's tokens, the JSON shows the
// decisions, and bad values fail with a message naming the flag.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

class GeneratePolicy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    draft_ = pair.draft;
  }
  static void TearDownTestSuite() { delete dir_; }

  static json generate_json(const std::string& args) {
    const CliResult result = run_cli("generate -q -t 1 --json --temp 0 -n 24 --ignore-eos -m " +
                                     target_ + " " + args + " 'one two one two one two'");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    try {
      return json::parse(result.output);
    } catch (const json::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << result.output;
      return json::object();
    }
  }

  static TempDir* dir_;
  static std::string target_, draft_;
};
TempDir* GeneratePolicy::dir_ = nullptr;
std::string GeneratePolicy::target_, GeneratePolicy::draft_;

TEST_F(GeneratePolicy, EveryPolicyGivesPlainGreedyTokensAndReportsItsDecisions) {
  const json plain = generate_json("--draft-max 0");
  EXPECT_EQ(plain.at("mode"), "plain");
  for (const std::string policy : {"adaptive", "fixed", "heuristic", "confidence"}) {
    SCOPED_TRACE(policy);
    const json j =
        generate_json("-d " + draft_ + " --draft-max 6 --policy " + policy +
                      " --drafter model,lookup,suffix,self:1 --confidence-threshold 0.2");
    EXPECT_EQ(j.at("tokens"), plain.at("tokens"));
    EXPECT_EQ(j.at("policy"), policy);
    EXPECT_EQ(j.at("drafters"), json({"model", "lookup", "suffix", "self:1"}));
    const json& stats = j.at("stats");
    EXPECT_EQ(stats.at("policy"), policy);
    EXPECT_EQ(stats.at("draft_length_steps").size(), 7u);
    int64_t steps = 0;
    for (const json& n : stats.at("draft_length_steps")) steps += n.get<int64_t>();
    EXPECT_EQ(steps, stats.at("target_passes").get<int64_t>());
    ASSERT_EQ(stats.at("drafters").size(), 4u);
    EXPECT_EQ(stats.at("drafters")[1].at("name"), "lookup");
    for (const char* key : {"estimated_speedup", "realised_speedup", "probe_steps", "early_stops",
                            "plain_tokens_per_second_estimate"}) {
      EXPECT_TRUE(stats.contains(key)) << key;
    }
  }
  // The default without a draft file: prompt lookup alone, adaptive.
  const json lookup = generate_json("");
  EXPECT_EQ(lookup.at("tokens"), plain.at("tokens"));
  EXPECT_EQ(lookup.at("drafters"), json({"lookup"}));
  EXPECT_EQ(lookup.at("stats").at("policy"), "adaptive");
}

TEST_F(GeneratePolicy, BadValuesNameTheFlag) {
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    const CliResult r = run_cli("generate -q -m " + target_ + " " + args + " hi");
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << ": " << r.output;
  };
  expect_error("--policy fastest", "adaptive");
  expect_error("--drafter oracle", "unknown drafter 'oracle'");
  expect_error("--drafter model", "--draft");
  expect_error("--drafter ,", "--drafter");
  expect_error("--policy confidence --confidence-threshold 1.5", "--confidence-threshold");
}

}  // namespace
}  // namespace specula::testing

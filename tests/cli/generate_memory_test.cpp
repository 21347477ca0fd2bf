// `specula generate --json` reports what the drafters hold in memory: the
// draft file and its KV cache, for the plain "model" drafter and for the
// learning one of --online-distill alike, each drafter's share listed.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

class GenerateMemory : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pair_ = new TinyPair(make_tiny_pair(*dir_));
  }
  static void TearDownTestSuite() {
    delete pair_;
    delete dir_;
  }
  static json memory_of(const std::string& flags) {
    const CliResult result =
        run_cli("generate -q -t 1 --json --temp 0 -n 8 --ignore-eos --ctx 48 -m " + pair_->target +
                " -d " + pair_->draft + " " + flags + " 'one two one two'");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    try {
      return json::parse(result.output).at("memory");
    } catch (const json::exception& e) {
      ADD_FAILURE() << e.what() << ": " << result.output;
      return json::object();
    }
  }
  static uint64_t draft_size() { return std::filesystem::file_size(pair_->draft); }

  static TempDir* dir_;
  static TinyPair* pair_;
};
TempDir* GenerateMemory::dir_ = nullptr;
TinyPair* GenerateMemory::pair_ = nullptr;

TEST_F(GenerateMemory, TheDraftModelsFileAndCacheAreReported) {
  const json memory = memory_of("--drafter model,lookup");
  EXPECT_EQ(memory.at("draft_file_bytes").get<uint64_t>(), draft_size());
  EXPECT_GT(memory.at("draft_kv_bytes").get<uint64_t>(), 0u);
  const json& drafters = memory.at("drafters");
  ASSERT_EQ(drafters.size(), 2u);
  EXPECT_EQ(drafters[0].at("name"), "model");
  EXPECT_EQ(drafters[0].at("file_bytes").get<uint64_t>(), draft_size());
  EXPECT_EQ(drafters[0].at("kv_bytes"), memory.at("draft_kv_bytes"));
  EXPECT_EQ(drafters[1].at("name"), "lookup");
  EXPECT_EQ(drafters[1].at("file_bytes").get<uint64_t>(), 0u);
  EXPECT_EQ(drafters[1].at("kv_bytes").get<uint64_t>(), 0u);
}

TEST_F(GenerateMemory, TheLearningDraftIsReportedLikeTheDraft) {
  const json plain = memory_of("--drafter model");
  const json learning = memory_of("--drafter model --online-distill --osd-memory-mb 1");
  EXPECT_EQ(learning.at("draft_file_bytes").get<uint64_t>(), draft_size());
  EXPECT_GT(learning.at("draft_kv_bytes").get<uint64_t>(), 0u);
  // The same context, the same draft: the same cache.
  EXPECT_EQ(learning.at("draft_kv_bytes"), plain.at("draft_kv_bytes"));
  const json& drafters = learning.at("drafters");
  ASSERT_EQ(drafters.size(), 1u);
  // The learner's trainable copy: 16 bytes or more per draft parameter.
  EXPECT_GT(drafters[0].at("learning_bytes").get<uint64_t>(), 0u);
  EXPECT_EQ(plain.at("drafters")[0].at("learning_bytes").get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace specula::testing

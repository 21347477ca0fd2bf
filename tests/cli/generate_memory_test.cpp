// `specula generate --json` reports what the drafters hold in memory: the
// draft file and its KV cache, for the plain "model" drafter and for the
// learning one of --online-distill alike, each drafter's share listed; and
// the KV caches at the two --kv-type sizes.
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
  static json output_of(const std::string& flags) {
    const CliResult result =
        run_cli("generate -q -t 1 --json --temp 0 -n 8 --ignore-eos --ctx 48 -m " + pair_->target +
                " -d " + pair_->draft + " " + flags + " 'one two one two'");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    try {
      return json::parse(result.output);
    } catch (const json::exception& e) {
      ADD_FAILURE() << e.what() << ": " << result.output;
      return json::object({{"memory", json::object()}});
    }
  }
  static json memory_of(const std::string& flags) { return output_of(flags).at("memory"); }
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

// An F16 cache (the default) holds half the bytes of an F32 one, for the
// target and the draft alike; --kv-type says which, and the JSON repeats it.
TEST_F(GenerateMemory, KvTypeSetsTheCachesElementSize) {
  const json half = output_of("--drafter model");
  const json full = output_of("--drafter model --kv-type f32");
  EXPECT_EQ(half.at("kv_type"), "f16");
  EXPECT_EQ(full.at("kv_type"), "f32");
  for (const char* field : {"target_kv_bytes", "draft_kv_bytes"}) {
    const auto bytes = half.at("memory").at(field).get<uint64_t>();
    EXPECT_GT(bytes, 0u) << field;
    EXPECT_EQ(full.at("memory").at(field).get<uint64_t>(), 2 * bytes) << field;
  }
  const CliResult bad = run_cli("generate -q -m " + pair_->target + " --kv-type q8_0 'hi'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--kv-type"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace specula::testing

// `specula generate --prompt-file` and `--online-distill` end to end on a
// tiny pair: several prompts in one process give each prompt's own tokens,
// the draft that learns while generating keeps greedy output identical to
// plain decoding, its statistics add up, the learned draft can be saved and
// loaded again, and bad input fails with a message naming what to fix.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

class GeneratePromptFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    draft_ = pair.draft;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_->file(name);
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  static std::string common() {
    return "generate -q -t 1 --json --temp 0 -n 16 --ignore-eos -m " + target_ + " ";
  }

  // Runs a command whose stdout is JSON Lines; one object per line.
  static std::vector<json> json_lines(const std::string& args) {
    const CliResult result = run_cli(common() + args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::vector<json> lines;
    std::istringstream in(result.output);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        lines.push_back(json::parse(line));
      } catch (const json::exception& e) {
        ADD_FAILURE() << "not a JSON line (" << e.what() << "): " << line;
      }
    }
    return lines;
  }

  static json single(const std::string& args) {
    const CliResult result = run_cli(common() + args);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    try {
      return json::parse(result.output);
    } catch (const json::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << result.output;
      return json::object();
    }
  }

  static std::string error_of(const std::string& args) {
    const CliResult result = run_cli(args);
    EXPECT_NE(result.exit_code, 0) << result.output;
    EXPECT_EQ(result.output.find("Aborted"), std::string::npos) << result.output;
    return result.output;
  }

  static TempDir* dir_;
  static std::string target_, draft_;
};
TempDir* GeneratePromptFile::dir_ = nullptr;
std::string GeneratePromptFile::target_, GeneratePromptFile::draft_;

const std::vector<std::string> kPrompts = {"one two one two", "three four\nfive six",
                                           "seven seven seven eight"};

TEST_F(GeneratePromptFile, EachPromptGivesItsOwnTokens) {
  // A CRLF separator line, a blank prompt (skipped) and a trailing separator.
  const std::string file = write("prompts.txt", kPrompts[0] + "\n---\r\n" + kPrompts[1] +
                                                    "\n---\n  \n---\n" + kPrompts[2] + "\n---\n");
  const std::vector<json> lines = json_lines("--draft-max 0 --prompt-file " + file);
  ASSERT_EQ(lines.size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    SCOPED_TRACE(kPrompts[i]);
    const json alone = single("--draft-max 0 '" + kPrompts[i] + "'");
    EXPECT_EQ(lines[i].at("request"), i);
    EXPECT_EQ(lines[i].at("prompt_tokens"), alone.at("prompt_tokens"));
    EXPECT_EQ(lines[i].at("tokens"), alone.at("tokens"));
    EXPECT_EQ(lines[i].at("learning").at("enabled"), false);
  }
}

TEST_F(GeneratePromptFile, ACustomSeparatorAndStandardInput) {
  const std::string file = write("custom.txt", kPrompts[0] + "\n%%\n" + kPrompts[1]);
  // run_cli feeds /dev/null to stdin: pipe the file in through a shell.
  const CliResult result =
      run_cli_with_stdin(file, common() + "--draft-max 0 --prompt-separator %% --prompt-file -");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream in(result.output);
  std::string first, second;
  ASSERT_TRUE(std::getline(in, first) && std::getline(in, second)) << result.output;
  EXPECT_EQ(json::parse(second).at("prompt_tokens"),
            single("--draft-max 0 '" + kPrompts[1] + "'").at("prompt_tokens"));
}

TEST_F(GeneratePromptFile, OnlineDistillationKeepsGreedyOutputAndCountsWhatItSaw) {
  const std::string file = write("learn.txt", kPrompts[0] + "\n---\n" + kPrompts[1] + "\n---\n" +
                                                  kPrompts[2] + "\n---\n" + kPrompts[0]);
  const std::vector<json> plain = json_lines("--draft-max 0 --prompt-file " + file);
  const std::string saved = dir_->file("learned.gguf");
  // Fixed g so that every step drafts and every kept row is observed; the
  // learner may take all the CPU and publishes after each step.
  const std::vector<json> learning =
      json_lines("-d " + draft_ +
                 " --drafter model --policy fixed --draft-max 3 --online-distill "
                 "--osd-cpu 1 --osd-publish-every 1 --osd-window 8 --osd-batch 2 --osd-memory-mb 1 "
                 "--osd-save " +
                 saved + " --prompt-file " + file);
  ASSERT_EQ(plain.size(), 4u);
  ASSERT_EQ(learning.size(), 4u);
  int64_t generated = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(learning[i].at("tokens"), plain[i].at("tokens"));
    EXPECT_EQ(learning[i].at("mode"), "speculative");
    const json& l = learning[i].at("learning");
    EXPECT_EQ(l.at("enabled"), true);
    generated += learning[i].at("stats").at("generated_tokens").get<int64_t>();
    // One target row per generated token (accepted drafts + the correction).
    EXPECT_EQ(l.at("observed_rows").get<int64_t>(), generated);
    EXPECT_LE(l.at("buffer_bytes").get<int64_t>(), int64_t{1} << 20);
    EXPECT_GT(l.at("parameter_bytes").get<int64_t>(), 0);
    EXPECT_LE(l.at("weight_version").get<int64_t>(), l.at("publishes").get<int64_t>());
  }
  // Windows of earlier requests reached the buffer (a request's end flushes it).
  EXPECT_GE(learning.back().at("learning").at("stored_samples").get<int64_t>(), 3);

  // The saved draft is a draft like any other: same vocabulary, exact output.
  const json reloaded =
      single("-d " + saved + " --drafter model --policy fixed --draft-max 3 '" + kPrompts[2] + "'");
  EXPECT_EQ(reloaded.at("tokens"), plain[2].at("tokens"));
}

TEST_F(GeneratePromptFile, BadInputFailsWithAMessage) {
  const std::string base = "generate -q -t 1 -n 4 -m " + target_ + " ";
  const std::string file = write("two.txt", "a b\n---\nc d");
  EXPECT_NE(error_of(base + "--prompt-file " + dir_->file("missing.txt"))
                .find("cannot read the prompt file"),
            std::string::npos);
  EXPECT_NE(error_of(base + "--prompt-file " + write("empty.txt", "---\n \n---\n"))
                .find("holds no prompt"),
            std::string::npos);
  EXPECT_NE(error_of(base + "--prompt-file " + file + " 'text too'").find("one way"),
            std::string::npos);
  EXPECT_NE(error_of(base + "--prompt-file " + file + " --prompt-separator ''")
                .find("--prompt-separator is empty"),
            std::string::npos);
  EXPECT_NE(error_of(base + "--online-distill 'a b'").find("--draft"), std::string::npos);
  EXPECT_NE(error_of(base + "-d " + draft_ + " --drafter lookup --online-distill 'a b'")
                .find("add model to --drafter"),
            std::string::npos);
  EXPECT_NE(
      error_of(base + "-d " + draft_ + " --online-distill --osd-loss l2 'a b'").find("--osd-loss"),
      std::string::npos);
  EXPECT_NE(
      error_of(base + "-d " + draft_ + " --online-distill --osd-cpu 0 'a b'").find("--osd-cpu"),
      std::string::npos);
  EXPECT_NE(error_of(base + "-d " + draft_ + " --online-distill --osd-memory-mb 0 'a b'")
                .find("--osd-memory-mb"),
            std::string::npos);
  // The library names its API's fields; the CLI names its flags instead.
  const std::string window =
      error_of(base + "-d " + draft_ + " --online-distill --osd-window 1 'a b'");
  EXPECT_NE(window.find("--osd-window is 1"), std::string::npos) << window;
  EXPECT_EQ(window.find("EngineConfig"), std::string::npos) << window;
  const std::string ctx = error_of(base + "--ctx -1 'a b'");
  EXPECT_NE(ctx.find("--ctx is -1"), std::string::npos) << ctx;
  EXPECT_EQ(ctx.find("GenerateOptions"), std::string::npos) << ctx;
  EXPECT_NE(error_of(base + "-d " + draft_ + " --osd-save " + dir_->file("x.gguf") + " 'a b'")
                .find("add --online-distill"),
            std::string::npos);
  EXPECT_NE(error_of(base + "-d " + draft_ + " --online-distill --osd-save " +
                     dir_->file("no/such/folder/x.gguf") + " 'a b'")
                .find("does not exist"),
            std::string::npos);
  // A quantized draft cannot be trained: the message says which types can.
  const std::string q8 = dir_->file("draft-q8.gguf");
  ASSERT_EQ(run_cli("quantize " + draft_ + " " + q8 + " q8_0").exit_code, 0);
  EXPECT_NE(error_of(base + "-d " + q8 + " --online-distill 'a b'").find("F16"), std::string::npos);
}

}  // namespace
}  // namespace specula::testing

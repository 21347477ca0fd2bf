// Every bad flag, missing or corrupt file: a non-zero exit and one line that
// says what is wrong. Runs the real executable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

class CliErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    target_ = dir_->file("target.gguf");
    draft_ = dir_->file("draft.gguf");
    other_vocab_ = dir_->file("other-vocab.gguf");
    ASSERT_EQ(run_cli("make-model --out " + target_ + " --embd 32 --layers 2 --heads 2 --ff 64")
                  .exit_code,
              0);
    ASSERT_EQ(run_cli("make-model --from " + target_ + " --layers 1 --out " + draft_).exit_code, 0);
    ASSERT_EQ(run_cli("make-model --out " + other_vocab_ +
                      " --vocab 300 --embd 32 --layers 1 --heads 2 --ff 64")
                  .exit_code,
              0);
  }
  static void TearDownTestSuite() { delete dir_; }

  static TempDir* dir_;
  static std::string target_, draft_, other_vocab_;
};
TempDir* CliErrors::dir_ = nullptr;
std::string CliErrors::target_, CliErrors::draft_, CliErrors::other_vocab_;

// One line of output naming the problem; no crash, no stack trace.
void expect_one_line_error(const CliResult& result, const std::string& words) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "killed by a signal: " << result.output;
  EXPECT_NE(result.output.find(words), std::string::npos)
      << "expected '" << words << "' in: " << result.output;
  EXPECT_NE(result.output.find("error"), std::string::npos) << result.output;
}

TEST_F(CliErrors, GoodRunsSucceed) {
  const CliResult plain = run_cli("generate -q -m " + target_ + " -n 4 --temp 0 hi");
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  const CliResult speculative =
      run_cli("generate -q -m " + target_ + " -d " + draft_ + " -n 4 --temp 0 hi");
  EXPECT_EQ(speculative.exit_code, 0) << speculative.output;
  // Greedy speculative output is the plain output.
  EXPECT_EQ(plain.output, speculative.output);
}

TEST_F(CliErrors, UnknownCommandAndFlag) {
  expect_one_line_error(run_cli("frobnicate"), "frobnicate");
  expect_one_line_error(run_cli("generate -m " + target_ + " --no-such-flag hi"), "no-such-flag");
}

TEST_F(CliErrors, MissingRequiredModel) {
  expect_one_line_error(run_cli("generate hi"), "model");
}

TEST_F(CliErrors, MissingFiles) {
  expect_one_line_error(run_cli("generate -m " + dir_->file("absent.gguf") + " hi"), "absent.gguf");
  expect_one_line_error(
      run_cli("generate -m " + target_ + " -d " + dir_->file("nodraft.gguf") + " hi"),
      "nodraft.gguf");
  expect_one_line_error(run_cli("inspect " + dir_->file("absent.gguf")), "absent.gguf");
}

TEST_F(CliErrors, CorruptFiles) {
  const std::string not_gguf = dir_->file("not-gguf.gguf");
  std::ofstream(not_gguf) << "this is not a gguf file at all";
  expect_one_line_error(run_cli("generate -m " + not_gguf + " hi"), "not-gguf.gguf");
  expect_one_line_error(run_cli("inspect " + not_gguf), "not-gguf.gguf");

  // The real model cut in half.
  const std::string truncated = dir_->file("truncated.gguf");
  {
    std::ifstream in(target_, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(truncated, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  expect_one_line_error(run_cli("generate -m " + truncated + " hi"), "truncated.gguf");
}

TEST_F(CliErrors, BadSamplingValues) {
  const std::string base = "generate -q -m " + target_ + " ";
  expect_one_line_error(run_cli(base + "--temp -1 hi"), "temp");
  expect_one_line_error(run_cli(base + "--top-p 1.5 hi"), "top");
  expect_one_line_error(run_cli(base + "--top-p 0 hi"), "top");
  expect_one_line_error(run_cli(base + "--min-p 2 hi"), "min");
  expect_one_line_error(run_cli(base + "--top-k -3 hi"), "top");
  expect_one_line_error(run_cli(base + "-n -5 hi"), "-n");
  expect_one_line_error(run_cli(base + "--temp abc hi"), "temp");
  expect_one_line_error(run_cli(base + "--draft-max -1 -d " + draft_ + " hi"), "draft");
  expect_one_line_error(run_cli(base + "--drafter suffix --suffix-cache-tokens 0 hi"),
                        "--suffix-cache-tokens is 0");
}

TEST_F(CliErrors, DraftWithAnotherVocabularyIsRefused) {
  expect_one_line_error(run_cli("generate -m " + target_ + " -d " + other_vocab_ + " hi"),
                        "vocabular");
}

TEST_F(CliErrors, BadPromptIds) {
  expect_one_line_error(run_cli("generate -m " + target_ + " --prompt-ids 1,x,3"), "prompt-ids");
  expect_one_line_error(run_cli("generate -m " + target_ + " --prompt-ids 1,99999"), "99999");
}

TEST_F(CliErrors, MakeModelBadShapes) {
  expect_one_line_error(
      run_cli("make-model --out " + dir_->file("x.gguf") + " --embd 30 --heads 4"), "head");
  expect_one_line_error(run_cli("make-model --out " + dir_->file("x.gguf") + " --heads 0"), "head");
}

// Issue 15: output that cannot be written is an error, not a silent exit 0.
// (stdout to /dev/full, stderr to the pipe; '#' drops run_cli's own redirections.)
TEST_F(CliErrors, UnwritableOutputIsAnError) {
  for (const std::string& command :
       {"inspect " + target_, "generate -q -m " + target_ + " -n 4 --temp 0 hi"}) {
    const CliResult result = run_cli(command + " 3>&1 >/dev/full 2>&3 </dev/null #");
    EXPECT_EQ(result.exit_code, 1) << command << ": " << result.output;
    EXPECT_NE(result.output.find("could not write the output"), std::string::npos)
        << command << ": " << result.output;
  }
}

// Issue 15: -t 100000 used to start ~32k threads or hang; it is capped with
// a warning and the run completes.
TEST_F(CliErrors, AbsurdThreadCountsAreCapped) {
  const CliResult result = run_cli("generate -q -m " + target_ + " -n 2 --temp 0 -t 100000 hi");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("100000 threads asked for"), std::string::npos) << result.output;
}

// Issue 15: an output that cannot be written is refused before the work
// starts (train used to run every step, then fail and lose it all), and a
// device is never replaced by a file.
TEST_F(CliErrors, OutputsAreCheckedBeforeTheWork) {
  const std::string corpus = std::string(SPECULA_SOURCE_DIR) + "/README.md";
  expect_one_line_error(run_cli("train --vocab " + target_ + " --input " + corpus +
                                " --out no-such-folder/x.gguf --steps 1"),
                        "no-such-folder does not exist");
  expect_one_line_error(run_cli("quantize " + target_ + " /dev/null q8_0"), "is a device");
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
}

}  // namespace
}  // namespace specula::testing

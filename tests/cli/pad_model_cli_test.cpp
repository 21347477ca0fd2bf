// `specula make-model --pad-from` on the shipped target (models/README.md):
// the padded copy is larger as asked and generates, greedily, exactly the
// tokens of the model it copies on several prompts; kept in Q8_0 that is
// the shipped target itself, converted with --type f16 it is the shipped
// target converted to F16. Bad flags get specific errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

const std::string kTarget = std::string(SPECULA_SOURCE_DIR) + "/models/specula-py-target-q8_0.gguf";
const std::string kDraft =
    std::string(SPECULA_SOURCE_DIR) + "/models/specula-py-draft-distilled-f16.gguf";
const std::vector<std::string> kPrompts = {
    "'class Stack:\n    def __init__(self):\n        self.items = []\n'",
    "'import os\nimport sys\n\n\ndef main(argv):\n'",
    "'def parse_args(parser, text):\n    \"\"\"Split the text into words.\"\"\"\n'",
};

json tokens(const std::string& model, const std::string& prompt, const std::string& extra = "") {
  const CliResult result = run_cli("generate -q --json -t 2 -n 32 --ignore-eos --temp 0 -m '" +
                                   model + "' " + extra + " " + prompt);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  try {
    return json::parse(result.output).at("tokens");
  } catch (const json::exception& e) {
    ADD_FAILURE() << "no tokens (" << e.what() << "): " << result.output;
    return json::array();
  }
}

void expect_same_greedy_tokens(const std::string& original, const std::string& padded) {
  for (const std::string& prompt : kPrompts) {
    const json expected = tokens(original, prompt, "--draft-max 0");
    EXPECT_EQ(expected.size(), 32u);
    EXPECT_EQ(tokens(padded, prompt, "--draft-max 0"), expected) << prompt;
  }
}

TEST(PadModelCli, ShippedTargetKeptInQ8_0GeneratesTheSameTokens) {
  TempDir dir;
  const std::string padded = dir.file("padded.gguf");
  const CliResult made = run_cli("make-model --pad-from '" + kTarget +
                                 "' --layers 12 --ff 1536 --out '" + padded + "'");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find("12 layers, n_embd 384"), std::string::npos) << made.output;
  EXPECT_NE(made.output.find("n_ff 1536, vocab 8192"), std::string::npos) << made.output;
  // 9 -> 12 layers and 1024 -> 1536 FFN units: 20.45M -> 32.3M parameters.
  EXPECT_NE(made.output.find("32.3M parameters"), std::string::npos) << made.output;
  EXPECT_GT(std::filesystem::file_size(padded), std::filesystem::file_size(kTarget) * 3 / 2);
  expect_same_greedy_tokens(kTarget, padded);
  // The shipped draft speculates on it, and the output stays the plain one.
  EXPECT_EQ(tokens(padded, kPrompts[0], "-d '" + kDraft + "'"),
            tokens(kTarget, kPrompts[0], "--draft-max 0"));
}

TEST(PadModelCli, F16CopyGeneratesTheTokensOfTheF16Target) {
  TempDir dir;
  const std::string converted = dir.file("f16.gguf");
  const std::string padded = dir.file("padded-f16.gguf");
  CliResult made =
      run_cli("make-model --pad-from '" + kTarget + "' --type f16 --out '" + converted + "'");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  made = run_cli("make-model --pad-from '" + kTarget +
                 "' --layers 11 --ff 1280 --type f16 --out '" + padded + "'");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find("11 layers"), std::string::npos) << made.output;
  expect_same_greedy_tokens(converted, padded);
}

TEST(PadModelCli, BadFlagsGetSpecificErrors) {
  TempDir dir;
  const std::string out = " --out '" + dir.file("x.gguf") + "'";
  const std::string pad = "make-model --pad-from '" + kTarget + "' ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {pad + "--layers 5" + out, "--layers 5 must be in [9, 4096]"},
      {pad + "--ff 512" + out, "--ff 512 must be in [1024,"},
      {pad + "--ff 1040" + out, "multiple of 32"},
      {pad + "--layers 10 --type q5_0" + out, "not supported for padding"},
      {pad + "--layers 10 --type nonsense" + out, "--type nonsense is not a type"},
      {pad + "--layers 0" + out, "must be positive"},
      {pad + out, "needs --layers L"},
      {pad + "--layers 10 --heads 4" + out, "--heads cannot be combined with --pad-from"},
      {pad + "--layers 10 --from '" + kTarget + "'" + out, "cannot be combined"},
      {"make-model --pad-from '" + dir.file("missing.gguf") + "' --layers 10" + out,
       "missing.gguf"},
  };
  for (const auto& [args, words] : cases) {
    const CliResult result = run_cli(args);
    EXPECT_EQ(result.exit_code, 1) << args << "\n" << result.output;
    EXPECT_NE(result.output.find(words), std::string::npos) << args << "\n" << result.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

}  // namespace
}  // namespace specula::testing

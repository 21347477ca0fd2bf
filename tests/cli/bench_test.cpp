// `specula bench` end to end on a tiny target/draft pair: the JSON has every
// field with sensible values, the table and plots appear, bad flags fail
// with a message naming the flag. No timing assertions: only that times are
// positive and the counts and shapes are right.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

using nlohmann::json;

class Bench : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    draft_ = pair.draft;
  }
  static void TearDownTestSuite() { delete dir_; }

  // Tiny sizes: one thread (fast even on a busy machine), an 8 MiB bandwidth
  // buffer, 8-token prompt and generation, n = 1..max_verify.
  static std::string small_run(int max_verify = 5, const std::string& prompt = "-P 8") {
    return "bench -q -t 1 -r 2 -G 8 --bandwidth-mb 8 --max-verify " + std::to_string(max_verify) +
           " " + prompt + " -m " + target_;
  }

  static json run_json(const std::string& args) {
    const CliResult result = run_cli(args + " --json");
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
TempDir* Bench::dir_ = nullptr;
std::string Bench::target_, Bench::draft_;

void expect_spread(const json& spread, size_t n_samples, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(spread.is_object()) << spread;
  const double min = spread.at("min"), q1 = spread.at("q1"), median = spread.at("median"),
               q3 = spread.at("q3"), max = spread.at("max");
  EXPECT_GT(min, 0);
  EXPECT_LE(min, q1);
  EXPECT_LE(q1, median);
  EXPECT_LE(median, q3);
  EXPECT_LE(q3, max);
  EXPECT_EQ(spread.at("samples").size(), n_samples);
}

TEST_F(Bench, JsonWithDraftHasEveryField) {
  const json j = run_json(small_run() + " -d " + draft_ + " --draft-max-list 1,3");
  ASSERT_TRUE(j.contains("verify")) << j.dump(2);
  EXPECT_EQ(j.at("threads"), 1);
  EXPECT_EQ(j.at("kv_type"), "f16");  // the default
  EXPECT_EQ(j.at("repeats"), 2);
  EXPECT_EQ(j.at("prompt_tokens"), 8);
  EXPECT_EQ(j.at("gen_tokens"), 8);

  // F32 matrices read per forward: per layer q, k, v, o (32x32 each) and
  // gate, up, down (32x64 each), plus the 258x32 output matrix; norms: two
  // per layer and the final one, 32 floats each. The token embeddings are
  // looked up, not read whole, so they do not count.
  const uint64_t floats = 2 * (4 * 32 * 32 + 3 * 32 * 64) + 258 * 32 + (2 * 2 + 1) * 32;
  EXPECT_EQ(j.at("target_weight_bytes").get<uint64_t>(), floats * 4);
  EXPECT_GT(j.at("draft_weight_bytes").get<uint64_t>(), 0u);
  EXPECT_LT(j.at("draft_weight_bytes").get<uint64_t>(), floats * 4);

  EXPECT_EQ(j.at("read_bandwidth").at("buffer_bytes"), 8u << 20);
  // The bandwidth figure takes at least 3 samples.
  expect_spread(j.at("read_bandwidth").at("gb_per_second"), 3, "bandwidth");
  expect_spread(j.at("prefill").at("tokens_per_second"), 2, "prefill");
  expect_spread(j.at("decode").at("tokens_per_second"), 2, "decode");
  EXPECT_GT(j.at("decode").at("bandwidth_fraction").get<double>(), 0);
  EXPECT_GT(j.at("decode").at("bandwidth_limit_tokens_per_second").get<double>(), 0);

  const json& verify = j.at("verify");
  EXPECT_EQ(verify.at("context_tokens"), 8);
  ASSERT_EQ(verify.at("points").size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const json& point = verify.at("points")[i];
    EXPECT_EQ(point.at("rows"), i + 1);
    expect_spread(point.at("ratio"), 2, "verify ratio n=" + std::to_string(i + 1));
    expect_spread(point.at("seconds"), 2, "verify n=" + std::to_string(i + 1));
  }
  // t(1)/t(1) in every repeat.
  for (double ratio : verify.at("points")[0].at("ratio").at("samples")) EXPECT_EQ(ratio, 1.0);

  expect_spread(j.at("draft_forward_seconds"), 2, "draft forward");
  const json& speculative = j.at("speculative");
  ASSERT_EQ(speculative.size(), 2u);
  const int draft_max[] = {1, 3};
  for (size_t i = 0; i < 2; ++i) {
    const json& point = speculative[i];
    const int g = draft_max[i];
    SCOPED_TRACE("g=" + std::to_string(g));
    EXPECT_EQ(point.at("draft_max"), g);
    expect_spread(point.at("tokens_per_second"), 2, "speculative tokens/s");
    expect_spread(point.at("speedup"), 2, "speedup");
    const double acceptance = point.at("acceptance_rate");
    EXPECT_GE(acceptance, 0);
    EXPECT_LE(acceptance, 1);
    // Each target pass yields between 1 and g+1 tokens.
    const double per_pass = point.at("tokens_per_pass");
    EXPECT_GE(per_pass, 1);
    EXPECT_LE(per_pass, g + 1);
    // t(g+1) is on the curve (g+1 <= 5): a prediction exists.
    EXPECT_GT(point.at("predicted_speedup").get<double>(), 0);
    EXPECT_EQ(point.at("identical_to_plain"), true);
  }

  const json& memory = j.at("memory");
  EXPECT_GT(memory.at("peak_resident_bytes").get<uint64_t>(), 0u);
  EXPECT_EQ(memory.at("target_file_bytes").get<uint64_t>(), std::filesystem::file_size(target_));
  EXPECT_EQ(memory.at("draft_file_bytes").get<uint64_t>(), std::filesystem::file_size(draft_));
  EXPECT_GT(memory.at("target_kv_bytes").get<uint64_t>(), 0u);
  EXPECT_GT(memory.at("draft_kv_bytes").get<uint64_t>(), 0u);
}

TEST_F(Bench, WithoutDraftNoSpeculativeRows) {
  const json j = run_json(small_run(3, "-P 8 --kv-type f32"));
  ASSERT_TRUE(j.contains("speculative")) << j.dump(2);
  EXPECT_EQ(j.at("kv_type"), "f32");
  EXPECT_TRUE(j.at("speculative").empty());
  EXPECT_FALSE(j.contains("draft_forward_seconds"));
  EXPECT_EQ(j.at("verify").at("points").size(), 3u);
}

TEST_F(Bench, PredictionNeedsTheCurveToReachGPlusOne) {
  // g = 4 needs t(5), but the curve stops at n = 2.
  const json j = run_json(small_run(2) + " -d " + draft_ + " --draft-max-list 4");
  ASSERT_EQ(j.at("speculative").size(), 1u) << j.dump(2);
  EXPECT_TRUE(j.at("speculative")[0].at("predicted_speedup").is_null());
}

TEST_F(Bench, PromptTextSetsThePromptLength) {
  const json j = run_json(small_run(5, "--prompt 'hello world'"));
  // make-model's vocabulary: BOS, then one token per byte of the 11 bytes.
  EXPECT_EQ(j.at("prompt_tokens").get<int>(), 12);
}

TEST_F(Bench, TableNamesEveryMeasurement) {
  const CliResult result = run_cli(small_run() + " -d " + draft_ + " --draft-max-list 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* words :
       {"read bandwidth", "prefill", "decode", "verify cost", "speculative", "acceptance"}) {
    EXPECT_NE(result.output.find(words), std::string::npos) << words << " in " << result.output;
  }
}

TEST_F(Bench, ProgressUnlessQuiet) {
  const std::string args =
      "bench -t 1 -r 1 -P 4 -G 4 --max-verify 2 --bandwidth-mb 4 --json -m " + target_;
  const CliResult noisy = run_cli(args);
  EXPECT_EQ(noisy.exit_code, 0) << noisy.output;
  EXPECT_NE(noisy.output.find("bench ["), std::string::npos) << noisy.output;
  EXPECT_NE(noisy.output.find("decode: repeat 1/1"), std::string::npos) << noisy.output;
  const CliResult quiet = run_cli("-v " + args + " -q");  // not even with -v
  EXPECT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("bench ["), std::string::npos) << quiet.output;
}

bool is_png(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof magic);
  return in && std::string(magic, 8) == "\x89PNG\r\n\x1a\n";
}

// Runs the CLI with PATH emptied, so that gnuplot cannot be found.
CliResult run_cli_without_path(const std::string& args) {
  const std::string command =
      "PATH=/nonexistent " + std::string(SPECULA_CLI_PATH) + " " + args + " 2>&1 </dev/null";
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

TEST_F(Bench, PlotsWithoutGnuplotAreSkippedNotFatal) {
  const std::string plots = dir_->file("plots-no-gnuplot");
  const CliResult result = run_cli_without_path(small_run() + " -d " + draft_ +
                                                " --draft-max-list 1,2 --plot-dir " + plots);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("gnuplot is not installed"), std::string::npos) << result.output;
  // The data stay, ready for a later `gnuplot plots.gp`.
  EXPECT_TRUE(std::filesystem::exists(plots + "/verify-cost.dat"));
  EXPECT_TRUE(std::filesystem::exists(plots + "/speedup.dat"));
  EXPECT_TRUE(std::filesystem::exists(plots + "/plots.gp"));
  EXPECT_FALSE(std::filesystem::exists(plots + "/verify-cost.png"));
}

TEST_F(Bench, PlotsWithGnuplot) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "gnuplot is not installed";
  }
  const std::string plots = dir_->file("plots");
  const CliResult result =
      run_cli(small_run() + " -d " + draft_ + " --draft-max-list 1,2 --plot-dir " + plots);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(is_png(plots + "/verify-cost.png")) << result.output;
  EXPECT_TRUE(is_png(plots + "/speedup.png")) << result.output;
  // 5 verify points, one line each after the header.
  std::ifstream data(plots + "/verify-cost.dat");
  std::string line;
  int lines = 0;
  while (std::getline(data, line)) lines += line.empty() || line[0] == '#' ? 0 : 1;
  EXPECT_EQ(lines, 5);
}

void expect_flag_error(const CliResult& result, const std::string& words) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "killed by a signal: " << result.output;
  EXPECT_NE(result.output.find(words), std::string::npos)
      << "expected '" << words << "' in: " << result.output;
}

TEST_F(Bench, BadFlagsFailWithTheirName) {
  const std::string base = "bench -q -t 1 -m " + target_;
  expect_flag_error(run_cli(base + " --repeats 0"), "--repeats");
  expect_flag_error(run_cli(base + " --prompt-tokens 0"), "--prompt-tokens");
  expect_flag_error(run_cli(base + " --gen-tokens -1"), "--gen-tokens");
  expect_flag_error(run_cli(base + " --max-verify 0"), "--max-verify");
  expect_flag_error(run_cli(base + " -d " + draft_ + " --draft-max-list 1,x"), "--draft-max-list");
  expect_flag_error(run_cli(base + " -d " + draft_ + " --draft-max-list ,"), "--draft-max-list");
  expect_flag_error(run_cli(base + " -d " + draft_ + " --draft-max-list 0"), "--draft-max-list");
  expect_flag_error(run_cli(base + " --bandwidth-mb 0"), "--bandwidth-mb");
  expect_flag_error(run_cli(base + " --threads -1"), "--threads");
  expect_flag_error(run_cli(base + " --prompt hi --prompt-tokens 4"), "--prompt");
  expect_flag_error(run_cli(base + " --repeats many"), "repeats");
  expect_flag_error(run_cli(base + " --no-such-flag"), "no-such-flag");
  expect_flag_error(run_cli("bench -q"), "model");
  expect_flag_error(run_cli("bench -q -m " + dir_->file("absent.gguf")), "absent.gguf");
  expect_flag_error(run_cli(base + " -d " + dir_->file("nodraft.gguf")), "nodraft.gguf");
}

}  // namespace
}  // namespace specula::testing

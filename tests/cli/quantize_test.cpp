// End-to-end tests of `specula quantize`: every type round-trips through the
// built CLI (inspect shows the expected types, generate runs), the Q4_K_M
// mix follows llama.cpp's rule, and bad input fails with a clear message.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"

namespace specula {
namespace {

using testing::run_cli;
using testing::TempDir;

// The whitespace-separated fields of the line of `inspect_output` whose first
// field is `first`, or none. (No std::regex: GCC 12 warns inside it under
// the sanitizer build, and warnings are errors.)
std::vector<std::string> fields_of_line(const std::string& inspect_output,
                                        const std::string& first) {
  std::istringstream lines(inspect_output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;) fields.push_back(word);
    if (!fields.empty() && fields[0] == first) return fields;
  }
  return {};
}

// The type `inspect` prints for tensor `name`, or "" when it is not listed.
std::string tensor_type(const std::string& inspect_output, const std::string& name) {
  const auto fields = fields_of_line(inspect_output, name);
  return fields.size() >= 2 ? fields[1] : "";
}

// The value `inspect` prints for metadata key `key`, or "".
std::string metadata_value(const std::string& inspect_output, const std::string& key) {
  const auto fields = fields_of_line(inspect_output, key);
  return fields.size() >= 3 ? fields[2] : "";
}

// A 2-layer model with rows of 256 values (whole K-quant super-blocks).
std::string make_model(const TempDir& dir) {
  const std::string path = dir.file("model.gguf");
  const auto made = run_cli("make-model --out " + path +
                            " --embd 256 --layers 2 --ff 512 --heads 4 --type f16 --seed 3");
  EXPECT_EQ(made.exit_code, 0) << made.output;
  return path;
}

TEST(QuantizeCli, EveryTypeRoundTrips) {
  const TempDir dir;
  const std::string model = make_model(dir);
  const struct {
    const char* arg;
    const char* matrix_type;  // what inspect must show for blk.0.attn_q.weight
    const char* file_type;    // llama.cpp's llama_ftype
  } cases[] = {{"f32", "F32", "0"},    {"f16", "F16", "1"},    {"bf16", "BF16", "32"},
               {"q8_0", "Q8_0", "7"},  {"q4_0", "Q4_0", "2"},  {"q4_k", "Q4_K", "14"},
               {"q5_k", "Q5_K", "16"}, {"q6_k", "Q6_K", "18"}, {"Q4_K_M", "Q4_K", "15"}};
  for (const auto& c : cases) {
    const std::string out = dir.file(std::string(c.arg) + ".gguf");
    const auto quantized = run_cli("quantize " + model + " " + out + " " + c.arg);
    ASSERT_EQ(quantized.exit_code, 0) << c.arg << ": " << quantized.output;
    const auto inspected = run_cli("inspect " + out);
    ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
    EXPECT_EQ(tensor_type(inspected.output, "blk.0.attn_q.weight"), c.matrix_type) << c.arg;
    EXPECT_EQ(tensor_type(inspected.output, "blk.1.ffn_norm.weight"), "F32") << c.arg;
    EXPECT_EQ(metadata_value(inspected.output, "general.file_type"), c.file_type)
        << c.arg << "\n"
        << inspected.output;
    // Metadata is carried over: the tokenizer still loads and generate runs.
    const auto generated = run_cli("generate -m " + out + " --temp 0 -n 4 -q -t 1 hi");
    EXPECT_EQ(generated.exit_code, 0) << c.arg << ": " << generated.output;
  }
}

// llama.cpp's Q4_K_M on 2 layers: use_more_bits picks layer 1 of 2 (the last
// eighth), so blk.1's attn_v and ffn_down are Q6_K, blk.0's Q4_K; the output
// matrix is Q6_K.
TEST(QuantizeCli, Q4_K_MFollowsLlamaCppMix) {
  const TempDir dir;
  const std::string model = make_model(dir);
  const std::string out = dir.file("m.gguf");
  ASSERT_EQ(run_cli("quantize " + model + " " + out + " q4_k_m").exit_code, 0);
  const std::string listing = run_cli("inspect " + out).output;
  EXPECT_EQ(tensor_type(listing, "output.weight"), "Q6_K");
  EXPECT_EQ(tensor_type(listing, "token_embd.weight"), "Q4_K");
  EXPECT_EQ(tensor_type(listing, "blk.0.attn_v.weight"), "Q4_K");
  EXPECT_EQ(tensor_type(listing, "blk.1.attn_v.weight"), "Q6_K");
  EXPECT_EQ(tensor_type(listing, "blk.0.ffn_down.weight"), "Q4_K");
  EXPECT_EQ(tensor_type(listing, "blk.1.ffn_down.weight"), "Q6_K");
  EXPECT_EQ(tensor_type(listing, "blk.1.ffn_up.weight"), "Q4_K");
}

TEST(QuantizeCli, RowsNotWholeBlocksFallBackWithWarning) {
  const TempDir dir;
  const std::string model = dir.file("small.gguf");
  ASSERT_EQ(
      run_cli("make-model --out " + model + " --embd 96 --layers 1 --ff 192 --heads 2 --type f16")
          .exit_code,
      0);
  const std::string out = dir.file("q.gguf");
  const auto result = run_cli("quantize " + model + " " + out + " q4_k");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("not a multiple of the 256-value blocks"), std::string::npos)
      << result.output;
  EXPECT_EQ(tensor_type(run_cli("inspect " + out).output, "blk.0.attn_q.weight"), "Q8_0");
  EXPECT_EQ(run_cli("generate -m " + out + " --temp 0 -n 2 -q -t 1 hi").exit_code, 0);
}

TEST(QuantizeCli, BadTypeNamesTheValidOnes) {
  const TempDir dir;
  const std::string model = make_model(dir);
  const auto result = run_cli("quantize " + model + " " + dir.file("x.gguf") + " q3_k");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("unknown quantization type 'q3_k'"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m"), std::string::npos)
      << result.output;
}

TEST(QuantizeCli, MissingInputFails) {
  const TempDir dir;
  const auto result =
      run_cli("quantize " + dir.file("absent.gguf") + " " + dir.file("x.gguf") + " q8_0");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("absent.gguf"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace specula

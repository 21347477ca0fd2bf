// `specula train --gemm`: the flag's values, the line naming the backend,
// the fall-back notice, and a checkpoint resumed on the other backend.
// Skipped when the CLI has not been built (it is a separate target).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/cli_runner.h"
#include "learn/gemm_dnnl.h"

namespace specula {
namespace {

using testing::run_cli;
using testing::TempDir;

// A vocabulary and a corpus in `dir`; returns the train arguments of a
// model whose linear products pass the bf16 size threshold (8 x 32 rows
// by 64 wide).
std::string prepare(const TempDir& dir) {
  const std::string corpus = dir.file("corpus.py");
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 300; ++i) {
      out << "def f" << i % 17 << "(x):\n    return x * " << i % 7 << " + " << i % 5 << "\n\n";
    }
  }
  const auto vocab = run_cli("tokenizer train --input " + corpus + " --vocab-size 300 --out " +
                             dir.file("vocab.gguf"));
  EXPECT_EQ(vocab.exit_code, 0) << vocab.output;
  return "train --vocab " + dir.file("vocab.gguf") + " --input " + corpus +
         " --embd 64 --layers 1 --heads 2 --ff 128 --ctx 32 --seq-len 32 --batch 8 --warmup 2"
         " --eval-every 0 --log-every 1 --type f32 -t 2 --out " +
         dir.file("model.gguf");
}

TEST(CliGemm, BadValueIsOneClearError) {
  if (!std::filesystem::exists(SPECULA_CLI_PATH)) GTEST_SKIP() << "specula CLI not built";
  TempDir dir;
  const auto result = run_cli(prepare(dir) + " --steps 1 --gemm fp16");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("--gemm fp16 is not a matrix-product backend"), std::string::npos)
      << result.output;
}

TEST(CliGemm, NamesTheBackendAndResumesAcrossBackends) {
  if (!std::filesystem::exists(SPECULA_CLI_PATH)) GTEST_SKIP() << "specula CLI not built";
  TempDir dir;
  const std::string args = prepare(dir) + " --checkpoint " + dir.file("ck.gguf");
  const auto f32 = run_cli(args + " --steps 3 --gemm f32");
  ASSERT_EQ(f32.exit_code, 0) << f32.output;
  EXPECT_NE(f32.output.find("matrix products: f32"), std::string::npos) << f32.output;

  // The same run continued with bf16: where bf16 is unavailable, one line
  // says so and f32 goes on.
  const auto bf16 = run_cli(args + " --steps 6 --resume --gemm bf16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_NE(bf16.output.find("step 6/6 | loss "), std::string::npos) << bf16.output;
  if (bf16_gemm_support().usable()) {
    EXPECT_NE(bf16.output.find("matrix products: bf16 inputs, f32 accumulation, on oneDNN"),
              std::string::npos)
        << bf16.output;
  } else {
    EXPECT_NE(bf16.output.find("; using f32"), std::string::npos) << bf16.output;
    EXPECT_NE(bf16.output.find("matrix products: f32"), std::string::npos) << bf16.output;
  }
}

}  // namespace
}  // namespace specula

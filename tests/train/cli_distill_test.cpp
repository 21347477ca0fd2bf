// `specula distill` end to end on tiny models: it reports acceptance and the
// resulting speedup before and after, the acceptance rises, --init starts
// from a draft's weights, bad --init files are one clear error, and SIGINT
// leaves a checkpoint that --resume continues. Skipped when the CLI has not
// been built (it is a separate target).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/cli_runner.h"
#include "train/cli_train_util.h"

namespace specula {
namespace {

using testing::run_cli;
using testing::TempDir;

// A teacher trained for a few steps on a small Python-like corpus, with
// its tokenizer; returns the corpus path.
std::string make_teacher(const TempDir& dir) {
  const std::string corpus = test::write_python_corpus(dir, 300, 13);
  const auto vocab = test::train_vocabulary(dir, corpus);
  EXPECT_EQ(vocab.exit_code, 0) << vocab.output;
  const auto teacher = run_cli("train --vocab " + dir.file("vocab.gguf") + " --input " + corpus +
                               " --embd 64 --layers 2 --heads 2 --ctx 64 --seq-len 32 --batch 4"
                               " --steps 60 --warmup 5 --lr 3e-3 --eval-every 0 --type f32 -t 2"
                               " --out " +
                               dir.file("teacher.gguf"));
  EXPECT_EQ(teacher.exit_code, 0) << teacher.output;
  return corpus;
}

// "distill: acceptance WHEN: expected (T=1, 1-TVD) X ..." -> X (-1: absent).
double expected_acceptance(const std::string& output, const std::string& when) {
  const std::string key = "acceptance " + when + ": expected (T=1, 1-TVD) ";
  const size_t at = output.find(key);
  return at == std::string::npos ? -1.0 : std::stod(output.substr(at + key.size()));
}

std::string distill_args(const TempDir& dir, const std::string& corpus) {
  return "distill --teacher " + dir.file("teacher.gguf") + " --input " + corpus +
         " --seq-len 32 --batch 4 --warmup 5 --eval-every 0 --log-every 10"
         " --accept-window 32 --accept-windows 4 --type f32 -t 2";
}

TEST(CliDistill, ReportsAcceptanceAndSpeedupAndStartsFromInit) {
  if (!test::cli_built()) GTEST_SKIP() << "specula CLI not built";
  TempDir dir;
  const std::string corpus = make_teacher(dir);
  const std::string args = distill_args(dir, corpus) + " --speed-repeats 1";
  const auto first =
      run_cli(args + " --lr 3e-3 --embd 32 --layers 1 --heads 2 --ctx 64 --steps 40 --out " +
              dir.file("draft.gguf"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const double before = expected_acceptance(first.output, "before");
  const double after = expected_acceptance(first.output, "after");
  EXPECT_GT(after, before + 0.1) << first.output;
  EXPECT_NE(first.output.find("distill: speedup after over plain decoding"), std::string::npos)
      << first.output;
  EXPECT_NE(first.output.find("| g=4 "), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("| adaptive "), std::string::npos) << first.output;

  // --init draft.gguf: the second run starts where the first ended (its
  // "before" is the first run's "after", up to F32 round trips: equal).
  const auto second = run_cli(args + " --steps 2 --lr 1e-6 --min-lr 1e-7 --init " +
                              dir.file("draft.gguf") + " --out " + dir.file("draft2.gguf"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NEAR(expected_acceptance(second.output, "before"), after, 1e-3) << second.output;

  // An --init of another vocabulary (the tokenizer's own file has none of
  // the model keys) or a conflicting shape flag is one clear error.
  const auto conflicting = run_cli(args + " --steps 2 --layers 3 --init " + dir.file("draft.gguf") +
                                   " --out " + dir.file("bad.gguf"));
  EXPECT_EQ(conflicting.exit_code, 1);
  EXPECT_NE(conflicting.output.find("--layers 3 differs from"), std::string::npos)
      << conflicting.output;
  const auto not_a_model = run_cli(args + " --steps 2 --init " + dir.file("vocab.gguf") +
                                   " --out " + dir.file("bad.gguf"));
  EXPECT_EQ(not_a_model.exit_code, 1) << not_a_model.output;
  EXPECT_NE(not_a_model.output.find("vocab.gguf"), std::string::npos) << not_a_model.output;
}

TEST(CliDistill, SigintSavesACheckpointThatResumes) {
  if (!test::cli_built()) GTEST_SKIP() << "specula CLI not built";
  TempDir dir;
  const std::string corpus = make_teacher(dir);
  const std::string args = distill_args(dir, corpus) +
                           " --lr 3e-3 --embd 32 --layers 1 --heads 2 --ctx 64 --steps 100000"
                           " --speed-repeats 0 --checkpoint " +
                           dir.file("ck.gguf") + " --out " + dir.file("draft.gguf");
  // Started from a non-interactive shell with SIGINT ignored, as a script's
  // background job would be: the command must still stop on SIGINT.
  const std::string command =
      std::string("sh -c 'trap \"\" INT; timeout --preserve-status -s INT 3 ") + SPECULA_CLI_PATH +
      " " + args + "' > " + dir.file("log.txt") + " 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "interrupted runs exit 1";
  const std::string log = test::file_contents(dir.file("log.txt"));
  ASSERT_TRUE(std::filesystem::exists(dir.file("ck.gguf"))) << log;
  EXPECT_NE(log.find("checkpoint saved to"), std::string::npos) << log;
  const std::string key = "interrupted after step ";
  const size_t at = log.find(key);
  ASSERT_NE(at, std::string::npos) << log;
  const int64_t saved = std::stoll(log.substr(at + key.size()));
  // --resume (with a --steps just past the saved step) finishes the run.
  const auto resumed =
      run_cli(distill_args(dir, corpus) + " --lr 3e-3 --speed-repeats 0 --checkpoint " +
              dir.file("ck.gguf") + " --resume --steps " + std::to_string(saved + 2) + " --out " +
              dir.file("draft.gguf"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("after " + std::to_string(saved + 2) + " steps"), std::string::npos)
      << resumed.output;
}

}  // namespace
}  // namespace specula

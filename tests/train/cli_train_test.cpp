// `specula train` end to end: vocabulary -> model -> generate, the
// interrupt/resume path, and clear errors for bad flags. Skipped when the
// CLI has not been built (it is a separate target).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/child_process.h"
#include "cli/cli_runner.h"
#include "train/cli_train_util.h"

namespace specula {
namespace {

using testing::run_cli;
using testing::TempDir;

// Each test starts in a fresh folder holding a corpus and its vocabulary.
class CliTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::cli_built()) GTEST_SKIP() << "specula CLI not built";
    corpus_ = test::write_python_corpus(dir_, 200, 17);
    const auto vocabulary = test::train_vocabulary(dir_, corpus_);
    ASSERT_EQ(vocabulary.exit_code, 0) << vocabulary.output;
  }

  TempDir dir_;
  std::string corpus_;
};

std::string train_args(const TempDir& dir, const std::string& corpus) {
  return "train --vocab " + dir.file("vocab.gguf") + " --input " + corpus +
         " --embd 32 --layers 1 --heads 2 --ctx 32 --seq-len 16 --batch 2 --warmup 5"
         " --eval-every 50 --log-every 50 --type f32 -t 2";
}

TEST_F(CliTrain, TrainsAModelThatGenerateRuns) {
  const auto trained =
      run_cli(train_args(dir_, corpus_) + " --steps 100 --out " + dir_.file("model.gguf"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("step 100/100 | loss "), std::string::npos) << trained.output;
  EXPECT_NE(trained.output.find("tok/s | ETA"), std::string::npos) << trained.output;
  const auto generated =
      run_cli("generate -m " + dir_.file("model.gguf") + " -n 8 --temp 0 -q 'def f'");
  EXPECT_EQ(generated.exit_code, 0) << generated.output;
}

TEST_F(CliTrain, InterruptedRunResumesToTheSameModel) {
  const std::string args = train_args(dir_, corpus_) + " --steps 300";
  ASSERT_EQ(run_cli(args + " --out " + dir_.file("straight.gguf")).exit_code, 0);
  // SIGINT at some point of the run (wherever it lands, the resumed result
  // must be the same; if the run finished first, resuming has nothing left).
  const std::string checkpoint = " --checkpoint " + dir_.file("ck.gguf");
  const std::string command = std::string("sh -c 'timeout -s INT 0.3 ") + SPECULA_CLI_PATH + " " +
                              args + checkpoint + " --out " + dir_.file("resumed.gguf") + "' 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_TRUE(std::filesystem::exists(dir_.file("ck.gguf"))) << "no checkpoint after SIGINT";
  const auto resumed = run_cli(args + checkpoint + " --resume --out " + dir_.file("resumed.gguf"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const std::string bytes_a = test::file_contents(dir_.file("straight.gguf"));
  const std::string bytes_b = test::file_contents(dir_.file("resumed.gguf"));
  EXPECT_FALSE(bytes_a.empty());
  EXPECT_TRUE(bytes_a == bytes_b) << "resumed model differs from the uninterrupted one";
}

// Without --checkpoint, an interrupted run must not leave its partial model
// under --out's name, where a script would take it as finished (issue 15).
TEST_F(CliTrain, InterruptedRunWithoutCheckpointWritesAPartialModelNotOut) {
  const std::string out = dir_.file("model.gguf");
  testing::ChildProcess child({"train",   "--vocab",     dir_.file("vocab.gguf"),
                               "--input", corpus_,       "--embd",
                               "32",      "--layers",    "1",
                               "--heads", "2",           "--ctx",
                               "32",      "--seq-len",   "16",
                               "--batch", "2",           "--steps",
                               "1000000", "--log-every", "1",
                               "--type",  "f32",         "-t",
                               "2",       "--out",       out});
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(child.wait_for_output("step 2/1000000", 120)) << child.output();
  child.signal(SIGINT);
  EXPECT_EQ(child.finish(120), 1) << child.output();
  EXPECT_NE(child.output().find("the partial model so far is in " +
                                dir_.file("model.partial.gguf") + ", not " + out),
            std::string::npos)
      << child.output();
  EXPECT_FALSE(std::filesystem::exists(out)) << "an interrupted run wrote --out";
  const auto loads = run_cli("generate -m " + dir_.file("model.partial.gguf") + " -n 2 -q 'def'");
  EXPECT_EQ(loads.exit_code, 0) << loads.output;
}

TEST_F(CliTrain, InitStartsFromAModelAndChecksItsShape) {
  const auto base =
      run_cli(train_args(dir_, corpus_) + " --steps 30 --out " + dir_.file("base.gguf"));
  ASSERT_EQ(base.exit_code, 0) << base.output;
  // Held-out loss after the first step: a model continued from base.gguf
  // starts where base ended, far below a fresh random start (log 300 = 5.7).
  const std::string one_step = "train --vocab " + dir_.file("vocab.gguf") + " --input " + corpus_ +
                               " --ctx 32 --seq-len 16 --batch 2 --steps 1 --eval-every 1"
                               " --type f32 -t 2 --lr 1e-5 --min-lr 1e-6 --warmup 0";
  const auto fresh =
      run_cli(one_step + " --embd 32 --layers 1 --heads 2 --out " + dir_.file("fresh.gguf"));
  const auto continued =
      run_cli(one_step + " --init " + dir_.file("base.gguf") + " --out " + dir_.file("cont.gguf"));
  ASSERT_EQ(fresh.exit_code, 0) << fresh.output;
  ASSERT_EQ(continued.exit_code, 0) << continued.output;
  const auto last_eval_loss = [](const std::string& output) {
    const size_t at = output.rfind("| eval ");
    return at == std::string::npos ? -1.0 : std::stod(output.substr(at + 7));
  };
  EXPECT_GT(last_eval_loss(fresh.output), 5.0) << fresh.output;
  EXPECT_NEAR(last_eval_loss(continued.output), last_eval_loss(base.output), 0.01)
      << "base:\n"
      << base.output << "continued:\n"
      << continued.output;
  EXPECT_LT(last_eval_loss(continued.output), last_eval_loss(fresh.output) - 0.5);
  EXPECT_NE(continued.output.find("1 layers x 32 embd"), std::string::npos) << continued.output;

  const auto conflicting = run_cli(one_step + " --embd 64 --init " + dir_.file("base.gguf") +
                                   " --out " + dir_.file("bad.gguf"));
  EXPECT_EQ(conflicting.exit_code, 1);
  EXPECT_NE(conflicting.output.find("--embd 64 differs from"), std::string::npos)
      << conflicting.output;
  const auto absent =
      run_cli(one_step + " --init " + dir_.file("absent.gguf") + " --out " + dir_.file("bad.gguf"));
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_NE(absent.output.find("absent.gguf"), std::string::npos) << absent.output;
}

TEST_F(CliTrain, BadFlagsGiveOneClearError) {
  const std::string out = " --out " + dir_.file("m.gguf");
  const struct {
    std::string extra;
    std::string message;
  } cases[] = {
      {" --seq-len 512", "exceeds the model's context"},
      {" --resume --checkpoint " + dir_.file("none.gguf"), "no checkpoint at"},
      {" --type q4_0", "--type q4_0 is not supported"},
      {" --heads 3", "must be --heads 3 times an even head width"},
      {" --checkpoint-every 2", "--checkpoint-every needs --checkpoint"},
      {" --lr -1", "--lr -1 must be"},
  };
  const std::string minimal = "train --vocab " + dir_.file("vocab.gguf") + " --input " + corpus_ +
                              " --steps 5 --embd 32 --layers 1 --ctx 256 -t 1";
  for (const auto& c : cases) {
    const auto result = run_cli(minimal + c.extra + out);
    EXPECT_EQ(result.exit_code, 1) << c.extra << ": " << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << c.extra << ": " << result.output;
  }
  const auto missing = run_cli("train --vocab " + dir_.file("vocab.gguf") + " --input " +
                               dir_.file("absent.txt") + out);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read the text file " + dir_.file("absent.txt")),
            std::string::npos)
      << missing.output;
}

}  // namespace
}  // namespace specula

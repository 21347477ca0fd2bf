// Whole training runs on tiny models: a tiny corpus is learned, runs are
// deterministic for any thread count, and checkpoint -> resume continues
// bit-identically.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"

namespace specula {
namespace {

using test::repeated_sentence_corpus;

TrainOptions tiny_options() {
  TrainOptions o;
  o.shape.n_vocab = 32;
  o.shape.n_embd = 32;
  o.shape.n_layer = 2;
  o.shape.n_head = 4;
  o.shape.n_head_kv = 2;
  o.shape.n_ff = 64;
  o.shape.n_ctx = 32;
  o.batch = 4;
  o.seq_len = 24;
  o.steps = 150;
  o.lr = 1e-2f;
  o.min_lr = 1e-3f;
  o.warmup = 10;
  o.eval_tokens = 96;
  return o;
}

TEST(Trainer, OverfitsATinyCorpus) {
  ThreadPool pool(2);
  Trainer trainer(tiny_options(), repeated_sentence_corpus(), &pool);
  const double eval_before = trainer.evaluate();
  EXPECT_NEAR(eval_before, std::log(32.0), 0.3) << "small initial weights: near uniform";
  StepResult last;
  while (trainer.steps_done() < trainer.options().steps) last = trainer.step();
  EXPECT_EQ(last.step, 150);
  EXPECT_LT(last.loss, 0.25) << "training loss after 150 steps";
  EXPECT_LT(trainer.evaluate(), 0.25) << "held-out copy of the same sentence";
  EXPECT_EQ(trainer.tokens_seen(), 150u * 4 * 24);
}

std::vector<float> run_steps(int64_t steps, ThreadPool* pool) {
  TrainOptions o = tiny_options();
  o.steps = 20;
  Trainer trainer(o, repeated_sentence_corpus(), pool);
  for (int64_t i = 0; i < steps; ++i) trainer.step();
  return {trainer.parameters().begin(), trainer.parameters().end()};
}

TEST(Trainer, BitIdenticalForAnyThreadCount) {
  const std::vector<float> single = run_steps(4, nullptr);
  ThreadPool three(3);
  const std::vector<float> threaded = run_steps(4, &three);
  EXPECT_EQ(single, threaded);
  // And the steps did change the weights (the comparison is not vacuous).
  EXPECT_NE(single, run_steps(0, nullptr));
}

TEST(Trainer, DifferentSeedsDiffer) {
  TrainOptions a = tiny_options();
  TrainOptions b = a;
  b.seed = 2;
  Trainer ta(a, repeated_sentence_corpus(), nullptr);
  Trainer tb(b, repeated_sentence_corpus(), nullptr);
  EXPECT_FALSE(std::equal(ta.parameters().begin(), ta.parameters().end(), tb.parameters().begin()));
}

TEST(Trainer, CheckpointResumeIsBitIdentical) {
  ThreadPool pool(2);
  TrainOptions o = tiny_options();
  o.steps = 12;
  Trainer straight(o, repeated_sentence_corpus(), &pool);
  for (int i = 0; i < 12; ++i) straight.step();

  test::TempPath path("resume.ckpt.gguf");
  {
    Trainer first_half(o, repeated_sentence_corpus(), &pool);
    for (int i = 0; i < 5; ++i) first_half.step();
    first_half.save_checkpoint(path.str(), nullptr);
    first_half.step();  // work after the checkpoint is lost, as in a crash
  }
  std::unique_ptr<Trainer> resumed = Trainer::resume(path.str(), repeated_sentence_corpus(), &pool);
  EXPECT_EQ(resumed->steps_done(), 5);
  while (resumed->steps_done() < 12) resumed->step();

  EXPECT_TRUE(std::equal(straight.parameters().begin(), straight.parameters().end(),
                         resumed->parameters().begin()));
  EXPECT_TRUE(
      std::equal(straight.adam_m().begin(), straight.adam_m().end(), resumed->adam_m().begin()));
  EXPECT_TRUE(
      std::equal(straight.adam_v().begin(), straight.adam_v().end(), resumed->adam_v().begin()));
  EXPECT_EQ(straight.tokens_seen(), resumed->tokens_seen());
  EXPECT_EQ(straight.evaluate(), resumed->evaluate());
}

TEST(Trainer, CheckpointKeepsOptionsAndRunsAsAModel) {
  TrainOptions o = tiny_options();
  o.lr = 0.003f;
  o.seed = 99;
  Trainer trainer(o, repeated_sentence_corpus(), nullptr);
  trainer.step();
  test::TempPath path("options.ckpt.gguf");
  trainer.save_checkpoint(path.str(), nullptr);
  const Checkpoint c = read_checkpoint(path.str());
  EXPECT_EQ(c.options.lr, 0.003f);
  EXPECT_EQ(c.options.seed, 99u);
  EXPECT_EQ(c.options.shape.n_head_kv, 2);
  EXPECT_EQ(c.state.step, 1);
  EXPECT_EQ(c.state.loss_name, "cross_entropy");
}

TEST(Trainer, ResumeRefusesOtherData) {
  Trainer trainer(tiny_options(), repeated_sentence_corpus(), nullptr);
  trainer.step();
  test::TempPath path("data.ckpt.gguf");
  trainer.save_checkpoint(path.str(), nullptr);
  TokenCorpus other = repeated_sentence_corpus();
  other.train[7] = (other.train[7] + 1) % 32;
  EXPECT_THROW(Trainer::resume(path.str(), std::move(other), nullptr), Error);
}

TEST(Trainer, ResumeRefusesAModelWithoutTrainingState) {
  Trainer trainer(tiny_options(), repeated_sentence_corpus(), nullptr);
  test::TempPath path("model.gguf");
  trainer.write_model(path.str(), DType::kF32, nullptr, "plain model");
  try {
    Trainer::resume(path.str(), repeated_sentence_corpus(), nullptr);
    FAIL() << "resumed from a plain model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a specula training checkpoint"), std::string::npos)
        << e.what();
  }
}

TEST(Trainer, LoadParametersStartsFromAModelFile) {
  ThreadPool pool(2);
  TrainOptions o = tiny_options();
  o.steps = 5;
  Trainer pretrained(o, repeated_sentence_corpus(), &pool);
  while (pretrained.steps_done() < 5) pretrained.step();
  test::TempPath path("init.gguf");
  pretrained.write_model(path.str(), DType::kF32, nullptr, "pretrained");
  const std::unique_ptr<GgufReader> file = GgufReader::open(path.str());

  TrainOptions other_seed = o;
  other_seed.seed = 2;
  Trainer fine_tuned(other_seed, repeated_sentence_corpus(), &pool);
  ASSERT_FALSE(std::equal(fine_tuned.parameters().begin(), fine_tuned.parameters().end(),
                          pretrained.parameters().begin()));
  fine_tuned.load_parameters(*file);
  EXPECT_TRUE(std::equal(fine_tuned.parameters().begin(), fine_tuned.parameters().end(),
                         pretrained.parameters().begin()))
      << "F32 weights must load exactly";
  EXPECT_EQ(fine_tuned.evaluate(), pretrained.evaluate());
  fine_tuned.step();  // and training goes on from there
  EXPECT_THROW(fine_tuned.load_parameters(*file), Error) << "only before the first step";

  TrainOptions wider = o;
  wider.shape.n_ff = 96;
  Trainer mismatched(wider, repeated_sentence_corpus(), nullptr);
  try {
    mismatched.load_parameters(*file);
    FAIL() << "loaded a model of another shape";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ff 64"), std::string::npos) << e.what();
  }
}

TEST(Trainer, RejectsBadOptions) {
  TrainOptions o = tiny_options();
  o.seq_len = 64;  // > n_ctx 32
  EXPECT_THROW(Trainer(o, repeated_sentence_corpus(), nullptr), Error);
  o = tiny_options();
  o.min_lr = 1.0f;  // > lr
  EXPECT_THROW(Trainer(o, repeated_sentence_corpus(), nullptr), Error);
  o = tiny_options();
  TokenCorpus small;
  small.train = {1, 2, 3};
  EXPECT_THROW(Trainer(o, std::move(small), nullptr), Error);
  TokenCorpus out_of_vocab = repeated_sentence_corpus();
  out_of_vocab.train[0] = 32;
  EXPECT_THROW(Trainer(o, std::move(out_of_vocab), nullptr), Error);
}

}  // namespace
}  // namespace specula

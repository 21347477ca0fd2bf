// Distillation end to end on tiny shapes: a student distilled from a random
// teacher gets closer to it by the measure speculative decoding cares about
// (expected acceptance = 1 - TVD on held-out text), and a distillation run
// resumes from its checkpoint.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "learn/distill_loss.h"
#include "learn/random.h"
#include "model/make_model.h"
#include "train/distill_eval.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace specula {
namespace {

constexpr int32_t kVocab = 64;

std::vector<int32_t> random_tokens(size_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng.below(kVocab));
  return tokens;
}

std::unique_ptr<Model> make_teacher(const test::TempPath& path) {
  RandomModelOptions o;
  o.n_vocab = kVocab;
  o.n_embd = 32;
  o.n_layer = 1;
  o.n_head = 2;
  o.n_ctx = 64;
  o.seed = 7;
  write_random_model(o, path.str());
  return Model::load(path.str());
}

TrainOptions student_options(DistillDivergence) {
  TrainOptions o;
  o.shape.n_vocab = kVocab;
  o.shape.n_embd = 32;
  o.shape.n_layer = 1;
  o.shape.n_head = 2;
  o.shape.n_ctx = 64;
  o.batch = 4;
  o.seq_len = 32;
  o.steps = 200;
  o.lr = 1e-2f;
  o.min_lr = 1e-3f;
  o.warmup = 10;
  o.eval_every = 0;
  return o;
}

AcceptanceStats measure(const Trainer& trainer, const Model& teacher, const std::string& path,
                        ThreadPool* pool) {
  trainer.write_model(path, DType::kF32, nullptr, "student");
  const std::unique_ptr<Model> student = Model::load(path);
  return measure_acceptance(teacher, *student, trainer.corpus().eval, 32, 8, pool);
}

void expect_distillation_raises_acceptance(DistillDivergence divergence) {
  const test::TempPath teacher_path("distill_teacher.gguf");
  const test::TempPath student_path("distill_student.gguf");
  const std::unique_ptr<Model> teacher = make_teacher(teacher_path);
  ThreadPool pool(2);
  TokenCorpus corpus{random_tokens(20000, 1), random_tokens(512, 2), 0};
  Trainer trainer(student_options(divergence), corpus, &pool);
  trainer.set_loss(std::make_unique<DistillLoss>(teacher.get(), divergence, 1.0));
  const AcceptanceStats before = measure(trainer, *teacher, student_path.str(), &pool);
  while (trainer.steps_done() < trainer.options().steps) trainer.step();
  const AcceptanceStats after = measure(trainer, *teacher, student_path.str(), &pool);
  std::fprintf(stderr, "%s: expected acceptance %.3f -> %.3f, greedy agreement %.3f -> %.3f\n",
               std::string(distill_divergence_name(divergence)).c_str(), before.expected_acceptance,
               after.expected_acceptance, before.greedy_agreement, after.greedy_agreement);
  EXPECT_EQ(before.positions, 8 * 32);
  EXPECT_GT(after.expected_acceptance, before.expected_acceptance + 0.15)
      << "before " << before.expected_acceptance << " after " << after.expected_acceptance;
  EXPECT_GT(after.greedy_agreement, before.greedy_agreement)
      << "before " << before.greedy_agreement << " after " << after.greedy_agreement;
}

TEST(DistillEndToEnd, TvdRaisesExpectedAcceptance) {
  expect_distillation_raises_acceptance(DistillDivergence::kTotalVariation);
}

TEST(DistillEndToEnd, KlRaisesExpectedAcceptance) {
  expect_distillation_raises_acceptance(DistillDivergence::kForwardKl);
}

TEST(DistillEndToEnd, AcceptanceOfTheTeacherWithItselfIsOne) {
  const test::TempPath teacher_path("distill_self.gguf");
  const std::unique_ptr<Model> teacher = make_teacher(teacher_path);
  const std::vector<int32_t> text = random_tokens(64, 3);
  const AcceptanceStats self = measure_acceptance(*teacher, *teacher, text, 32, 2, nullptr);
  EXPECT_NEAR(self.expected_acceptance, 1.0, 1e-9);
  EXPECT_EQ(self.greedy_agreement, 1.0);
  EXPECT_EQ(self.greedy_positions, 2 * 16);
}

TEST(DistillEndToEnd, ResumeNeedsTheSameLoss) {
  const test::TempPath teacher_path("distill_resume_teacher.gguf");
  const test::TempPath checkpoint("distill_resume.ckpt.gguf");
  const std::unique_ptr<Model> teacher = make_teacher(teacher_path);
  TokenCorpus corpus{random_tokens(4000, 1), random_tokens(256, 2), 0};
  TrainOptions options = student_options(DistillDivergence::kTotalVariation);
  options.steps = 4;
  Trainer trainer(options, corpus, nullptr);
  trainer.set_loss(
      std::make_unique<DistillLoss>(teacher.get(), DistillDivergence::kTotalVariation, 1.0));
  trainer.step();
  trainer.save_checkpoint(checkpoint.str(), nullptr);
  // Resuming with the distillation loss passes the loss check...
  const std::unique_ptr<Trainer> resumed = Trainer::resume(
      checkpoint.str(), corpus, nullptr,
      std::make_unique<DistillLoss>(teacher.get(), DistillDivergence::kTotalVariation, 1.0));
  EXPECT_EQ(resumed->steps_done(), 1);
  // ...while the default cross-entropy, or another divergence, is refused.
  EXPECT_THROW(Trainer::resume(checkpoint.str(), corpus, nullptr), Error);
  EXPECT_THROW(Trainer::resume(checkpoint.str(), corpus, nullptr,
                               std::make_unique<DistillLoss>(teacher.get(),
                                                             DistillDivergence::kForwardKl, 1.0)),
               Error);
}

}  // namespace
}  // namespace specula

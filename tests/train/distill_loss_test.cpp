// The distillation divergences and their analytic gradients, checked in
// double precision against central finite differences on a tiny vocabulary,
// against values computed by hand, and at the optimum (student == teacher).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "learn/distill_loss.h"

namespace specula {
namespace {

std::vector<double> random_logits(int64_t n, uint32_t seed, double spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  std::vector<double> values(static_cast<size_t>(n));
  for (double& v : values) v = normal(rng);
  return values;
}

void expect_gradient_matches_finite_differences(DistillDivergence divergence, double temperature) {
  const int64_t rows = 3, vocab = 7;
  const std::vector<double> teacher = random_logits(rows * vocab, 11, 2.0);
  std::vector<double> student = random_logits(rows * vocab, 12, 2.0);
  std::vector<double> analytic(student.size());
  distill_divergence<double>(student.data(), teacher.data(), rows, vocab, divergence, temperature,
                             analytic.data(), nullptr);
  const double h = 1e-6;
  for (size_t i = 0; i < student.size(); ++i) {
    const double saved = student[i];
    student[i] = saved + h;
    const double up = distill_divergence<double>(student.data(), teacher.data(), rows, vocab,
                                                 divergence, temperature, nullptr, nullptr);
    student[i] = saved - h;
    const double down = distill_divergence<double>(student.data(), teacher.data(), rows, vocab,
                                                   divergence, temperature, nullptr, nullptr);
    student[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-7) << "logit " << i;
  }
}

TEST(DistillLoss, KlGradientMatchesFiniteDifferences) {
  expect_gradient_matches_finite_differences(DistillDivergence::kForwardKl, 1.0);
  expect_gradient_matches_finite_differences(DistillDivergence::kForwardKl, 2.5);
}

TEST(DistillLoss, TvdGradientMatchesFiniteDifferences) {
  expect_gradient_matches_finite_differences(DistillDivergence::kTotalVariation, 1.0);
  expect_gradient_matches_finite_differences(DistillDivergence::kTotalVariation, 0.7);
}

TEST(DistillLoss, ZeroLossAndGradientWhenStudentEqualsTeacher) {
  const int64_t rows = 4, vocab = 9;
  const std::vector<double> logits = random_logits(rows * vocab, 5, 3.0);
  for (const auto divergence :
       {DistillDivergence::kForwardKl, DistillDivergence::kTotalVariation}) {
    std::vector<double> gradient(logits.size(), 1.0);
    const double loss = distill_divergence<double>(logits.data(), logits.data(), rows, vocab,
                                                   divergence, 1.3, gradient.data(), nullptr);
    EXPECT_NEAR(loss, 0.0, 1e-15);
    for (const double g : gradient) EXPECT_NEAR(g, 0.0, 1e-15);
  }
}

TEST(DistillLoss, HandComputedValues) {
  // Teacher p = (1/2, 1/2) (equal logits); student q = (e/(1+e), 1/(1+e)).
  const double teacher[2] = {0.0, 0.0};
  const double student[2] = {1.0, 0.0};
  const double q0 = std::exp(1.0) / (1.0 + std::exp(1.0));
  const double kl = 0.5 * std::log(0.5 / q0) + 0.5 * std::log(0.5 / (1.0 - q0));
  EXPECT_NEAR(distill_divergence<double>(student, teacher, 1, 2, DistillDivergence::kForwardKl, 1.0,
                                         nullptr, nullptr),
              kl, 1e-12);
  EXPECT_NEAR(distill_divergence<double>(student, teacher, 1, 2, DistillDivergence::kTotalVariation,
                                         1.0, nullptr, nullptr),
              q0 - 0.5, 1e-12);
  // At T = 2 the student is softmax((0.5, 0)).
  const double q0_t2 = std::exp(0.5) / (1.0 + std::exp(0.5));
  EXPECT_NEAR(distill_divergence<double>(student, teacher, 1, 2, DistillDivergence::kTotalVariation,
                                         2.0, nullptr, nullptr),
              q0_t2 - 0.5, 1e-12);
}

TEST(DistillLoss, SameResultWithAndWithoutThreads) {
  const int64_t rows = 33, vocab = 50;
  const std::vector<double> teacher_d = random_logits(rows * vocab, 1, 2.0);
  const std::vector<double> student_d = random_logits(rows * vocab, 2, 2.0);
  const std::vector<float> teacher(teacher_d.begin(), teacher_d.end());
  const std::vector<float> student(student_d.begin(), student_d.end());
  std::vector<float> g1(student.size()), g3(student.size());
  ThreadPool pool(3);
  const double l1 =
      distill_divergence<float>(student.data(), teacher.data(), rows, vocab,
                                DistillDivergence::kTotalVariation, 1.0, g1.data(), nullptr);
  const double l3 =
      distill_divergence<float>(student.data(), teacher.data(), rows, vocab,
                                DistillDivergence::kTotalVariation, 1.0, g3.data(), &pool);
  EXPECT_EQ(l1, l3);
  EXPECT_EQ(g1, g3);
}

TEST(DistillLoss, NamesRoundTrip) {
  EXPECT_EQ(distill_divergence_from_name("kl"), DistillDivergence::kForwardKl);
  EXPECT_EQ(distill_divergence_from_name("tvd"), DistillDivergence::kTotalVariation);
  EXPECT_FALSE(distill_divergence_from_name("js").has_value());
}

}  // namespace
}  // namespace specula

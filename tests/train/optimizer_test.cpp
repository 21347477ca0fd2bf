// AdamW against hand-computed steps, the learning-rate schedule's values,
// gradient-norm clipping.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "learn/adamw.h"

namespace specula {
namespace {

// A layout whose first tensor (token_embd) does not decay and whose
// second matrix (blk.0.attn_q) does.
ParameterLayout small_layout() {
  TransformerShape shape;
  shape.n_vocab = 3;
  shape.n_embd = 2;
  shape.n_layer = 1;
  shape.n_head = 1;
  shape.n_ff = 2;
  shape.n_ctx = 4;
  return ParameterLayout(resolve_transformer_shape(shape));
}

TEST(AdamW, TwoStepsByHand) {
  const ParameterLayout layout = small_layout();
  const size_t embd = layout.token_embd();
  const size_t wq = layout.layer(0).wq;
  std::vector<float> params(layout.total(), 0.0f), grads(layout.total(), 0.0f);
  std::vector<float> m(layout.total(), 0.0f), v(layout.total(), 0.0f);
  params[embd] = 0.5f;
  params[wq] = 0.5f;
  grads[embd] = 0.2f;
  grads[wq] = 0.2f;
  AdamWOptions options;  // beta1 0.9, beta2 0.95, epsilon 1e-8
  options.weight_decay = 0.1f;
  // Step 1, lr 0.1: m = 0.02, v = 0.002, mhat = 0.2, vhat = 0.04, so the
  // Adam direction is 0.2 / 0.2 = 1. Without decay 0.5 - 0.1 = 0.4; with
  // decay 0.5 * (1 - 0.1 * 0.1) - 0.1 = 0.395.
  adamw_update(layout, options, 0.1f, 1, 1.0f, params, grads, m, v, nullptr);
  EXPECT_NEAR(m[embd], 0.02f, 1e-8);
  EXPECT_NEAR(v[embd], 0.002f, 1e-9);
  EXPECT_NEAR(params[embd], 0.4f, 1e-6);
  EXPECT_NEAR(params[wq], 0.395f, 1e-6);
  EXPECT_EQ(params[embd + 1], 0.0f) << "zero gradient, zero moments: no change";

  // Step 2, gradient -0.1, lr 0.05:
  // m = 0.9 * 0.02 - 0.01 = 0.008, v = 0.95 * 0.002 + 0.05 * 0.01 = 0.0024,
  // mhat = 0.008 / 0.19, vhat = 0.0024 / 0.0975.
  grads[embd] = -0.1f;
  adamw_update(layout, options, 0.05f, 2, 1.0f, params, grads, m, v, nullptr);
  const double direction = (0.008 / 0.19) / (std::sqrt(0.0024 / 0.0975) + 1e-8);
  EXPECT_NEAR(params[embd], 0.4 - 0.05 * direction, 1e-6);
}

TEST(AdamW, GradScaleMultipliesGradients) {
  const ParameterLayout layout = small_layout();
  std::vector<float> p1(layout.total(), 1.0f), p2 = p1, g1(layout.total(), 0.4f);
  std::vector<float> g2(layout.total(), 0.2f);
  std::vector<float> m1(layout.total(), 0.0f), v1 = m1, m2 = m1, v2 = m1;
  adamw_update(layout, AdamWOptions{}, 0.01f, 1, 0.5f, p1, g1, m1, v1, nullptr);
  adamw_update(layout, AdamWOptions{}, 0.01f, 1, 1.0f, p2, g2, m2, v2, nullptr);
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(v1, v2);
  EXPECT_EQ(p1, p2);
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
  const LearningRateSchedule s{1.0f, 0.1f, 10, 111};
  EXPECT_FLOAT_EQ(s.at(0), 0.1f);  // (0 + 1) / 10
  EXPECT_FLOAT_EQ(s.at(4), 0.5f);
  EXPECT_FLOAT_EQ(s.at(9), 1.0f);
  EXPECT_FLOAT_EQ(s.at(10), 1.0f);   // decay starts at the peak
  EXPECT_FLOAT_EQ(s.at(60), 0.55f);  // halfway: floor + (peak - floor) / 2
  EXPECT_NEAR(s.at(35), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-6);
  EXPECT_FLOAT_EQ(s.at(110), 0.1f);  // the last step
  EXPECT_FLOAT_EQ(s.at(500), 0.1f);  // past the end (a longer resumed run)
  const LearningRateSchedule no_warmup{2.0f, 0.0f, 0, 3};
  EXPECT_FLOAT_EQ(no_warmup.at(0), 2.0f);
  EXPECT_FLOAT_EQ(no_warmup.at(1), 1.0f);
  EXPECT_NEAR(no_warmup.at(2), 0.0f, 1e-7);
}

TEST(Clipping, NormAndScale) {
  std::vector<float> grads(100000, 0.0f);
  grads[3] = 3.0f;
  grads[99999] = 4.0f;
  EXPECT_DOUBLE_EQ(gradient_norm(grads, nullptr), 5.0);
  ThreadPool pool(3);
  EXPECT_DOUBLE_EQ(gradient_norm(grads, &pool), 5.0);
  EXPECT_FLOAT_EQ(clip_scale(5.0, 1.0f), static_cast<float>(1.0 / (5.0 + 1e-6)));
  EXPECT_EQ(clip_scale(0.5, 1.0f), 1.0f);
  EXPECT_EQ(clip_scale(5.0, 0.0f), 1.0f) << "0 turns clipping off";
}

}  // namespace
}  // namespace specula

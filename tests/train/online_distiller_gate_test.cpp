// The online learner's pacing (train/online_distiller.h): its thread takes
// no step before the buffer holds a batch and never more than
// max_steps_per_window per stored window, the warm-up makes the first
// updates small, and the published weights are a moving average. Both keep a fast learner on slow
// generation from overfitting its first windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>
#include <vector>

#include "learn/random.h"
#include "model/make_model.h"
#include "online/online_distiller.h"
#include "train/online_distill_test_util.h"

namespace specula {
namespace {

using namespace test;  // online_distill_test_util.h: models, tokens, logits

// One whole sequence observed and ended: one window in the buffer.
void observe_sequence(OnlineDistiller& distiller, const Model& target, uint64_t seed) {
  observe_whole(distiller, target, random_tokens(12, seed));
}

// The learner may take all the CPU it wants: only the pacing limits it.
OnlineDistillOptions options_for_tests() {
  OnlineDistillOptions o = small_options();
  o.cpu_fraction = 1.0;
  return o;
}

uint64_t wait_until_steps_settle(const OnlineDistiller& distiller) {
  // Bounded: the learner steps in milliseconds on this tiny model.
  uint64_t steps = distiller.stats().steps;
  for (int quiet = 0, i = 0; quiet < 20 && i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t now = distiller.stats().steps;
    quiet = now == steps ? quiet + 1 : 0;
    steps = now;
  }
  return steps;
}

TEST(OnlineDistillerPacing, WaitsForABatchThenForNewData) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = options_for_tests();
  options.replay = 1.5;
  OnlineDistiller distiller(*draft, options);
  distiller.start();
  for (uint64_t seed = 0; seed < 3; ++seed) observe_sequence(distiller, *target, 100 + seed);
  ASSERT_EQ(distiller.stats().stored_samples, 3u);  // the learner idles: nothing is busy
  EXPECT_EQ(wait_until_steps_settle(distiller), 0u) << "stepped with fewer windows than a batch";

  for (uint64_t seed = 3; seed < 8; ++seed) observe_sequence(distiller, *target, 100 + seed);
  const uint64_t steps = wait_until_steps_settle(distiller);
  const uint64_t stored = distiller.stats().stored_samples;
  ASSERT_GE(stored, 4u);
  // It stops at the first step count >= 1.5 x stored windows.
  EXPECT_EQ(steps, static_cast<uint64_t>(std::ceil(1.5 * static_cast<double>(stored))));

  observe_sequence(distiller, *target, 200);  // new data: more steps
  observe_sequence(distiller, *target, 201);
  const uint64_t more = wait_until_steps_settle(distiller);
  EXPECT_GT(more, steps);
  EXPECT_EQ(more, static_cast<uint64_t>(
                      std::ceil(1.5 * static_cast<double>(distiller.stats().stored_samples))));
  distiller.stop();
}

// Largest change of any logit after one step from the draft's weights.
float first_step_change(int32_t warmup_steps, double average_decay = 0.0) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = options_for_tests();
  options.warmup_steps = warmup_steps;
  options.average_decay = average_decay;
  OnlineDistiller distiller(*draft, options);
  for (uint64_t seed = 0; seed < 4; ++seed) observe_sequence(distiller, *target, 300 + seed);
  EXPECT_TRUE(distiller.step());
  distiller.publish();
  const std::vector<int32_t> probe = random_tokens(10, 9);
  const std::vector<float> before = all_logits(*draft, probe);
  const std::vector<float> after = all_logits(*distiller.published(), probe);
  float change = 0.0f;
  for (size_t i = 0; i < before.size(); ++i) {
    change = std::max(change, std::abs(after[i] - before[i]));
  }
  return change;
}

TEST(OnlineDistillerPacing, WarmUpMakesTheFirstStepSmall) {
  const float full = first_step_change(0);
  const float warm = first_step_change(20);  // the first step at lr / 20
  EXPECT_GT(full, 0.0f);
  EXPECT_LT(warm, 0.25f * full) << "full " << full << ", warm-up " << warm;
}

// The published weights are the moving average: after one step they have
// moved (1 - decay) of the way, so the logits change far less.
TEST(OnlineDistillerPacing, PublishesTheMovingAverage) {
  const float latest = first_step_change(0, 0.0);
  const float averaged = first_step_change(0, 0.99);
  EXPECT_GT(averaged, 0.0f);
  EXPECT_LT(averaged, 0.05f * latest) << "latest " << latest << ", averaged " << averaged;
}

}  // namespace
}  // namespace specula

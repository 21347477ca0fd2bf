// Online distillation's learner (train/online_distiller.h): what it stores
// from the target's rows, the replay buffer's byte budget, publishing, the
// learner thread's start/stop, and that it learns: a random draft that
// observes a random target on repeated contexts gets a higher expected
// acceptance sum min(p, q) on them (measured by distill_eval, not by the
// distiller).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "learn/random.h"
#include "model/make_model.h"
#include "online/online_distiller.h"
#include "train/distill_eval.h"
#include "train/online_distill_test_util.h"

namespace specula {
namespace {

using namespace test;  // online_distill_test_util.h: models, tokens, logits

TEST(OnlineDistiller, StoresTheTopKOfTheTargetsDistribution) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.top_k = 4;
  options.temperature = 0.5f;
  OnlineDistiller distiller(*draft, options);
  const std::vector<int32_t> context = random_tokens(6, 3);
  const std::vector<float> logits = all_logits(*target, context);
  // Rows for positions 3 and 4: they score the tokens after context[2], context[3].
  distiller.observe(context, 3, std::span<const float>(logits).subspan(2 * kVocab, 2 * kVocab), 2,
                    kVocab);
  distiller.end_sequence();
  EXPECT_EQ(distiller.stats().stored_samples, 1u);
  EXPECT_EQ(distiller.stats().observed_rows, 2u);

  // The window starts at 0 (the sequence is shorter than half a window)
  // and ends at the last row's input.
  SplitMix64 rng(1);
  std::vector<ReplaySample> drawn;
  ASSERT_EQ(distiller.buffer().draw(1, rng, drawn), 1u);
  const ReplaySample& sample = drawn[0];
  EXPECT_EQ(sample.tokens, std::vector<int32_t>(context.begin(), context.begin() + 4));
  EXPECT_EQ(sample.target_index, (std::vector<int32_t>{2, 3}));
  ASSERT_EQ(sample.top_k, 4);
  for (int row = 0; row < 2; ++row) {
    // softmax(logits / 0.5), computed here.
    const float* l = logits.data() + (2 + row) * kVocab;
    std::vector<double> p(kVocab);
    const double m = *std::max_element(l, l + kVocab);
    double sum = 0;
    for (int i = 0; i < kVocab; ++i) sum += p[i] = std::exp((l[i] - m) / 0.5);
    for (double& v : p) v /= sum;
    std::vector<int32_t> ids(kVocab);
    std::iota(ids.begin(), ids.end(), 0);
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
    std::vector<int32_t> stored(sample.ids.begin() + row * 4, sample.ids.begin() + row * 4 + 4);
    std::vector<int32_t> expected(ids.begin(), ids.begin() + 4);
    std::sort(stored.begin(), stored.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(stored, expected);
    double kept = 0;
    for (int k = 0; k < 4; ++k) {
      const int32_t id = sample.ids[row * 4 + k];
      EXPECT_NEAR(sample.probs[row * 4 + k], p[id], 1e-6);
      kept += p[id];
    }
    EXPECT_NEAR(sample.tail[row], 1.0 - kept, 1e-6);
  }
}

TEST(OnlineDistiller, MergesTheStepsOfOneSequenceIntoAWindow) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.window = 8;
  OnlineDistiller distiller(*draft, options);
  const std::vector<int32_t> context = random_tokens(20, 4);
  const std::vector<float> logits = all_logits(*target, context);
  // Steps of 1-3 rows, as verification passes give them: positions 2.., one
  // growing sequence.
  int32_t position = 2;
  for (int32_t rows : {1, 3, 2, 1, 3, 2, 3, 1}) {
    distiller.observe(
        context, position,
        std::span<const float>(logits).subspan((position - 1) * kVocab, rows * kVocab), rows,
        kVocab);
    position += rows;
  }
  distiller.end_sequence();
  const OnlineDistillStats stats = distiller.stats();
  EXPECT_EQ(stats.observed_rows, 16u);
  // 16 rows over windows of 8 tokens: fewer windows than steps (8), more than one.
  EXPECT_GE(stats.stored_samples, 2u);
  EXPECT_LT(stats.stored_samples, 8u);
  // Every stored window is a piece of the sequence from position 0 of the
  // draft's view, and its targets are the target's rows at those inputs.
  SplitMix64 rng(2);
  std::vector<ReplaySample> drawn;
  distiller.buffer().draw(20, rng, drawn);
  for (const ReplaySample& s : drawn) {
    ASSERT_LE(s.tokens.size(), 8u);
    const auto it = std::search(context.begin(), context.end(), s.tokens.begin(), s.tokens.end());
    ASSERT_NE(it, context.end());
    const auto start = static_cast<size_t>(it - context.begin());
    for (size_t t = 0; t < s.target_index.size(); ++t) {
      const size_t input = start + static_cast<size_t>(s.target_index[t]);
      // Whole rows: probs[argmax of the target's row] is the largest.
      const float* l = logits.data() + input * kVocab;
      const auto target_argmax = std::max_element(l, l + kVocab) - l;
      const float* p = s.probs.data() + t * kVocab;
      EXPECT_EQ(std::max_element(p, p + kVocab) - p, target_argmax);
    }
  }
}

TEST(OnlineDistiller, ReplayBufferStaysWithinItsBudget) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.memory_bytes = 8192;
  options.window = 8;
  options.top_k = 8;
  OnlineDistiller distiller(*draft, options);
  for (uint64_t seed = 0; seed < 60; ++seed) {
    observe_whole(distiller, *target, random_tokens(9, 100 + seed));
    EXPECT_LE(distiller.stats().buffer_bytes, 8192u);
  }
  const OnlineDistillStats stats = distiller.stats();
  EXPECT_EQ(stats.stored_samples, 60u);
  EXPECT_GT(stats.evicted_samples, 0u);
  EXPECT_EQ(stats.buffer_samples + stats.evicted_samples, 60u);
  // A window (8 rows of 8 ids, 8 probabilities) is a few hundred bytes:
  // 8 KiB holds more than one but not sixty.
  EXPECT_GT(stats.buffer_samples, 1u);
}

TEST(OnlineDistiller, DropsAWindowLargerThanTheBudget) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.memory_bytes = 4096;
  options.window = 64;
  options.top_k = 0;  // 40 whole rows of 32 floats: 5 KiB
  OnlineDistiller distiller(*draft, options);
  observe_whole(distiller, *target, random_tokens(41, 5));
  EXPECT_EQ(distiller.stats().dropped_samples, 1u);
  EXPECT_EQ(distiller.stats().buffer_samples, 0u);
  EXPECT_EQ(distiller.stats().buffer_bytes, 0u);
  EXPECT_FALSE(distiller.step());  // nothing to learn from
}

TEST(OnlineDistiller, PublishingUnchangedWeightsGivesTheDraftsLogits) {
  const auto draft = random_model(11, 2);
  OnlineDistiller distiller(*draft, small_options());
  EXPECT_EQ(distiller.published(), nullptr);
  EXPECT_EQ(distiller.published_version(), 0u);
  distiller.publish();
  uint64_t version = 0;
  const std::shared_ptr<const Model> published = distiller.published(&version);
  ASSERT_NE(published, nullptr);
  EXPECT_EQ(version, 1u);
  const std::vector<int32_t> tokens = random_tokens(12, 6);
  const std::vector<float> a = all_logits(*draft, tokens);
  const std::vector<float> b = all_logits(*published, tokens);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
}

TEST(OnlineDistiller, RefusesBadOptions) {
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.cpu_fraction = 0.0;
  EXPECT_THROW(OnlineDistiller(*draft, options), Error);
  options = small_options();
  options.threads = 0;
  EXPECT_THROW(OnlineDistiller(*draft, options), Error);
  options = small_options();
  options.memory_bytes = 100;
  EXPECT_THROW(OnlineDistiller(*draft, options), Error);
  options = small_options();
  options.publish_type = DType::kQ8_0;
  EXPECT_THROW(OnlineDistiller(*draft, options), Error);
  // The message names the public field at fault.
  options = small_options();
  options.loss = "l2";
  try {
    OnlineDistiller distiller(*draft, options);
    ADD_FAILURE() << "loss 'l2' was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("EngineConfig::online_distill.loss is 'l2'"),
              std::string::npos)
        << e.what();
  }
}

// The draft learns: expected acceptance on the observed contexts rises.
void expect_learning_raises_acceptance(DistillDivergence loss, int32_t top_k) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.loss = std::string(distill_divergence_name(loss));
  options.top_k = top_k;
  OnlineDistiller distiller(*draft, options);
  std::vector<int32_t> all;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const std::vector<int32_t> context = random_tokens(16, 40 + seed);
    observe_whole(distiller, *target, context);
    all.insert(all.end(), context.begin(), context.end());
  }
  const AcceptanceStats before = measure_acceptance(*target, *draft, all, 16, 4, nullptr);
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(distiller.step());
  distiller.publish();
  const AcceptanceStats after =
      measure_acceptance(*target, *distiller.published(), all, 16, 4, nullptr);
  std::fprintf(stderr, "online distillation (%s, top-k %d): expected acceptance %.3f -> %.3f\n",
               std::string(distill_divergence_name(loss)).c_str(), top_k,
               before.expected_acceptance, after.expected_acceptance);
  EXPECT_GT(after.expected_acceptance, before.expected_acceptance + 0.15);
  EXPECT_EQ(distiller.stats().steps, 150u);
}

TEST(OnlineDistiller, LearningRaisesAcceptanceTvd) {
  expect_learning_raises_acceptance(DistillDivergence::kTotalVariation, 0);
}

TEST(OnlineDistiller, LearningRaisesAcceptanceKlTopK) {
  expect_learning_raises_acceptance(DistillDivergence::kForwardKl, 8);
}

TEST(OnlineDistiller, StepsAreDeterministic) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  std::vector<float> logits[2];
  for (int run = 0; run < 2; ++run) {
    OnlineDistillOptions options = small_options();
    options.threads = run + 1;  // and independent of the learner's threads
    OnlineDistiller distiller(*draft, options);
    for (uint64_t seed = 0; seed < 3; ++seed) {
      observe_whole(distiller, *target, random_tokens(10, 70 + seed));
    }
    for (int i = 0; i < 5; ++i) distiller.step();
    distiller.publish();
    logits[run] = all_logits(*distiller.published(), random_tokens(8, 9));
  }
  EXPECT_EQ(logits[0], logits[1]);
}

TEST(OnlineDistiller, LearnerThreadStepsPublishesAndStops) {
  const auto target = random_model(7);
  const auto draft = random_model(11);
  OnlineDistillOptions options = small_options();
  options.publish_every = 2;
  options.cpu_fraction = 1.0;
  options.threads = 2;
  auto distiller = std::make_unique<OnlineDistiller>(*draft, options);
  distiller->start();
  distiller->start();  // a second start is a no-op
  EXPECT_TRUE(distiller->running());
  // Observing while the thread trains (the buffer may be busy: drops are fine).
  for (uint64_t seed = 0; seed < 20; ++seed) {
    observe_whole(*distiller, *target, random_tokens(12, 200 + seed));
  }
  // Waits (bounded) for the thread to publish twice.
  for (int i = 0; i < 6000 && distiller->published_version() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(distiller->published_version(), 2u);
  distiller->stop();
  EXPECT_FALSE(distiller->running());
  const uint64_t steps = distiller->stats().steps;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(distiller->stats().steps, steps);  // stopped means stopped
  distiller->stop();                           // idempotent
  distiller->start();                          // and it restarts
  distiller.reset();                           // the destructor joins a running thread
}

}  // namespace
}  // namespace specula

// The Drafter hooks the policies and online distillation rely on:
// observe_target() receives the target's raw logits for exactly the verified
// positions, and ModelDrafter reports its confidence per drafted token and
// stops at out.stop_confidence.
#include <gtest/gtest.h>

#include <cmath>

#include "drafters/model_drafter.h"
#include "spec/model_files.h"
#include "speculative/generator.h"

namespace specula {
namespace {

RandomModelOptions hook_model() {
  RandomModelOptions options;
  options.n_vocab = 24;
  options.n_embd = 32;
  options.n_head = 2;
  options.n_layer = 3;
  options.n_ctx = 64;
  options.seed = 3;
  return options;
}

class DrafterHooks : public testing::SuiteModelPair<DrafterHooks, hook_model> {};

struct Observation {
  std::vector<int32_t> context;
  int32_t first_position = 0;
  std::vector<float> logits;
  int32_t n_rows = 0;
  int32_t n_accepted = -1;  // from the accept() that followed, if any
};

// A ModelDrafter that records what observe_target() and accept() receive.
class ObservingDrafter : public ModelDrafter {
 public:
  using ModelDrafter::ModelDrafter;
  void observe_target(std::span<const int32_t> context, int32_t first_position,
                      std::span<const float> target_logits, int32_t n_rows,
                      int32_t n_vocab) override {
    EXPECT_EQ(target_logits.size(), static_cast<size_t>(n_rows) * n_vocab);
    observations.push_back({std::vector<int32_t>(context.begin(), context.end()), first_position,
                            std::vector<float>(target_logits.begin(), target_logits.end()), n_rows,
                            -1});
  }
  void accept(std::span<const int32_t> context, int32_t n_accepted) override {
    if (!observations.empty()) observations.back().n_accepted = n_accepted;
    ModelDrafter::accept(context, n_accepted);
  }
  std::vector<Observation> observations;
};

TEST_F(DrafterHooks, ObserveTargetGetsTheRawLogitsOfTheVerifiedPositions) {
  const int32_t n_vocab = target().config().n_vocab;
  const std::vector<int32_t> prompt = {1, 5, 7};
  for (float temperature : {0.0f, 1.0f}) {
    Generator generator(target(), 48, nullptr);
    ObservingDrafter drafter(draft(), 48, nullptr);
    GeneratorOptions options;
    options.sampling.temperature = temperature;
    options.sampling.seed = 4;
    options.max_new_tokens = 30;
    options.draft_max = 4;
    const GenerationOutput out = generator.generate(prompt, &drafter, options);
    ASSERT_EQ(drafter.observations.size(), static_cast<size_t>(out.stats.target_passes));
    int32_t length = static_cast<int32_t>(prompt.size());
    int64_t rows_seen = 0;
    for (const Observation& o : drafter.observations) {
      SCOPED_TRACE("temperature " + std::to_string(temperature) + ", position " +
                   std::to_string(o.first_position));
      EXPECT_EQ(o.first_position, length);
      ASSERT_GE(o.n_rows, 1);
      if (o.n_accepted >= 0) {
        EXPECT_EQ(o.n_rows, o.n_accepted + 1);
      }
      ASSERT_GE(o.context.size(), static_cast<size_t>(o.first_position + o.n_rows - 1));
      for (int32_t i = 0; i < o.n_rows; ++i) {
        const std::vector<float> expected = testing::fresh_last_logits(
            target(), std::span<const int32_t>(o.context).first(o.first_position + i));
        for (int32_t v = 0; v < n_vocab; ++v) {
          ASSERT_NEAR(o.logits[static_cast<size_t>(i) * n_vocab + v], expected[v],
                      1e-3f * (1.0f + std::fabs(expected[v])))
              << "row " << i << ", id " << v;
        }
      }
      length = static_cast<int32_t>(o.context.size());
      rows_seen += o.n_rows;
    }
    // Every emitted token's position was scored by exactly one passed row.
    EXPECT_EQ(rows_seen, out.stats.generated_tokens);
  }
}

TEST_F(DrafterHooks, ModelDrafterReportsItsConfidence) {
  ModelDrafter drafter(draft(), 32, nullptr);
  const std::vector<int32_t> context = {3, 9, 2, 11};
  drafter.begin(context);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Rng rng(1);
  DraftProposal proposal;
  drafter.propose(context, 1, greedy, rng, proposal);
  ASSERT_EQ(proposal.tokens.size(), 1u);
  ASSERT_EQ(proposal.confidence.size(), 1u);
  // Greedy: the untransformed softmax probability of the argmax, computed
  // here independently from fresh logits.
  const std::vector<float> logits = testing::fresh_last_logits(draft(), context);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  EXPECT_NEAR(proposal.confidence[0], std::exp(logits[proposal.tokens[0]]) / sum, 1e-4);

  SamplingParams sampled;
  sampled.temperature = 1.5f;
  sampled.top_k = 0;
  sampled.top_p = 1.0f;
  sampled.min_p = 0.0f;
  drafter.propose(context, 3, sampled, rng, proposal);
  ASSERT_EQ(proposal.tokens.size(), 3u);
  ASSERT_EQ(proposal.confidence.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(proposal.confidence[i], proposal.probs[i][proposal.tokens[i]]);
  }
}

TEST_F(DrafterHooks, ModelDrafterStopsBelowTheConfidenceThreshold) {
  ModelDrafter drafter(draft(), 32, nullptr);
  const std::vector<int32_t> context = {3, 9, 2, 11};
  drafter.begin(context);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Rng rng(1);
  DraftProposal proposal;
  drafter.propose(context, 6, greedy, rng, proposal);
  ASSERT_EQ(proposal.tokens.size(), 6u);
  const std::vector<float> full = proposal.confidence;
  const std::vector<int32_t> full_tokens = proposal.tokens;
  // With the threshold just above token j's confidence, the draft ends at
  // the first token at or before j whose confidence is below it.
  for (size_t j = 0; j < full.size(); ++j) {
    proposal.stop_confidence = full[j] + 1e-6f;
    drafter.propose(context, 6, greedy, rng, proposal);
    size_t expected = 0;
    while (full[expected] >= proposal.stop_confidence) ++expected;
    ++expected;  // the doubted token itself is proposed
    EXPECT_EQ(proposal.tokens.size(), expected) << "j = " << j;
    EXPECT_EQ(proposal.tokens,
              std::vector<int32_t>(full_tokens.begin(), full_tokens.begin() + expected));
    EXPECT_FLOAT_EQ(proposal.stop_confidence, full[j] + 1e-6f);  // an input, kept
  }
}

}  // namespace
}  // namespace specula

// SelfDrafter and Model::forward_first_layers: with every layer it drafts
// exactly the target's argmax (greedy acceptance 100%); with k layers it
// drafts exactly what a separate draft file holding the target's first k
// layers drafts (written by write_draft_model, run by ModelDrafter);
// robustness, and exactness through the Generator (greedy identity,
// chi-square at T = 1).
#include "drafters/self_drafter.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "drafters/model_drafter.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"

namespace specula {
namespace {

RandomModelOptions model_options(int32_t n_vocab, int32_t n_embd, int32_t n_layer, uint64_t seed) {
  RandomModelOptions options;
  options.n_vocab = n_vocab;
  options.n_embd = n_embd;
  options.n_head = 4;
  options.n_head_kv = 2;
  options.n_ff = 2 * n_embd;
  options.n_layer = n_layer;
  options.n_ctx = 128;
  options.seed = seed;
  return options;
}

class SelfDrafterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    write_random_model(model_options(32, 32, 4, 13), dir_->file("target.gguf"));
    write_draft_model(dir_->file("target.gguf"), 1, dir_->file("first1.gguf"));
    write_draft_model(dir_->file("target.gguf"), 3, dir_->file("first3.gguf"));
    target_ = Model::load(dir_->file("target.gguf")).release();
  }
  static void TearDownTestSuite() {
    delete target_;
    delete dir_;
  }
  static const Model& target() { return *target_; }

  static std::vector<int32_t> random_prompt(uint64_t seed, size_t length) {
    Rng rng(seed);
    std::vector<int32_t> prompt;
    for (size_t i = 0; i < length; ++i) {
      prompt.push_back(static_cast<int32_t>(rng.next_u64() % target().config().n_vocab));
    }
    return prompt;
  }

  static testing::TempDir* dir_;
  static Model* target_;
};
testing::TempDir* SelfDrafterTest::dir_ = nullptr;
Model* SelfDrafterTest::target_ = nullptr;

TEST_F(SelfDrafterTest, WithEveryLayerItDraftsTheTargetsOwnGreedyTokens) {
  SelfDrafter drafter(target(), 4, 96, nullptr);
  EXPECT_EQ(drafter.name(), "self:4");
  Generator generator(target(), 96, nullptr);
  for (uint64_t seed = 0; seed < 4; ++seed) {
    const std::vector<int32_t> prompt = random_prompt(seed, 1 + seed * 3);
    const GenerationOutput plain =
        generator.generate(prompt, nullptr, testing::generation_options(0.0f, 30, 0));
    for (int32_t g : {1, 3, 6}) {
      const GenerationOutput spec =
          generator.generate(prompt, &drafter, testing::generation_options(0.0f, 30, g));
      EXPECT_EQ(spec.tokens, plain.tokens) << "seed " << seed << ", g " << g;
      EXPECT_GT(spec.stats.drafted_tokens, 0);
      EXPECT_EQ(spec.stats.accepted_tokens, spec.stats.drafted_tokens) << "g " << g;
    }
  }
}

// The k-layer early exit is the same function as a draft file made of the
// target's first k layers: same tokens, same q, step for step.
TEST_F(SelfDrafterTest, WithKLayersItDraftsWhatTheFirstKLayersAsAFileDraft) {
  for (int32_t k : {1, 3}) {
    const auto file = Model::load(dir_->file(k == 1 ? "first1.gguf" : "first3.gguf"));
    SelfDrafter self(target(), k, 96, nullptr);
    ModelDrafter reference(*file, 96, nullptr);
    EXPECT_EQ(self.cache().n_layer(), k);
    for (float temperature : {0.0f, 1.0f}) {
      const SamplingParams params = testing::generation_options(temperature, 0, 0).sampling;
      std::vector<int32_t> context = random_prompt(40 + k, 5);
      self.begin(context);
      reference.begin(context);
      Rng self_rng(5), reference_rng(5);
      for (int step = 0; step < 12; ++step) {
        const int32_t g = 1 + step % 4;
        DraftProposal a, b;
        self.propose(context, g, params, self_rng, a);
        reference.propose(context, g, params, reference_rng, b);
        ASSERT_EQ(a.tokens, b.tokens) << "k " << k << ", T " << temperature << ", step " << step;
        ASSERT_EQ(a.probs.size(), b.probs.size());
        for (size_t i = 0; i < a.probs.size(); ++i) {
          for (size_t v = 0; v < a.probs[i].size(); ++v) {
            ASSERT_NEAR(a.probs[i][v], b.probs[i][v], 1e-6f);
          }
        }
        ASSERT_EQ(a.confidence.size(), a.tokens.size());
        // Keep a varying part of the draft plus one other token, as a
        // verification would.
        const size_t kept = static_cast<size_t>(step) % (a.tokens.size() + 1);
        context.insert(context.end(), a.tokens.begin(), a.tokens.begin() + kept);
        context.push_back(static_cast<int32_t>((step * 7) % 32));
        self.accept(context, static_cast<int32_t>(kept));
        reference.accept(context, static_cast<int32_t>(kept));
      }
    }
  }
}

TEST_F(SelfDrafterTest, GreedySpeculativeEqualsPlainGreedyWithFewerLayers) {
  for (int32_t k : {1, 2}) {
    SelfDrafter drafter(target(), k, 96, nullptr);
    std::vector<std::vector<int32_t>> prompts;
    for (uint64_t seed = 0; seed < 5; ++seed) prompts.push_back(random_prompt(90 + seed, 1 + seed));
    const auto result = testing::expect_greedy_identity(target(), drafter, prompts, 32);
    EXPECT_GT(result.drafted, 0);
    EXPECT_LT(result.accepted, result.drafted) << "k " << k;
  }
}

TEST_F(SelfDrafterTest, StopsAfterATokenBelowTheConfidenceThreshold) {
  SelfDrafter drafter(target(), 1, 96, nullptr);
  const std::vector<int32_t> context = random_prompt(3, 4);
  drafter.begin(context);
  SamplingParams greedy = testing::generation_options(0.0f, 0, 0).sampling;
  Rng rng(1);
  DraftProposal out;
  drafter.propose(context, 5, greedy, rng, out);
  ASSERT_EQ(out.tokens.size(), 5u);
  ASSERT_EQ(out.confidence.size(), 5u);
  for (float c : out.confidence) {
    EXPECT_GT(c, 0.0f);
    EXPECT_LE(c, 1.0f);
  }
  out.stop_confidence = 1.01f;  // every token is below it
  drafter.propose(context, 5, greedy, rng, out);
  EXPECT_EQ(out.tokens.size(), 1u);
}

TEST_F(SelfDrafterTest, RobustToEdgesOfTheInput) {
  SelfDrafter drafter(target(), 2, 8, nullptr);
  SamplingParams params = testing::generation_options(1.0f, 0, 0).sampling;
  Rng rng(2);
  DraftProposal out;
  // An empty context or g = 0: nothing, no error.
  drafter.begin(std::vector<int32_t>{});
  drafter.propose(std::vector<int32_t>{}, 4, params, rng, out);
  EXPECT_TRUE(out.tokens.empty());
  drafter.propose(std::vector<int32_t>{3}, 0, params, rng, out);
  EXPECT_TRUE(out.tokens.empty());
  // The first and last ids of the vocabulary.
  const std::vector<int32_t> edges = {0, 31, 0, 31};
  drafter.begin(edges);
  drafter.propose(edges, 3, params, rng, out);
  EXPECT_EQ(out.tokens.size(), 3u);
  EXPECT_EQ(out.probs.size(), 3u);
  // g past the cache's room: drafts only what fits (rows 0..7).
  const std::vector<int32_t> long_context = {1, 2, 3, 4, 5, 6};
  drafter.begin(long_context);
  drafter.propose(long_context, 10, params, rng, out);
  EXPECT_EQ(out.tokens.size(), 3u);
  // Without begin(), from any context.
  SelfDrafter fresh(target(), 1, 8, nullptr);
  fresh.propose(edges, 2, params, rng, out);
  EXPECT_EQ(out.tokens.size(), 2u);
}

TEST_F(SelfDrafterTest, LayerCountsAreChecked) {
  EXPECT_THROW(SelfDrafter(target(), 5, 16, nullptr), Error);
  EXPECT_THROW(SelfDrafter(target(), -1, 16, nullptr), Error);
  EXPECT_THROW(SelfDrafter(target(), 1, 0, nullptr), Error);
  EXPECT_EQ(SelfDrafter(target(), 0, 16, nullptr).n_layers(), 1);  // default: a quarter
  EXPECT_EQ(default_self_draft_layers(1), 1);
  EXPECT_EQ(default_self_draft_layers(4), 1);
  EXPECT_EQ(default_self_draft_layers(22), 6);
  EXPECT_EQ(default_self_draft_layers(32), 8);

  // forward_first_layers refuses a layer count outside 1..n_layer and a
  // cache of neither all layers nor exactly the layers run.
  std::vector<float> logits;
  const std::vector<BatchRow> rows = {{0, 0, 1, true}};
  KvCache full = target().make_cache(4);
  EXPECT_THROW(target().forward_first_layers(rows, 0, full, logits, nullptr), Error);
  EXPECT_THROW(target().forward_first_layers(rows, 5, full, logits, nullptr), Error);
  const int32_t kv_dim = target().config().n_head_kv * target().config().head_dim;
  KvCache two(2, 1, 4, kv_dim);
  EXPECT_THROW(target().forward_first_layers(rows, 3, two, logits, nullptr), Error);
  EXPECT_THROW(target().forward(rows, two, logits, nullptr), Error);
  EXPECT_NO_THROW(target().forward_first_layers(rows, 2, two, logits, nullptr));
  EXPECT_NO_THROW(target().forward_first_layers(rows, 2, full, logits, nullptr));
}

// Independent evidence: not the tiny target of generator_lossless_test.cpp
// (whose self:1 is exactly its derived draft, so the statistic would be the
// same one), but another target (vocabulary 5, 3 layers, its own seed)
// drafting with its first 2 layers, another prompt and other sample seeds.
TEST(SelfDrafterExactness, SamplesFitTheTargetAtTemperatureOne) {
  testing::TempDir dir;
  RandomModelOptions options = model_options(5, 16, 3, 29);
  options.n_head = 2;
  options.n_head_kv = 1;
  write_random_model(options, dir.file("target.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  SelfDrafter drafter(*target, 2, 8, nullptr);
  const SamplingParams params = testing::generation_options(1.0f, 3, 2).sampling;
  const std::vector<int32_t> prompt = {4, 1};
  constexpr uint64_t kSeedBase = 9001;
  const auto result = testing::speculative_fit(*target, drafter, prompt, params, 2, 3, 100000,
                                               VerifyRule::kExact, kSeedBase);
  EXPECT_GT(result.fit.p_value, 1e-4) << result.fit.detail;
  EXPECT_GT(result.accepted, result.drafted / 10) << result.drafted;
  EXPECT_LT(result.accepted, result.drafted * 9 / 10) << result.drafted;
  const auto wrong = testing::speculative_fit(*target, drafter, prompt, params, 2, 3, 100000,
                                              VerifyRule::kResampleFromTarget, kSeedBase);
  EXPECT_LT(wrong.fit.p_value, 1e-4) << wrong.fit.detail;
}

}  // namespace
}  // namespace specula

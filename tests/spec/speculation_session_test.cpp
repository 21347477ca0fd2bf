// SpeculationSession: the memory it reports is each drafter's own (the
// draft file, KV caches sized by the context, the suffix cache, the
// learning drafter's learner), rebuilding it for another context keeps what
// it learned (policy estimates, bandit, suffix cache, online learner), and
// bad drafter lists are refused naming the EngineConfig field.
#include "engine/speculation_session.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "spec/model_files.h"

namespace specula {
namespace {

class SpeculationSessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    RandomModelOptions options = testing::small_model();
    options.n_ctx = 128;
    models_ = new testing::ModelPair(testing::make_target_and_derived_draft(*dir_, "s", options));
  }
  static void TearDownTestSuite() {
    delete models_;
    delete dir_;
  }
  static const Model& target() { return *models_->target; }
  static const Model& draft() { return *models_->draft; }
  static uint64_t draft_file_size() {
    return std::filesystem::file_size(dir_->file("s-draft.gguf"));
  }
  // Keys and values: layers x (key positions + positions) x (n_head_kv x
  // head_dim) values, the keys' positions rounded up to blocks of 16.
  static uint64_t kv_bytes(const Model& model, int32_t n_layers, int32_t n_ctx) {
    const ModelConfig& c = model.config();
    const uint64_t key_positions = (n_ctx + 15) / 16 * 16;
    // F16 keys and values (the default cache).
    return uint64_t{1} * n_layers * (key_positions + n_ctx) * c.n_head_kv * c.head_dim *
           sizeof(uint16_t);
  }
  // Greedy generation of n tokens through the session.
  static void generate(SpeculationSession& session, int32_t n_ctx, uint64_t seed) {
    session.prepare(n_ctx);
    Generator generator(target(), n_ctx, nullptr);
    GeneratorOptions options;
    options.sampling.temperature = 0;
    options.max_new_tokens = 24;
    options.draft_max = 3;
    const std::vector<int32_t> prompt = testing::random_tokens(target(), seed, 8);
    generator.generate(prompt, session.speculation(), options);
  }
  static std::string error_of(const SpeculationSessionOptions& options, const Model* draft) {
    try {
      SpeculationSession session(target(), draft, nullptr, options);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  static testing::TempDir* dir_;
  static testing::ModelPair* models_;
};
testing::TempDir* SpeculationSessionTest::dir_ = nullptr;
testing::ModelPair* SpeculationSessionTest::models_ = nullptr;

TEST_F(SpeculationSessionTest, ReportsEachDraftersMemory) {
  SpeculationSessionOptions options;
  options.drafters = {"model", "lookup", "suffix", "self:1"};
  SpeculationSession session(target(), &draft(), nullptr, options);
  EXPECT_TRUE(session.memory().empty());  // nothing built before prepare()
  generate(session, 40, 1);
  const std::vector<DrafterMemory> memory = session.memory();
  ASSERT_EQ(memory.size(), 4u);
  EXPECT_EQ(memory[0].name, "model");
  EXPECT_EQ(memory[0].file_bytes, draft_file_size());
  EXPECT_EQ(memory[0].kv_bytes, kv_bytes(draft(), draft().config().n_layer, 40));
  EXPECT_EQ(memory[1].name, "lookup");
  EXPECT_EQ(memory[1].file_bytes + memory[1].kv_bytes, 0u);
  EXPECT_GT(memory[1].cache_bytes, 0u);  // it indexed the sequence
  EXPECT_EQ(memory[2].name, "suffix");
  EXPECT_EQ(memory[2].file_bytes + memory[2].kv_bytes, 0u);
  EXPECT_GT(memory[2].cache_bytes, 0u);  // the sequence went into the cache
  EXPECT_EQ(memory[3].name, "self:1");
  EXPECT_EQ(memory[3].file_bytes, 0u);  // the target's own weights
  EXPECT_EQ(memory[3].kv_bytes, kv_bytes(target(), 1, 40));
  for (const DrafterMemory& d : memory) EXPECT_EQ(d.learning_bytes, 0u) << d.name;

  MemoryStats stats;
  stats.target_file_bytes = 7;
  session.add_memory(stats);
  EXPECT_EQ(stats.target_file_bytes, 7u);  // the target's fields are not the session's
  EXPECT_EQ(stats.draft_file_bytes, draft_file_size());
  EXPECT_EQ(stats.draft_kv_bytes,
            kv_bytes(draft(), draft().config().n_layer, 40) + kv_bytes(target(), 1, 40));
  EXPECT_EQ(stats.drafters.size(), 4u);
}

TEST_F(SpeculationSessionTest, TheLearningDrafterReportsItsFileCacheAndLearner) {
  SpeculationSessionOptions options;
  options.drafters = {"model"};
  options.online_distill.enabled = true;
  options.online_distill.memory_bytes = 1 << 20;
  SpeculationSession session(target(), &draft(), nullptr, options);
  generate(session, 48, 2);
  const std::vector<DrafterMemory> memory = session.memory();
  ASSERT_EQ(memory.size(), 1u);
  EXPECT_EQ(memory[0].file_bytes, draft_file_size());
  EXPECT_EQ(memory[0].kv_bytes, kv_bytes(draft(), draft().config().n_layer, 48));
  // The trainable copy: weights, gradients and two moments of 4-byte floats.
  const OnlineLearningStats learning = session.learning_stats();
  ASSERT_TRUE(learning.enabled);
  EXPECT_GE(memory[0].learning_bytes, learning.parameter_bytes);
  EXPECT_GT(learning.parameter_bytes, 0u);
  EXPECT_GT(learning.observed_rows, 0u);
}

TEST_F(SpeculationSessionTest, AnotherContextSizeKeepsWhatItLearned) {
  SpeculationSessionOptions options;
  options.drafters = {"model", "suffix"};
  options.policy.kind = PolicyKind::kFixed;  // every step drafts: the bandit is used
  options.online_distill.enabled = true;
  options.online_distill.memory_bytes = 1 << 20;
  SpeculationSession session(target(), &draft(), nullptr, options);
  generate(session, 40, 3);
  const DraftLengthPolicy* policy = &session.policy();
  const double plain_rate = policy->estimates().plain_tokens_per_second();
  ASSERT_GT(plain_rate, 0);
  ASSERT_NE(session.bandit(), nullptr);
  const int64_t pulls = session.bandit()->pulls(0) + session.bandit()->pulls(1);
  ASSERT_GT(pulls, 0);
  const uint64_t suffix_bytes = session.suffix_cache().memory_bytes();
  ASSERT_GT(suffix_bytes, 0u);
  const uint64_t observed = session.learning_stats().observed_rows;
  ASSERT_GT(observed, 0u);

  session.prepare(72);
  EXPECT_EQ(session.n_ctx(), 72);
  EXPECT_EQ(session.memory()[0].kv_bytes, kv_bytes(draft(), draft().config().n_layer, 72));
  EXPECT_EQ(&session.policy(), policy);
  EXPECT_EQ(session.policy().estimates().plain_tokens_per_second(), plain_rate);
  EXPECT_EQ(session.bandit()->pulls(0) + session.bandit()->pulls(1), pulls);
  EXPECT_EQ(session.suffix_cache().memory_bytes(), suffix_bytes);
  EXPECT_EQ(session.learning_stats().observed_rows, observed);

  // The rebuilt drafters still feed the same learner and bandit.
  generate(session, 72, 4);
  EXPECT_GT(session.learning_stats().observed_rows, observed);
  EXPECT_GT(session.bandit()->pulls(0) + session.bandit()->pulls(1), pulls);
}

TEST_F(SpeculationSessionTest, SetPolicyReplacesItOnlyWhenAskedForAnother) {
  SpeculationSessionOptions options;
  options.drafters = {"lookup"};
  SpeculationSession session(target(), nullptr, nullptr, options);
  EXPECT_EQ(session.bandit(), nullptr);  // one drafter: no bandit
  const DraftLengthPolicy* adaptive = &session.policy();
  EXPECT_EQ(adaptive->kind(), PolicyKind::kAdaptive);
  session.set_policy(PolicyOptions{});
  EXPECT_EQ(&session.policy(), adaptive);
  session.set_policy(PolicyOptions{.kind = PolicyKind::kHeuristic});
  EXPECT_EQ(session.policy().kind(), PolicyKind::kHeuristic);
  PolicyOptions bad;
  bad.kind = PolicyKind::kConfidence;
  bad.confidence_threshold = 2.0f;
  EXPECT_THROW(session.set_policy(bad), Error);
}

TEST_F(SpeculationSessionTest, BadDrafterListsNameTheField) {
  SpeculationSessionOptions options;
  options.drafters = {"lookup", "lookup"};
  EXPECT_NE(error_of(options, &draft()).find("twice"), std::string::npos);
  options.drafters = {"model"};
  EXPECT_NE(error_of(options, nullptr).find("draft model file"), std::string::npos);
  options.drafters = {"lookup"};
  options.online_distill.enabled = true;
  EXPECT_NE(error_of(options, &draft()).find("add model to EngineConfig::drafters"),
            std::string::npos);
  options.drafters = {"model"};
  options.online_distill.cpu_fraction = 0;
  EXPECT_NE(error_of(options, &draft()).find("EngineConfig::online_distill.cpu_fraction"),
            std::string::npos);
}

}  // namespace
}  // namespace specula

// The Engine's policies and drafter lists: every policy and drafter
// combination gives plain greedy output at temperature 0, the statistics
// name the policy and drafters, and bad drafter lists are refused.
#include <gtest/gtest.h>

#include "core/error.h"
#include "spec/model_files.h"
#include "specula/engine.h"

namespace specula {
namespace {

class EnginePolicy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::write_engine_models(*dir_, 160);
  }
  static void TearDownTestSuite() { delete dir_; }
  static EngineConfig config(std::vector<std::string> drafters) {
    EngineConfig c{dir_->file("target.gguf"), dir_->file("draft.gguf"), 1};
    c.drafters = std::move(drafters);
    return c;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* EnginePolicy::dir_ = nullptr;

TEST_F(EnginePolicy, DefaultDraftersAreTheModelAndLookup) {
  const auto engine = Engine::load(config({}));
  EXPECT_EQ(engine->drafter_names(), (std::vector<std::string>{"model", "lookup"}));
  const auto no_draft = Engine::load({dir_->file("target.gguf"), "", 1});
  EXPECT_EQ(no_draft->drafter_names(), (std::vector<std::string>{"lookup"}));
}

TEST_F(EnginePolicy, EveryPolicyAndDrafterListGivesPlainGreedyOutput) {
  const std::string prompt = "abcabcabc the cat the cat";
  GenerateOptions options;
  options.temperature = 0.0f;
  options.max_new_tokens = 48;
  options.ignore_eos = true;
  options.draft_max = 0;
  const auto plain_engine = Engine::load(config({"lookup"}));
  const std::vector<int32_t> plain = plain_engine->generate(prompt, options).tokens;
  for (const std::vector<std::string>& drafters :
       {std::vector<std::string>{"model"}, std::vector<std::string>{"lookup", "suffix"},
        std::vector<std::string>{"model", "lookup", "suffix"},
        std::vector<std::string>{"self:1", "lookup:2", "model"}}) {
    const auto engine = Engine::load(config(drafters));
    for (PolicyKind kind : {PolicyKind::kAdaptive, PolicyKind::kFixed, PolicyKind::kHeuristic,
                            PolicyKind::kConfidence}) {
      options.policy = kind;
      options.draft_max = 5;
      for (int repeat = 0; repeat < 2; ++repeat) {  // state carried across requests
        const GenerateResult result = engine->generate(prompt, options);
        EXPECT_EQ(result.tokens, plain)
            << policy_name(kind) << ", " << drafters.size() << " drafters, repeat " << repeat;
        EXPECT_EQ(result.stats.policy, policy_name(kind));
        ASSERT_EQ(result.stats.drafters.size(), drafters.size());
        EXPECT_EQ(result.stats.draft_length_steps.size(), 6u);
      }
    }
  }
}

TEST_F(EnginePolicy, BadDrafterListsAreRefused) {
  auto message = [](const EngineConfig& c) {
    try {
      Engine::load(c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(config({"oracle"})).find("unknown drafter 'oracle'"), std::string::npos);
  EXPECT_NE(message(config({"lookup", "lookup"})).find("twice"), std::string::npos);
  EngineConfig no_draft{dir_->file("target.gguf"), "", 1};
  no_draft.drafters = {"model"};
  EXPECT_NE(message(no_draft).find("EngineConfig::draft_path"), std::string::npos);
  const auto engine = Engine::load(config({}));
  GenerateOptions options;
  options.policy = PolicyKind::kConfidence;
  options.confidence_threshold = 2.0f;
  EXPECT_THROW(engine->generate("x", options), Error);
}

}  // namespace
}  // namespace specula

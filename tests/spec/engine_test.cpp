// The public Engine API: loading, tokenizing, streaming text, speculative
// vs plain greedy identity through the front-end path, and its errors.
#include "specula/engine.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "spec/model_files.h"

namespace specula {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    testing::write_engine_models(*dir_, 128);
    RandomModelOptions options = testing::engine_model_options(128);
    options.n_vocab = 20;  // no tokenizer
    write_random_model(options, dir_->file("no-tokenizer.gguf"));
  }
  static void TearDownTestSuite() { delete dir_; }
  static testing::TempDir* dir_;
};
testing::TempDir* EngineTest::dir_ = nullptr;

TEST_F(EngineTest, StreamsTextThatAddsUpToTheResult) {
  const auto engine = Engine::load({dir_->file("target.gguf"), dir_->file("draft.gguf"), 1});
  ASSERT_TRUE(engine->has_tokenizer());
  ASSERT_TRUE(engine->has_draft());
  GenerateOptions options;
  options.max_new_tokens = 30;
  options.ignore_eos = true;
  std::string streamed;
  std::vector<int32_t> tokens;
  const GenerateResult result =
      engine->generate("Hello", options, [&](int32_t token, std::string_view text) {
        if (token >= 0) tokens.push_back(token);
        streamed += text;
      });
  EXPECT_EQ(result.tokens.size(), 30u);
  EXPECT_EQ(tokens, result.tokens);
  EXPECT_EQ(streamed, result.text);
  EXPECT_EQ(result.prompt_tokens, engine->tokenize("Hello"));
  EXPECT_EQ(result.n_ctx, static_cast<int32_t>(result.prompt_tokens.size()) + 30);
  EXPECT_GT(result.stats.drafted_tokens, 0);
  EXPECT_GT(result.memory.draft_kv_bytes, 0u);
  EXPECT_GT(result.memory.target_file_bytes, result.memory.draft_file_bytes);
}

TEST_F(EngineTest, GreedySpeculativeEqualsPlainThroughTheEngine) {
  const auto engine = Engine::load({dir_->file("target.gguf"), dir_->file("draft.gguf"), 1});
  GenerateOptions options;
  options.temperature = 0.0f;
  options.max_new_tokens = 40;
  options.ignore_eos = true;
  options.draft_max = 0;
  const GenerateResult plain = engine->generate("The cat", options);
  options.draft_max = 5;
  const GenerateResult spec = engine->generate("The cat", options);
  EXPECT_EQ(plain.tokens, spec.tokens);
  EXPECT_EQ(plain.stats.drafted_tokens, 0);
  EXPECT_GT(spec.stats.drafted_tokens, 0);
}

TEST_F(EngineTest, ModelsWithoutATokenizerTakeIds) {
  const auto engine = Engine::load({dir_->file("no-tokenizer.gguf"), "", 1});
  EXPECT_FALSE(engine->has_tokenizer());
  try {
    engine->tokenize("hi");
    FAIL() << "tokenize worked without a tokenizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generate_from_tokens"), std::string::npos) << e.what();
  }
  GenerateOptions options;
  options.max_new_tokens = 6;
  options.ignore_eos = true;
  const std::vector<int32_t> prompt = {1, 2, 3};
  const GenerateResult result = engine->generate_from_tokens(prompt, options);
  EXPECT_EQ(result.tokens.size(), 6u);
  EXPECT_TRUE(result.text.empty());
}

TEST_F(EngineTest, ContextSizeIsRespected) {
  const auto engine = Engine::load({dir_->file("target.gguf"), dir_->file("draft.gguf"), 1});
  GenerateOptions options;
  options.max_new_tokens = 100;
  options.ignore_eos = true;
  options.n_ctx = 12;
  const GenerateResult result = engine->generate("abc", options);  // BOS + 3 bytes
  EXPECT_EQ(result.prompt_tokens.size() + result.tokens.size(), 12u);
  EXPECT_EQ(result.stats.stop_reason, StopReason::kContextFull);
}

TEST_F(EngineTest, BadConfigurationsAreErrors) {
  EXPECT_THROW(Engine::load({dir_->file("missing.gguf"), "", 1}), Error);
  EXPECT_THROW(Engine::load({"", "", 1}), Error);
  EXPECT_THROW(Engine::load({dir_->file("target.gguf"), dir_->file("no-tokenizer.gguf"), 1}),
               Error);
  const auto engine = Engine::load({dir_->file("target.gguf"), "", 1});
  GenerateOptions options;
  options.top_p = 0.0f;
  EXPECT_THROW(engine->generate("x", options), Error);
  options = GenerateOptions();
  options.n_ctx = -1;
  EXPECT_THROW(engine->generate("x", options), Error);
  // Messages name the API's fields, not the CLI's flags.
  try {
    engine->generate("x", options);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GenerateOptions::n_ctx"), std::string::npos) << e.what();
  }
  options = GenerateOptions();
  options.max_new_tokens = -1;
  EXPECT_THROW(engine->generate("x", options), Error);  // the Generator's check
}

TEST_F(EngineTest, MemoryHasEachDraftersShare) {
  EngineConfig config{dir_->file("target.gguf"), dir_->file("draft.gguf"), 1};
  config.drafters = {"model", "suffix"};
  const auto engine = Engine::load(config);
  GenerateOptions options;
  options.max_new_tokens = 8;
  options.n_ctx = 40;
  const GenerateResult result = engine->generate("Hello", options);
  const uint64_t draft_size = std::filesystem::file_size(dir_->file("draft.gguf"));
  EXPECT_EQ(result.memory.target_file_bytes, std::filesystem::file_size(dir_->file("target.gguf")));
  EXPECT_EQ(result.memory.draft_file_bytes, draft_size);
  ASSERT_EQ(result.memory.drafters.size(), 2u);
  EXPECT_EQ(result.memory.drafters[0].name, "model");
  EXPECT_EQ(result.memory.drafters[0].file_bytes, draft_size);
  EXPECT_EQ(result.memory.drafters[0].kv_bytes, result.memory.draft_kv_bytes);
  EXPECT_GT(result.memory.draft_kv_bytes, 0u);
  EXPECT_EQ(result.memory.drafters[1].name, "suffix");
  EXPECT_GT(result.memory.drafters[1].cache_bytes, 0u);
  // The draft's cache holds as many positions as the target's; the draft
  // has one layer of the target's three.
  EXPECT_EQ(result.memory.draft_kv_bytes * 3, result.memory.target_kv_bytes);
}

}  // namespace
}  // namespace specula

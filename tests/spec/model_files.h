// Tiny random target and draft GGUF files in a temporary folder, for the
// generator tests (tests make their models; nothing is downloaded), and
// what those tests compute from them independently of the generator.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include "model/make_model.h"
#include "model/model.h"
#include "sampling/sampling.h"

namespace specula::testing {

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("specula_spec_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct ModelPair {
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
};

// A target of `n_layer` layers and a draft made of its first layer.
inline ModelPair make_target_and_derived_draft(const TempDir& dir, const std::string& name,
                                               RandomModelOptions options) {
  const std::string target_path = dir.file(name + "-target.gguf");
  const std::string draft_path = dir.file(name + "-draft.gguf");
  write_random_model(options, target_path);
  write_draft_model(target_path, 1, draft_path);
  return {Model::load(target_path), Model::load(draft_path)};
}

// Vocabulary 6: the exact joint over 3 tokens has 216 cells, small enough
// for chi-square tests with 100k samples.
inline RandomModelOptions tiny_vocab_model() {
  RandomModelOptions options;
  options.n_vocab = 6;
  options.n_embd = 16;
  options.n_head = 2;
  options.n_ff = 32;
  options.n_layer = 2;
  options.n_ctx = 32;
  options.seed = 5;
  return options;
}

// Four layers, grouped-query attention: for greedy identity checks.
inline RandomModelOptions small_model() {
  RandomModelOptions options;
  options.n_vocab = 32;
  options.n_embd = 64;
  options.n_head = 4;
  options.n_head_kv = 2;
  options.n_layer = 4;
  options.n_ctx = 256;
  options.seed = 11;
  return options;
}

// A test suite's target (made by kOptions) and its one-layer derived draft,
// written and loaded once per suite. CRTP: each Suite has its own.
template <typename Suite, RandomModelOptions (*kOptions)()>
class SuiteModelPair : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    models_ = new ModelPair(make_target_and_derived_draft(*dir_, "suite", kOptions()));
  }
  static void TearDownTestSuite() {
    delete models_;
    models_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  static const Model& target() { return *models_->target; }
  static const Model& draft() { return *models_->draft; }

 private:
  static inline TempDir* dir_ = nullptr;
  static inline ModelPair* models_ = nullptr;
};

// The engine tests' target: vocabulary 300, so it gets the byte-level
// tokenizer.
inline RandomModelOptions engine_model_options(int32_t n_ctx) {
  RandomModelOptions options;
  options.n_vocab = 300;
  options.n_embd = 64;
  options.n_head = 4;
  options.n_layer = 3;
  options.n_ctx = n_ctx;
  return options;
}

// The engine tests' files in `dir`: target.gguf and draft.gguf, its first
// layer.
inline void write_engine_models(const TempDir& dir, int32_t n_ctx) {
  write_random_model(engine_model_options(n_ctx), dir.file("target.gguf"));
  write_draft_model(dir.file("target.gguf"), 1, dir.file("draft.gguf"));
}

// Last-row logits of `model` over `sequence`, from a fresh cache and one
// whole-sequence forward: independent of any generator's caches.
inline std::vector<float> fresh_last_logits(const Model& model, std::span<const int32_t> sequence) {
  KvCache cache = model.make_cache(static_cast<int32_t>(sequence.size()));
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < sequence.size(); ++i) {
    rows.push_back({0, static_cast<int32_t>(i), sequence[i], i + 1 == sequence.size()});
  }
  std::vector<float> logits;
  model.forward(rows, cache, logits, nullptr);
  return logits;
}

// `length` tokens drawn uniformly from the model's vocabulary.
inline std::vector<int32_t> random_tokens(const Model& model, uint64_t seed, size_t length) {
  Rng rng(seed);
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < length; ++i) {
    tokens.push_back(static_cast<int32_t>(rng.next_u64() % model.config().n_vocab));
  }
  return tokens;
}

}  // namespace specula::testing

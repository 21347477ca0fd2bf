// Losslessness through the public Engine API (issue 15): the library's own
// verifier, drafter set-up and policy, as a front end uses them. At T = 0.9
// with top-k, top-p and min-p, 3-token generations from a vocabulary-6 target
// with its derived draft must fit the exact joint distribution of the
// target (computed here with fresh forwards, independently of the Engine).
// The fit was shown, when written, to reject the verifier with its
// correction drawn from p instead of the residual (a temporary edit of
// src/speculative/verifier.cpp).
#include <gtest/gtest.h>

#include <vector>

#include "spec/chi_square.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "specula/engine.h"

namespace specula {
namespace {

TEST(EngineLossless, SamplesFitTheTargetThroughTheEngine) {
  testing::TempDir dir;
  RandomModelOptions options = testing::tiny_vocab_model();
  options.seed = 61;  // not the generator tests' target
  write_random_model(options, dir.file("target.gguf"));
  write_draft_model(dir.file("target.gguf"), 1, dir.file("draft.gguf"));

  EngineConfig config{dir.file("target.gguf"), dir.file("draft.gguf"), 1};
  config.drafters = {"model"};
  const auto engine = Engine::load(config);
  GenerateOptions generate;
  generate.temperature = 0.9f;
  generate.top_k = 5;
  generate.top_p = 0.95f;
  generate.min_p = 0.02f;
  generate.max_new_tokens = 3;
  generate.draft_max = 2;
  generate.policy = PolicyKind::kFixed;
  generate.ignore_eos = true;

  const auto target = Model::load(dir.file("target.gguf"));
  SamplingParams params;
  params.temperature = generate.temperature;
  params.top_k = generate.top_k;
  params.top_p = generate.top_p;
  params.min_p = generate.min_p;
  const std::vector<int32_t> prompt = {3, 0};
  const std::vector<double> expected = testing::exact_joint(*target, prompt, params, 3);

  constexpr int kSamples = 40000;
  const int32_t vocab = options.n_vocab;
  std::vector<int64_t> counts(expected.size(), 0);
  int64_t drafted = 0, accepted = 0;
  for (int i = 0; i < kSamples; ++i) {
    generate.seed = 7919ULL * static_cast<uint64_t>(i) + 5;
    const GenerateResult result = engine->generate_from_tokens(prompt, generate);
    ASSERT_EQ(result.tokens.size(), 3u);
    int32_t cell = 0;
    for (int32_t token : result.tokens) cell = cell * vocab + token;
    ++counts[static_cast<size_t>(cell)];
    drafted += result.stats.drafted_tokens;
    accepted += result.stats.accepted_tokens;
  }
  const testing::GoodnessOfFit fit = testing::chi_square_test(counts, expected);
  EXPECT_GT(fit.p_value, 1e-4) << fit.detail;
  EXPECT_GT(accepted, drafted / 10) << drafted;
  EXPECT_LT(accepted, drafted * 9 / 10) << drafted;
}

}  // namespace
}  // namespace specula

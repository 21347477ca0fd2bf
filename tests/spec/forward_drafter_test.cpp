// ForwardDrafter, the propose loop and cache catch-up shared by the model,
// self and learning drafters, checked through a scripted forward whose
// logits are known in closed form: which rows each forward gets (prefill,
// catch-up after accept, one single-row forward per further token), the
// greedy and sampled choices and their confidence, the early stop, and the
// cap at the cache's room (also for a real ModelDrafter, which used to
// throw there).
#include "drafters/forward_drafter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "drafters/model_drafter.h"
#include "model/make_model.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"

namespace specula {
namespace {

constexpr int32_t kVocab = 4;

// Each forward favours the token after the wanted row's token (cyclically):
// logits are `margin` there and 0 elsewhere, so softmax gives it
// e^margin / (e^margin + 3). With margin = ln 9 that is 9 / 12 = 0.75, and
// each other token gets 1 / 12.
class ScriptedDrafter : public ForwardDrafter {
 public:
  ScriptedDrafter(int32_t n_ctx, float margin) : margin_(margin) {
    replace_cache(KvCache(1, 1, n_ctx, 1));
  }
  std::string name() const override { return "scripted"; }

  // The rows of every forward so far, one vector per forward.
  std::vector<std::vector<BatchRow>> forwards;

 private:
  void run_forward(std::span<const BatchRow> rows, KvCache& cache,
                   std::vector<float>& logits) override {
    // As Model::forward requires: rows continue the cache.
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i].position, cache.length(0) + static_cast<int32_t>(i));
    }
    cache.set_length(0, cache.length(0) + static_cast<int32_t>(rows.size()));
    forwards.emplace_back(rows.begin(), rows.end());
    logits.clear();
    for (const BatchRow& row : rows) {
      if (!row.want_logits) continue;
      for (int32_t v = 0; v < kVocab; ++v) {
        logits.push_back(v == (row.token + 1) % kVocab ? margin_ : 0.0f);
      }
    }
  }

  float margin_;
};

// Temperature 0 (argmax), and temperature 1 with no filter: q is
// softmax(logits) itself.
SamplingParams greedy_params() {
  return testing::generation_options(0.0f, 0, 0).sampling;
}
SamplingParams plain_sampling() {
  return testing::generation_options(1.0f, 0, 0).sampling;
}

const float kMargin = std::log(9.0f);

TEST(ForwardDrafter, GreedyDraftsTheArgmaxChainWithOneForwardPerFurtherToken) {
  ScriptedDrafter drafter(32, kMargin);
  Rng rng(1);
  DraftProposal out;
  const std::vector<int32_t> context = {0, 1, 2};
  drafter.begin(context);
  ASSERT_EQ(drafter.forwards.size(), 1u);  // the prefill, all but the last token
  EXPECT_EQ(drafter.forwards[0].size(), 2u);
  EXPECT_FALSE(drafter.forwards[0].back().want_logits);

  drafter.propose(context, 3, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{3, 0, 1}));
  EXPECT_TRUE(out.deterministic());
  ASSERT_EQ(out.confidence.size(), 3u);
  for (float c : out.confidence) EXPECT_NEAR(c, 0.75f, 1e-6f);
  // The last context token, then one row per drafted token but the last.
  ASSERT_EQ(drafter.forwards.size(), 4u);
  const int32_t expected_tokens[] = {2, 3, 0};
  for (size_t f = 1; f < 4; ++f) {
    ASSERT_EQ(drafter.forwards[f].size(), 1u);
    EXPECT_EQ(drafter.forwards[f][0].position, static_cast<int32_t>(f) + 1);
    EXPECT_EQ(drafter.forwards[f][0].token, expected_tokens[f - 1]);
    EXPECT_TRUE(drafter.forwards[f][0].want_logits);
  }
  EXPECT_EQ(drafter.cache().length(0), 5);
}

TEST(ForwardDrafter, AfterAcceptOnlyTheMissingTokensRun) {
  ScriptedDrafter drafter(32, kMargin);
  Rng rng(1);
  DraftProposal out;
  const std::vector<int32_t> context = {0, 1, 2};
  drafter.begin(context);
  drafter.propose(context, 3, greedy_params(), rng, out);  // 3 0 1; the cache holds 0 1 2 3 0

  // Two drafts kept, then a correction: only the correction is new.
  const std::vector<int32_t> kept = {0, 1, 2, 3, 0, 2};
  drafter.accept(kept, 2);
  EXPECT_EQ(drafter.cache().length(0), 5);
  drafter.forwards.clear();
  drafter.propose(kept, 3, greedy_params(), rng, out);
  ASSERT_EQ(drafter.forwards.size(), 3u);
  ASSERT_EQ(drafter.forwards[0].size(), 1u);
  EXPECT_EQ(drafter.forwards[0][0].position, 5);
  EXPECT_EQ(drafter.forwards[0][0].token, 2);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{3, 0, 1}));
  EXPECT_EQ(drafter.cache().length(0), 8);  // 0 1 2 3 0 2, drafts 3 0

  // The first draft rejected, then a correction: the drafts' rows go.
  const std::vector<int32_t> rejected = {0, 1, 2, 3, 0, 2, 1};
  drafter.accept(rejected, 0);
  EXPECT_EQ(drafter.cache().length(0), 6);
  drafter.forwards.clear();
  drafter.propose(rejected, 2, greedy_params(), rng, out);
  ASSERT_EQ(drafter.forwards.size(), 2u);
  EXPECT_EQ(drafter.forwards[0][0].position, 6);
  EXPECT_EQ(drafter.forwards[0][0].token, 1);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2, 3}));
}

TEST(ForwardDrafter, BeginKeepsTheRowsOfASharedPrefix) {
  ScriptedDrafter drafter(32, kMargin);
  Rng rng(1);
  DraftProposal out;
  const std::vector<int32_t> first = {0, 1, 2, 3};
  drafter.begin(first);                                  // rows 0 1 2
  drafter.propose(first, 2, greedy_params(), rng, out);  // the cache: 0 1 2 3 0

  // A next turn repeating the first and adding two tokens: only the rows
  // past the shared prefix 0 1 2 3 run.
  const std::vector<int32_t> next = {0, 1, 2, 3, 2, 2};
  drafter.forwards.clear();
  drafter.begin(next);
  ASSERT_EQ(drafter.forwards.size(), 1u);
  ASSERT_EQ(drafter.forwards[0].size(), 1u);
  EXPECT_EQ(drafter.forwards[0][0].position, 4);
  EXPECT_EQ(drafter.forwards[0][0].token, 2);
  EXPECT_EQ(drafter.cache().length(0), 5);
  drafter.propose(next, 2, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{3, 0}));

  // A context that differs from the first token on starts over.
  const std::vector<int32_t> other = {3, 1, 2};
  drafter.forwards.clear();
  drafter.begin(other);
  ASSERT_EQ(drafter.forwards.size(), 1u);
  EXPECT_EQ(drafter.forwards[0].size(), 2u);
  EXPECT_EQ(drafter.forwards[0][0].position, 0);
  EXPECT_EQ(drafter.cache().length(0), 2);
}

TEST(ForwardDrafter, StopsAfterATokenBelowTheConfidenceThreshold) {
  // margin ln 3: confidence 3 / 6 = 0.5.
  ScriptedDrafter drafter(32, std::log(3.0f));
  Rng rng(1);
  DraftProposal out;
  const std::vector<int32_t> context = {1};
  out.stop_confidence = 0.6f;
  drafter.propose(context, 4, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2}));  // still proposed
  ASSERT_EQ(out.confidence.size(), 1u);
  EXPECT_NEAR(out.confidence[0], 0.5f, 1e-6f);
  EXPECT_EQ(drafter.forwards.size(), 1u);  // no forward for a token never drafted
  EXPECT_FLOAT_EQ(out.stop_confidence, 0.6f);

  out.stop_confidence = 0.4f;
  drafter.propose(context, 4, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens.size(), 4u);
}

TEST(ForwardDrafter, SamplingGivesSoftmaxRowsAndFeedsTheSampledToken) {
  ScriptedDrafter drafter(64, kMargin);
  Rng rng(7);
  DraftProposal out;
  const std::vector<int32_t> context = {3, 3};
  drafter.begin(context);
  drafter.forwards.clear();
  drafter.propose(context, 5, plain_sampling(), rng, out);
  ASSERT_EQ(out.tokens.size(), 5u);
  ASSERT_EQ(out.probs.size(), 5u);
  ASSERT_EQ(out.confidence.size(), 5u);
  ASSERT_EQ(drafter.forwards.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    // Row i scores the token after the one its forward ran.
    const int32_t favoured = (drafter.forwards[i][0].token + 1) % kVocab;
    ASSERT_EQ(out.probs[i].size(), static_cast<size_t>(kVocab));
    for (int32_t v = 0; v < kVocab; ++v) {
      EXPECT_NEAR(out.probs[i][v], v == favoured ? 0.75f : 1.0f / 12.0f, 1e-6f);
    }
    EXPECT_FLOAT_EQ(out.confidence[i], out.probs[i][out.tokens[i]]);
    if (i + 1 < 5) {
      EXPECT_EQ(drafter.forwards[i + 1][0].token, out.tokens[i]);
    }
  }
}

TEST(ForwardDrafter, NeverDraftsPastTheCache) {
  ScriptedDrafter drafter(6, kMargin);
  Rng rng(1);
  DraftProposal out;
  // Rows 0..5: the 4 context tokens and 2 drafted ones, so 3 drafts.
  const std::vector<int32_t> four = {0, 1, 2, 3};
  drafter.propose(four, 10, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(drafter.cache().length(0), 6);
  // A full cache still drafts the one token needing no row.
  const std::vector<int32_t> six = {0, 1, 2, 3, 0, 1};
  drafter.propose(six, 3, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2}));
  // A context the cache cannot hold: nothing, and no forward.
  drafter.forwards.clear();
  drafter.propose(std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2}, 3, greedy_params(), rng, out);
  EXPECT_TRUE(out.tokens.empty());
  EXPECT_TRUE(drafter.forwards.empty());
}

TEST(ForwardDrafter, ModelDrafterDraftsOnlyWhatItsCacheHolds) {
  testing::TempDir dir;
  RandomModelOptions options;
  options.n_vocab = 32;
  options.n_embd = 32;
  options.n_head = 4;
  options.n_layer = 1;
  options.n_ctx = 16;
  options.seed = 5;
  write_random_model(options, dir.file("draft.gguf"));
  const auto model = Model::load(dir.file("draft.gguf"));
  ModelDrafter drafter(*model, 8, nullptr);
  Rng rng(1);
  DraftProposal out;
  const std::vector<int32_t> context = {1, 2, 3, 4, 5, 6};
  drafter.begin(context);
  drafter.propose(context, 10, greedy_params(), rng, out);
  EXPECT_EQ(out.tokens.size(), 3u);  // rows 6 and 7 for the first two drafts
  EXPECT_EQ(drafter.cache().length(0), 8);
}

}  // namespace
}  // namespace specula

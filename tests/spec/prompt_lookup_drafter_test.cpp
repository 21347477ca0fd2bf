// PromptLookupDrafter: what it proposes (against a brute-force scan written
// here), that its incremental index equals a fresh one, robustness, and
// exactness through the Generator (greedy identity, chi-square at T = 1).
#include "drafters/prompt_lookup_drafter.h"

#include <gtest/gtest.h>

#include <climits>

#include "core/error.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"

namespace specula {
namespace {

std::vector<int32_t> propose(PromptLookupDrafter& drafter, const std::vector<int32_t>& context,
                             int32_t g) {
  SamplingParams params;
  Rng rng(1);
  DraftProposal out;
  drafter.propose(context, g, params, rng, out);
  EXPECT_TRUE(out.deterministic());
  return out.tokens;
}

std::vector<int32_t> fresh_proposal(PromptLookupOptions options,
                                    const std::vector<int32_t>& context, int32_t g) {
  PromptLookupDrafter drafter(options);
  drafter.begin(context);
  return propose(drafter, context, g);
}

// The specification, by brute force: for n = max..min, the latest start s
// with s + n < L whose n tokens equal the last n; copy what follows,
// continuing into the copy itself.
std::vector<int32_t> reference_proposal(const PromptLookupOptions& options,
                                        const std::vector<int32_t>& context, int32_t g) {
  const int32_t length = static_cast<int32_t>(context.size());
  for (int32_t n = std::min(options.max_ngram, length); n >= options.min_ngram; --n) {
    for (int32_t start = length - n - 1; start >= 0; --start) {
      if (!std::equal(context.begin() + start, context.begin() + start + n, context.end() - n)) {
        continue;
      }
      std::vector<int32_t> extended = context;
      for (int32_t i = 0; i < g; ++i) extended.push_back(extended[start + n + i]);
      return std::vector<int32_t>(extended.begin() + length, extended.end());
    }
  }
  return {};
}

TEST(PromptLookupDrafter, ProposesWhatFollowedTheMatch) {
  EXPECT_EQ(fresh_proposal({}, {5, 6, 7, 8, 9, 5, 6}, 3), (std::vector<int32_t>{7, 8, 9}));
  // Fewer tokens than g follow the match: the copy continues into itself.
  EXPECT_EQ(fresh_proposal({}, {5, 6, 7, 8, 9, 5, 6}, 6), (std::vector<int32_t>{7, 8, 9, 5, 6, 7}));
  EXPECT_EQ(fresh_proposal({}, {3, 4, 3, 4}, 5), (std::vector<int32_t>{3, 4, 3, 4, 3}));
  EXPECT_EQ(fresh_proposal({}, {7, 7}, 3), (std::vector<int32_t>{7, 7, 7}));
}

TEST(PromptLookupDrafter, PrefersTheLongerNgram) {
  // "1 2" was followed by 7; the later "2" alone by 8.
  const std::vector<int32_t> context = {1, 2, 7, 3, 2, 8, 1, 2};
  EXPECT_EQ(fresh_proposal({1, 3}, context, 1), (std::vector<int32_t>{7}));
  EXPECT_EQ(fresh_proposal({1, 1}, context, 1), (std::vector<int32_t>{8}));
  // A 3-gram beats a 2-gram even when the 2-gram's match is later.
  const std::vector<int32_t> longer = {9, 1, 2, 5, 0, 1, 2, 6, 9, 1, 2};
  EXPECT_EQ(fresh_proposal({1, 3}, longer, 1), (std::vector<int32_t>{5}));
  EXPECT_EQ(fresh_proposal({1, 2}, longer, 1), (std::vector<int32_t>{6}));
}

TEST(PromptLookupDrafter, PrefersTheLatestMatch) {
  EXPECT_EQ(fresh_proposal({}, {4, 5, 1, 4, 5, 2, 4, 5}, 1), (std::vector<int32_t>{2}));
  EXPECT_EQ(fresh_proposal({}, {4, 5, 1, 4, 5, 2, 4, 5, 3, 4, 5}, 2), (std::vector<int32_t>{3, 4}));
}

TEST(PromptLookupDrafter, ProposesNothingWithoutAMatch) {
  EXPECT_TRUE(fresh_proposal({}, {1, 2, 3, 4}, 4).empty());
  EXPECT_TRUE(fresh_proposal({}, {}, 4).empty());
  EXPECT_TRUE(fresh_proposal({}, {9}, 4).empty());
  EXPECT_TRUE(fresh_proposal({}, {9, 9}, 0).empty());
  // Only n-grams of at least min_ngram tokens count.
  EXPECT_TRUE(fresh_proposal({2, 3}, {1, 2, 7, 3, 2}, 2).empty());
}

TEST(PromptLookupDrafter, IncrementalIndexMatchesTheBruteForceScan) {
  for (const PromptLookupOptions options :
       {PromptLookupOptions{1, 3}, PromptLookupOptions{2, 4}, PromptLookupOptions{1, 1}}) {
    Rng rng(7);
    for (int trial = 0; trial < 20; ++trial) {
      // A small alphabet makes matches of every length common.
      const int32_t alphabet = 2 + trial % 5;
      std::vector<int32_t> context = {static_cast<int32_t>(rng.next_u64() % alphabet)};
      PromptLookupDrafter drafter(options);
      drafter.begin(context);
      for (int step = 0; step < 60; ++step) {
        const int32_t g = 1 + static_cast<int32_t>(rng.next_u64() % 6);
        ASSERT_EQ(propose(drafter, context, g), reference_proposal(options, context, g))
            << "trial " << trial << ", step " << step;
        // Up to 3 tokens arrive per step, as after a verification.
        const int added = 1 + static_cast<int>(rng.next_u64() % 3);
        for (int i = 0; i < added; ++i) {
          context.push_back(static_cast<int32_t>(rng.next_u64() % alphabet));
        }
        drafter.accept(context, added - 1);
      }
      EXPECT_EQ(drafter.indexed_tokens(), context.size());
    }
  }
}

TEST(PromptLookupDrafter, ACallerThatStartsOverWithoutBeginIsHandled) {
  PromptLookupDrafter drafter;
  drafter.begin(std::vector<int32_t>{1, 2, 3, 1, 2});
  EXPECT_EQ(propose(drafter, {1, 2, 3, 1, 2}, 1), (std::vector<int32_t>{3}));
  // A shorter, unrelated context: the index is rebuilt, not reused.
  EXPECT_EQ(propose(drafter, {4, 2}, 1), std::vector<int32_t>{});
  EXPECT_EQ(drafter.indexed_tokens(), 2u);
  // Longer, but not an extension (its token at the last indexed position
  // differs): rebuilt as well.
  EXPECT_EQ(propose(drafter, {4, 7, 4}, 2), (std::vector<int32_t>{7, 4}));
  EXPECT_EQ(drafter.indexed_tokens(), 3u);
  // No begin() at all: the first call indexes its context.
  PromptLookupDrafter fresh;
  EXPECT_EQ(propose(fresh, {6, 1, 6}, 3), (std::vector<int32_t>{1, 6, 1}));
}

TEST(PromptLookupDrafter, IdsAtTheEdgesOfTheVocabulary) {
  const int32_t top = INT32_MAX;
  EXPECT_EQ(fresh_proposal({}, {0, top, 0, 0, top}, 2), (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(fresh_proposal({}, {top, 0, top, top, 0}, 3), (std::vector<int32_t>{top, top, 0}));
  // 0 and the top id are different tokens (no hashing them together).
  EXPECT_TRUE(fresh_proposal({1, 1}, {0, 5, top}, 1).empty());
}

TEST(PromptLookupDrafter, NameAndOptions) {
  EXPECT_EQ(PromptLookupDrafter().name(), "lookup");
  EXPECT_EQ(PromptLookupDrafter({2, 5}).name(), "lookup:2-5");
  EXPECT_THROW(PromptLookupDrafter({0, 3}), Error);
  EXPECT_THROW(PromptLookupDrafter({3, 2}), Error);
  EXPECT_THROW(PromptLookupDrafter({1, 65}), Error);
}

// Exactness through the Generator, on tiny random models.
RandomModelOptions model_options(int32_t n_vocab, int32_t n_embd, int32_t n_layer, uint64_t seed) {
  RandomModelOptions options;
  options.n_vocab = n_vocab;
  options.n_embd = n_embd;
  options.n_head = 2;
  options.n_ff = 2 * n_embd;
  options.n_layer = n_layer;
  options.n_ctx = 128;
  options.seed = seed;
  return options;
}

TEST(PromptLookupDrafterExactness, GreedySpeculativeEqualsPlainGreedy) {
  testing::TempDir dir;
  write_random_model(model_options(32, 32, 2, 3), dir.file("target.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  PromptLookupDrafter drafter;
  const std::vector<std::vector<int32_t>> prompts = {
      {1}, {5, 6, 7, 5, 6}, {0, 31, 0, 31, 0}, {3, 9, 27, 3, 9, 27, 3}, {12, 4, 19, 4, 12, 4}};
  const auto result = testing::expect_greedy_identity(*target, drafter, prompts, 40);
  // The identity only means something if drafts were both kept and rejected.
  EXPECT_GT(result.accepted, 0) << result.drafted;
  EXPECT_LT(result.accepted, result.drafted);
}

TEST(PromptLookupDrafterExactness, SamplesFitTheTargetAtTemperatureOne) {
  testing::TempDir dir;
  write_random_model(model_options(6, 16, 2, 5), dir.file("target.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  PromptLookupDrafter drafter;
  SamplingParams params = testing::generation_options(1.0f, 3, 2).sampling;
  // A prompt "a b a": its tail "a" matches, so the first step drafts "b a".
  // Pick a and b so that the target likes b there (drafts get accepted).
  std::vector<int32_t> prompt;
  float best = -1.0f;
  for (int32_t a = 0; a < 6; ++a) {
    for (int32_t b = 0; b < 6; ++b) {
      const float p = testing::fresh_next_probs(*target, {a, b, a}, params)[b];
      if (a != b && p > best) {
        best = p;
        prompt = {a, b, a};
      }
    }
  }
  const auto result = testing::speculative_fit(*target, drafter, prompt, params, 2, 3, 100000);
  EXPECT_GT(result.fit.p_value, 1e-4) << result.fit.detail;
  EXPECT_GT(result.accepted, result.drafted / 20) << result.drafted;
  EXPECT_LT(result.accepted, result.drafted * 19 / 20) << result.drafted;
  // The same test rejects a wrong correction with this drafter's proposals.
  const auto wrong = testing::speculative_fit(*target, drafter, prompt, params, 2, 3, 100000,
                                              VerifyRule::kResampleFromTarget);
  EXPECT_LT(wrong.fit.p_value, 1e-4) << wrong.fit.detail;
}

}  // namespace
}  // namespace specula

// SuffixCache and SuffixCacheDrafter: the most frequent continuation of the
// longest known suffix, learning across sequences, eviction under the token
// budget (with exact bookkeeping: the index equals one built from what is
// left), sharing between threads, robustness, and exactness through the
// Generator (greedy identity, chi-square at T = 1).
#include "drafters/suffix_cache_drafter.h"

#include <gtest/gtest.h>

#include <climits>
#include <thread>

#include "core/error.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"

namespace specula {
namespace {

SuffixProposalOptions any_probability() {
  SuffixProposalOptions options;
  options.min_probability = 0.0f;
  return options;
}

std::vector<int32_t> proposal(const SuffixCache& cache, const std::vector<int32_t>& context,
                              int32_t g, SuffixProposalOptions options = any_probability(),
                              std::vector<float>* confidence = nullptr) {
  std::vector<int32_t> out;
  cache.propose(context, g, options, out, confidence);
  return out;
}

void add(SuffixCache& cache, const std::vector<int32_t>& tokens) {
  cache.append(cache.begin_sequence(), tokens);
}

TEST(SuffixCache, ProposesTheMostFrequentContinuation) {
  SuffixCache cache;
  add(cache, {1, 2, 3});
  add(cache, {1, 2, 4});
  add(cache, {1, 2, 3});
  std::vector<float> confidence;
  EXPECT_EQ(proposal(cache, {9, 1, 2}, 4, any_probability(), &confidence),
            std::vector<int32_t>{3});  // nothing ever followed 3
  ASSERT_EQ(confidence.size(), 1u);
  EXPECT_FLOAT_EQ(confidence[0], 2.0f / 3.0f);
  // A chain: each step follows the longest suffix of context + proposal.
  add(cache, {5, 6, 7, 8, 9, 10});
  EXPECT_EQ(proposal(cache, {0, 5}, 3), (std::vector<int32_t>{6, 7, 8}));
  EXPECT_EQ(proposal(cache, {0, 5}, 20), (std::vector<int32_t>{6, 7, 8, 9, 10}));
}

TEST(SuffixCache, TheLongestKnownSuffixDecides) {
  SuffixCache cache;
  add(cache, {5, 1, 2, 7});
  add(cache, {6, 1, 2, 8});
  add(cache, {6, 1, 2, 8});
  EXPECT_EQ(proposal(cache, {5, 1, 2}, 1), std::vector<int32_t>{7});
  EXPECT_EQ(proposal(cache, {0, 1, 2}, 1), std::vector<int32_t>{8});
  EXPECT_EQ(proposal(cache, {2}, 1), std::vector<int32_t>{8});
}

TEST(SuffixCache, TiesGoToTheMostRecentFollower) {
  SuffixCache cache;
  add(cache, {1, 2});
  add(cache, {1, 3});
  EXPECT_EQ(proposal(cache, {1}, 1), std::vector<int32_t>{3});
  add(cache, {1, 2});
  EXPECT_EQ(proposal(cache, {1}, 1), std::vector<int32_t>{2});
}

TEST(SuffixCache, StopsWhenTheContinuationIsUnlikely) {
  SuffixCache cache;
  add(cache, {1, 2, 5});
  add(cache, {1, 2, 5});
  add(cache, {1, 3, 6});
  SuffixProposalOptions options;
  options.min_probability = 0.7f;  // 2/3 after "1" is too low
  EXPECT_TRUE(proposal(cache, {1}, 4, options).empty());
  options.min_probability = 0.6f;  // 2/3, then 5 after "1 2" with 1.0
  EXPECT_EQ(proposal(cache, {1}, 4, options), (std::vector<int32_t>{2, 5}));
  options.min_count = 3;
  EXPECT_TRUE(proposal(cache, {1}, 4, options).empty());
  options.min_count = 2;
  EXPECT_EQ(proposal(cache, {1}, 4, options), (std::vector<int32_t>{2, 5}));
  // The product of the steps' frequencies counts, not each alone.
  add(cache, {2, 9});
  add(cache, {2, 9});
  add(cache, {2, 9});
  add(cache, {7, 2, 4});
  options = {1, 0.3f};
  // 2 follows 1 with 2/3; after "1 2" only 5 (1.0) -> 2/3.
  EXPECT_EQ(proposal(cache, {1}, 4, options), (std::vector<int32_t>{2, 5}));
  // After "8 2" (unknown), "2" alone: 9 with 3/6, then nothing follows 9.
  EXPECT_EQ(proposal(cache, {8, 2}, 4, options), std::vector<int32_t>{9});
  options.min_probability = 0.6f;
  EXPECT_TRUE(proposal(cache, {8, 2}, 4, options).empty());
}

TEST(SuffixCache, NothingToProposeIsNotAnError) {
  SuffixCache cache;
  EXPECT_TRUE(proposal(cache, {}, 4).empty());
  EXPECT_TRUE(proposal(cache, {1, 2}, 4).empty());
  add(cache, {1, 2});
  EXPECT_TRUE(proposal(cache, {}, 4).empty());
  EXPECT_TRUE(proposal(cache, {1}, 0).empty());
  EXPECT_TRUE(proposal(cache, {3}, 4).empty());
}

TEST(SuffixCache, IdsAtTheEdgesOfTheVocabulary) {
  SuffixCache cache;
  const int32_t top = INT32_MAX;
  add(cache, {0, top, 0, 0});
  EXPECT_EQ(proposal(cache, {top}, 1), std::vector<int32_t>{0});
  // After "0 top 0", then "0" whose followers top and 0 tie: 0 is newer.
  EXPECT_EQ(proposal(cache, {0, top}, 3), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(proposal(cache, {top, 0}, 1), std::vector<int32_t>{0});
}

TEST(SuffixCache, EvictsTheOldestTokensToStayWithinItsBudget) {
  SuffixCache cache({6, 3});
  add(cache, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(proposal(cache, {1}, 1), std::vector<int32_t>{2});
  add(cache, {7, 8, 9});  // 1, 2 and 3 go
  EXPECT_EQ(cache.stored_tokens(), 6);
  EXPECT_TRUE(proposal(cache, {1}, 1).empty());
  EXPECT_TRUE(proposal(cache, {2}, 1).empty());
  EXPECT_TRUE(proposal(cache, {3}, 1).empty());  // "3 -> 4" went with 3
  EXPECT_EQ(proposal(cache, {4}, 3), (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(proposal(cache, {7}, 3), (std::vector<int32_t>{8, 9}));
  add(cache, {10, 11, 12, 13, 14, 15, 16});  // longer than the budget alone
  EXPECT_EQ(cache.stored_tokens(), 6);
  EXPECT_EQ(cache.n_sequences(), 1);
  EXPECT_TRUE(proposal(cache, {8}, 1).empty());
  EXPECT_TRUE(proposal(cache, {10}, 1).empty());
  EXPECT_EQ(proposal(cache, {11}, 9), (std::vector<int32_t>{12, 13, 14, 15, 16}));
}

// After any history, the index must equal one built from the tokens still
// stored: eviction removes exactly what their insertion added.
TEST(SuffixCache, EvictionKeepsTheIndexExact) {
  Rng rng(3);
  for (int trial = 0; trial < 12; ++trial) {
    const SuffixCacheOptions options{5 + trial * 7, 1 + trial % 5};
    SuffixCache cache(options);
    std::vector<std::vector<int32_t>> sequences;
    const int n_sequences = 2 + trial % 4;
    for (int s = 0; s < n_sequences; ++s) {
      const SuffixCache::SequenceId id = cache.begin_sequence();
      sequences.emplace_back();
      const int appends = 1 + static_cast<int>(rng.next_u64() % 5);
      for (int a = 0; a < appends; ++a) {
        std::vector<int32_t> tokens(rng.next_u64() % 9);
        for (int32_t& t : tokens) t = static_cast<int32_t>(rng.next_u64() % 4);
        cache.append(id, tokens);
        sequences.back().insert(sequences.back().end(), tokens.begin(), tokens.end());
        ASSERT_LE(cache.stored_tokens(), options.max_tokens);
      }
    }
    // The survivors: the newest max_tokens tokens, in sequence order.
    int64_t total = 0;
    for (const auto& s : sequences) total += static_cast<int64_t>(s.size());
    int64_t drop = std::max<int64_t>(0, total - options.max_tokens);
    SuffixCache rebuilt(options);
    for (const auto& s : sequences) {
      const int64_t dropped_here = std::min<int64_t>(drop, static_cast<int64_t>(s.size()));
      drop -= dropped_here;
      if (dropped_here < static_cast<int64_t>(s.size())) {
        add(rebuilt, std::vector<int32_t>(s.begin() + dropped_here, s.end()));
      }
    }
    ASSERT_EQ(cache.stored_tokens(), rebuilt.stored_tokens()) << "trial " << trial;
    ASSERT_EQ(cache.n_entries(), rebuilt.n_entries()) << "trial " << trial;
    for (int probe = 0; probe < 50; ++probe) {
      std::vector<int32_t> context(1 + rng.next_u64() % 6);
      for (int32_t& t : context) t = static_cast<int32_t>(rng.next_u64() % 4);
      // Most-recent tie-breaks agree too: the survivors were added in order.
      EXPECT_EQ(proposal(cache, context, 4), proposal(rebuilt, context, 4))
          << "trial " << trial << ", probe " << probe;
    }
  }
}

TEST(SuffixCache, MemoryStaysBoundedByTheBudget) {
  const SuffixCacheOptions options{1000, 8};
  SuffixCache cache(options);
  Rng rng(9);
  // Many distinct contexts: the worst case for the index's size.
  uint64_t peak_bytes = 0;
  for (int s = 0; s < 40; ++s) {
    std::vector<int32_t> tokens(300);
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng.next_u64() % 50000);
    add(cache, tokens);
    ASSERT_LE(cache.stored_tokens(), options.max_tokens);
    ASSERT_LE(cache.n_entries(), options.max_tokens * options.max_order);
    peak_bytes = std::max(peak_bytes, cache.memory_bytes());
  }
  EXPECT_EQ(cache.stored_tokens(), options.max_tokens);
  // ~100 bytes per (token, order) entry, as the header says; generous room
  // for the bucket array.
  EXPECT_LE(peak_bytes, 200u * options.max_tokens * options.max_order);
  EXPECT_GT(peak_bytes, 20u * options.max_tokens * options.max_order);
}

TEST(SuffixCache, OptionsAreChecked) {
  EXPECT_THROW(SuffixCache({0, 4}), Error);
  EXPECT_THROW(SuffixCache({10, 0}), Error);
  EXPECT_THROW(SuffixCache({10, 65}), Error);
  SuffixCache cache;
  EXPECT_THROW(SuffixCacheDrafter(cache, {0, 0.1f}), Error);
  EXPECT_THROW(SuffixCacheDrafter(cache, {1, 1.5f}), Error);
  EXPECT_THROW(SuffixCacheDrafter(cache, {1, -0.1f}), Error);
}

std::vector<int32_t> draft(Drafter& drafter, const std::vector<int32_t>& context, int32_t g) {
  SamplingParams params;
  Rng rng(1);
  DraftProposal out;
  drafter.propose(context, g, params, rng, out);
  EXPECT_TRUE(out.deterministic());
  return out.tokens;
}

TEST(SuffixCacheDrafter, LearnsAcrossRequests) {
  SuffixCache cache;
  SuffixCacheDrafter first(cache, any_probability());
  std::vector<int32_t> sequence = {40, 41};
  first.begin(sequence);
  EXPECT_EQ(first.name(), "suffix");
  EXPECT_TRUE(draft(first, sequence, 3).empty());
  for (int32_t token : {42, 43, 44, 45}) {
    sequence.push_back(token);
    first.accept(sequence, 0);
  }
  // A later request (another drafter on the same cache) meets "41 42".
  SuffixCacheDrafter second(cache, any_probability());
  std::vector<int32_t> other = {7, 41};
  second.begin(other);
  EXPECT_EQ(draft(second, other, 3), (std::vector<int32_t>{42, 43, 44}));
  // And the second request's own tokens count from when they arrive.
  other.insert(other.end(), {42, 50});
  second.accept(other, 1);
  other.push_back(42);
  EXPECT_EQ(draft(second, other, 1), std::vector<int32_t>{50});
}

TEST(SuffixCacheDrafter, SeesEveryTokenTheGeneratorEmits) {
  testing::TempDir dir;
  RandomModelOptions o;
  o.n_vocab = 32;
  o.n_embd = 32;
  o.n_layer = 1;
  o.n_head = 2;
  o.n_ctx = 64;
  const std::string path = dir.file("suffix-target.gguf");
  write_random_model(o, path);
  const std::unique_ptr<Model> target = Model::load(path);
  Generator generator(*target, 64, nullptr);
  const std::vector<int32_t> prompt = {3, 4, 5, 6, 7};
  for (const int32_t n : {1, 12}) {
    SuffixCache cache;
    SuffixCacheDrafter drafter(cache, any_probability());
    const GenerationOutput out =
        generator.generate(prompt, &drafter, testing::generation_options(0.0f, n, 2));
    ASSERT_EQ(static_cast<int32_t>(out.tokens.size()), n);
    // The prompt and every generated token, the last step's included.
    EXPECT_EQ(cache.stored_tokens(), static_cast<int64_t>(prompt.size()) + n) << "n = " << n;
  }
}

TEST(SuffixCacheDrafter, ReportsConfidenceAndStopsBelowTheThreshold) {
  SuffixCache cache;
  add(cache, {1, 2, 3, 4});
  add(cache, {1, 2, 3, 5});
  add(cache, {1, 2, 3, 5});
  add(cache, {1, 2, 3, 5});
  SuffixCacheDrafter drafter(cache, any_probability());
  const std::vector<int32_t> context = {1};
  SamplingParams params;
  Rng rng(1);
  DraftProposal out;
  drafter.propose(context, 4, params, rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2, 3, 5}));
  EXPECT_EQ(out.confidence, (std::vector<float>{1.0f, 1.0f, 0.75f}));
  out.stop_confidence = 0.8f;
  add(cache, {3, 5, 6});
  drafter.propose(context, 4, params, rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2, 3, 5}));  // 5 is proposed, then stop
  out.stop_confidence = 0.7f;
  drafter.propose(context, 4, params, rng, out);
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{2, 3, 5, 6}));
  EXPECT_FLOAT_EQ(out.stop_confidence, 0.7f);  // an input: kept
}

TEST(SuffixCacheDrafter, ACallerThatStartsOverWithoutBeginIsHandled) {
  SuffixCache cache;
  SuffixCacheDrafter drafter(cache, any_probability());
  // No begin(): the first call starts a sequence.
  EXPECT_TRUE(draft(drafter, {1, 2, 3}, 2).empty());
  EXPECT_EQ(cache.stored_tokens(), 3);
  // A context that does not extend the last one starts another sequence
  // instead of gluing the two together.
  EXPECT_EQ(draft(drafter, {1}, 2), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(cache.n_sequences(), 2);
  EXPECT_EQ(cache.stored_tokens(), 4);
  drafter.accept(std::vector<int32_t>{}, 0);
  EXPECT_EQ(cache.stored_tokens(), 4);
}

TEST(SuffixCacheDrafter, ThreadsCanShareOneCache) {
  SuffixCache cache({500, 4});
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&cache, t] {
      SuffixCacheDrafter drafter(cache, any_probability());
      Rng rng(static_cast<uint64_t>(t));
      for (int request = 0; request < 20; ++request) {
        std::vector<int32_t> sequence = {t, request % 3};
        drafter.begin(sequence);
        for (int step = 0; step < 30; ++step) {
          draft(drafter, sequence, 4);
          sequence.push_back(static_cast<int32_t>(rng.next_u64() % 8));
          drafter.accept(sequence, 0);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(cache.stored_tokens(), 500);
  EXPECT_LE(cache.n_entries(), 500 * 4);
}

// Exactness through the Generator, on tiny random models.
RandomModelOptions model_options(int32_t n_vocab, int32_t n_embd, uint64_t seed) {
  RandomModelOptions options;
  options.n_vocab = n_vocab;
  options.n_embd = n_embd;
  options.n_head = 2;
  options.n_ff = 2 * n_embd;
  options.n_layer = 2;
  options.n_ctx = 128;
  options.seed = seed;
  return options;
}

TEST(SuffixCacheDrafterExactness, GreedySpeculativeEqualsPlainGreedy) {
  testing::TempDir dir;
  write_random_model(model_options(32, 32, 4), dir.file("target.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  SuffixCache cache;
  SuffixCacheDrafter drafter(cache, any_probability());
  // Other requests' text in the cache first, some of it misleading.
  add(cache, {5, 6, 7, 8, 9, 10, 11});
  add(cache, {0, 31, 30, 29, 0, 31, 1});
  const std::vector<std::vector<int32_t>> prompts = {
      {1}, {5, 6, 7}, {0, 31, 0, 31}, {3, 9, 27, 3, 9}, {12, 4, 19, 4, 12}, {31}};
  const auto result = testing::expect_greedy_identity(*target, drafter, prompts, 40);
  EXPECT_GT(result.accepted, 0) << result.drafted;
  EXPECT_LT(result.accepted, result.drafted);
}

TEST(SuffixCacheDrafterExactness, SamplesFitTheTargetAtTemperatureOne) {
  testing::TempDir dir;
  write_random_model(model_options(6, 16, 5), dir.file("target.gguf"));
  const auto target = Model::load(dir.file("target.gguf"));
  SamplingParams params = testing::generation_options(1.0f, 3, 2).sampling;
  const std::vector<int32_t> prompt = {2};
  // The cache learns the target's continuations over the generations, so
  // its drafts are often, but not always, right.
  SuffixCache cache;
  SuffixCacheDrafter drafter(cache, any_probability());
  const auto result = testing::speculative_fit(*target, drafter, prompt, params, 2, 3, 100000);
  EXPECT_GT(result.fit.p_value, 1e-4) << result.fit.detail;
  EXPECT_GT(result.drafted, 100000);
  EXPECT_GT(result.accepted, result.drafted / 20) << result.drafted;
  EXPECT_LT(result.accepted, result.drafted * 19 / 20) << result.drafted;
  SuffixCache fresh_cache;
  SuffixCacheDrafter fresh(fresh_cache, any_probability());
  const auto wrong = testing::speculative_fit(*target, fresh, prompt, params, 2, 3, 100000,
                                              VerifyRule::kResampleFromTarget);
  EXPECT_LT(wrong.fit.p_value, 1e-4) << wrong.fit.detail;
}

}  // namespace
}  // namespace specula

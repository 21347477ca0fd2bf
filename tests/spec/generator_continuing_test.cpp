// Generator::generate_continuing (a conversation's next turn, `specula
// chat`): it keeps the cache rows of the prefix the new prompt shares with
// the previous sequence, prefills only the rest, and gives exactly the
// tokens generate() gives from scratch, plainly and speculatively.
#include <gtest/gtest.h>

#include <vector>

#include "drafters/model_drafter.h"
#include "spec/drafter_exactness.h"
#include "spec/model_files.h"
#include "speculative/generator.h"

namespace specula {
namespace {

class GeneratorContinuing
    : public testing::SuiteModelPair<GeneratorContinuing, testing::small_model> {};

std::vector<int32_t> joined(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(GeneratorContinuing, ANextTurnPrefillsOnlyItsNewTokensAndMatchesAFreshGeneration) {
  const int32_t n_ctx = 128;
  for (const int32_t g : {0, 3}) {
    SCOPED_TRACE(g);
    Generator chat(target(), n_ctx, nullptr);
    Generator fresh(target(), n_ctx, nullptr);
    ModelDrafter drafter(draft(), n_ctx, nullptr);
    Drafter* const drafter_or_none = g > 0 ? &drafter : nullptr;
    Speculation speculation;
    if (drafter_or_none) speculation.drafters.push_back(drafter_or_none);
    const GeneratorOptions options = testing::generation_options(0.0f, 10, g);

    const std::vector<int32_t> first = testing::random_tokens(target(), 1, 9);
    const GenerationOutput one = chat.generate_continuing(first, speculation, options);
    EXPECT_EQ(chat.reused_tokens(), 0);
    EXPECT_EQ(chat.prefilled_tokens(), 9);
    ASSERT_EQ(one.tokens.size(), 10u);
    EXPECT_EQ(one.tokens, fresh.generate(first, drafter_or_none, options).tokens);

    // The next turn repeats the first and its answer, then adds 7 tokens.
    const std::vector<int32_t> next =
        joined(joined(first, one.tokens), testing::random_tokens(target(), 2, 7));
    const GenerationOutput two = chat.generate_continuing(next, speculation, options);
    // Kept: the first prompt and the answer but its last token, which was
    // sampled and never run through the target.
    EXPECT_EQ(chat.reused_tokens(), 9 + 10 - 1);
    EXPECT_EQ(chat.prefilled_tokens(), 1 + 7);
    EXPECT_EQ(two.tokens, fresh.generate(next, drafter_or_none, options).tokens);

    // A turn that rewrites the history keeps only the common prefix.
    std::vector<int32_t> edited = next;
    edited[4] = (edited[4] + 1) % target().config().n_vocab;
    const GenerationOutput three = chat.generate_continuing(edited, speculation, options);
    EXPECT_EQ(chat.reused_tokens(), 4);
    EXPECT_EQ(three.tokens, fresh.generate(edited, drafter_or_none, options).tokens);

    // generate() forgets the cache: the same prompt again reuses nothing
    // there, and continuing after it keeps what it left.
    fresh.generate(first, drafter_or_none, options);
    EXPECT_EQ(fresh.reused_tokens(), 0);
    EXPECT_EQ(fresh.generate_continuing(first, speculation, options).tokens, one.tokens);
    EXPECT_EQ(fresh.reused_tokens(), 8);
  }
}

}  // namespace
}  // namespace specula

#include "tokenizer/bpe_trainer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer_test_util.h"

namespace specula {
namespace {

std::string corpus(uint32_t seed, size_t n_words) {
  static const char* kWords[] = {"the",         "cat",      "sat",     "on",     "mat",
                                 "speculative", "decoding", "token",   "tokens", "draft",
                                 "verify",      "accept",   "Ünïcödé", "数据"};
  std::mt19937 rng(seed);
  std::string text;
  for (size_t i = 0; i < n_words; ++i) {
    text += kWords[std::uniform_int_distribution<size_t>(0, std::size(kWords) - 1)(rng)];
    text += (i % 13 == 12) ? "\n" : " ";
  }
  return text;
}

TrainedBpe train(size_t vocab_size, const std::string& text, const std::string& pre = "default") {
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.pre = pre;
  BpeTrainer trainer(options);
  trainer.add_text(text);
  return trainer.train();
}

TEST(BpeTrainer, LearnsFrequentWordsAsSingleTokens) {
  const TrainedBpe bpe = train(400, corpus(1, 5000));
  ASSERT_LE(bpe.tokens.size(), 400u);
  EXPECT_EQ(bpe.tokens[256], "<s>");
  EXPECT_EQ(bpe.tokens[257], "</s>");
  // " speculative" is frequent: it must end up one token (GPT-2 spelling of
  // the leading space is U+0120).
  EXPECT_NE(std::find(bpe.tokens.begin(), bpe.tokens.end(), "\xC4\xA0speculative"),
            bpe.tokens.end());

  GgufWriter writer;
  bpe.add_to_gguf(writer);
  auto loaded = testing_util::load_tokenizer(testing_util::write_temp_gguf(writer, "trained"));
  const Tokenizer& tokenizer = *loaded.tokenizer;
  const std::vector<int32_t> ids = tokenizer.encode("the cat speculative", false, false);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(tokenizer.bos(), 256);
  EXPECT_EQ(tokenizer.eos(), 257);
}

TEST(BpeTrainer, IsDeterministic) {
  const std::string text = corpus(2, 3000);
  const TrainedBpe a = train(350, text);
  const TrainedBpe b = train(350, text);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
}

TEST(BpeTrainer, TrainedVocabularyRoundTripsEveryByteString) {
  for (const char* pre : {"default", "gpt-2", "llama3"}) {
    const TrainedBpe bpe = train(500, corpus(3, 4000), pre);
    GgufWriter writer;
    bpe.add_to_gguf(writer);
    auto loaded = testing_util::load_tokenizer(
        testing_util::write_temp_gguf(writer, std::string("rt_") + pre));
    std::mt19937 rng(4);
    for (int trial = 0; trial < 100; ++trial) {
      const std::string text = trial % 2 ? testing_util::random_bytes(rng, 60)
                                         : corpus(static_cast<uint32_t>(trial), 20);
      ASSERT_EQ(loaded.tokenizer->decode(loaded.tokenizer->encode(text, true, false)), text) << pre;
    }
  }
}

TEST(BpeTrainer, MergesRespectTheTrainedOrder) {
  // "aaaa" repeated: the first merge is "a a"; "aa aa" comes next.
  const TrainedBpe bpe = train(260, std::string(1000, 'a') + " " + std::string(1000, 'a'), "gpt-2");
  ASSERT_GE(bpe.merges.size(), 2u);
  EXPECT_EQ(bpe.merges[0], "a a");
  EXPECT_EQ(bpe.merges[1], "aa aa");
}

TEST(BpeTrainer, RejectsATooSmallVocabularyAndUnknownPre) {
  BpeTrainerOptions small;
  small.vocab_size = 100;
  EXPECT_THROW(BpeTrainer{small}, Error);
  BpeTrainerOptions bad_pre;
  bad_pre.pre = "nope";
  EXPECT_THROW(BpeTrainer{bad_pre}, Error);
}

}  // namespace
}  // namespace specula

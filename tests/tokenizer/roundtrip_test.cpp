// Property tests on every tokenizer type: decode(encode(text)) == text for
// random Unicode and random bytes, and the streaming decoder fed one id at a
// time yields what decode yields for all ids at once.
#include <gtest/gtest.h>

#include <map>

#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace specula {
namespace {

using testing_util::LoadedTokenizer;

const Tokenizer& shared_tokenizer(const std::string& name) {
  static std::map<std::string, LoadedTokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache.emplace(name, testing_util::load_tokenizer(testing_util::shared_vocab(name))).first;
  }
  return *it->second.tokenizer;
}

// decode(encode(text)) with BOS added where the vocabulary adds it, so the
// SPM leading space comes off again.
std::string round_trip(const Tokenizer& tokenizer, const std::string& text) {
  const std::vector<int32_t> ids =
      tokenizer.encode(text, /*add_special=*/true, /*parse_special=*/false);
  return tokenizer.decode(ids);
}

std::string streamed(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDecoder decoder(tokenizer);
  std::string out;
  for (int32_t id : ids) {
    const std::string part = decoder.push(id);
    EXPECT_TRUE(utf8::is_valid(part));
    out += part;
  }
  out += decoder.flush();
  return out;
}

// Every piece as it is: ids that continue earlier text.
std::string pieces(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += tokenizer.token_to_piece(id);
  return out;
}

class RoundTripTest : public ::testing::TestWithParam<const char*> {
 protected:
  static bool is_starcoder() { return std::string(GetParam()) == "starcoder"; }
};

TEST_P(RoundTripTest, RandomUnicodeRoundTrips) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text = testing_util::random_unicode(rng, 1 + trial % 40, is_starcoder());
    ASSERT_EQ(round_trip(tokenizer, text), text) << "trial " << trial;
  }
}

TEST_P(RoundTripTest, RandomBytesRoundTrip) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  if (is_starcoder()) {
    GTEST_SKIP() << "StarCoder's vocabulary has no tokens for bytes 0xC0, 0xC1, 0xF1, 0xF5-0xFF";
  }
  std::mt19937 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string text = testing_util::random_bytes(rng, 1 + trial % 50);
    if (tokenizer.add_space_prefix() && text.find("\xE2\x96\x81") != std::string::npos) continue;
    ASSERT_EQ(round_trip(tokenizer, text), text) << "trial " << trial;
  }
}

TEST_P(RoundTripTest, StreamingEqualsBatchDecodeOfEncodedText) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 100; ++trial) {
    const std::string text = testing_util::random_unicode(rng, 1 + trial % 30, is_starcoder());
    const bool with_bos = trial % 2 == 0;
    const std::vector<int32_t> ids = tokenizer.encode(text, with_bos, false);
    const std::string batch = tokenizer.decode(ids);
    ASSERT_TRUE(utf8::is_valid(batch));
    // Without BOS the stream is a continuation: it keeps SPM's added space.
    const bool continuation = !ids.empty() && ids[0] != tokenizer.bos();
    ASSERT_EQ(streamed(tokenizer, ids), continuation ? pieces(tokenizer, ids) : batch);
  }
}

TEST_P(RoundTripTest, StreamingOfRandomIdsIsValidUtf8AndMatchesBatch) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> any_id(0, tokenizer.n_vocab() - 1);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<int32_t> ids(1 + static_cast<size_t>(trial % 25));
    for (int32_t& id : ids) id = any_id(rng);
    // Random ids may cut characters: the stream shows U+FFFD where decode
    // holds the ill-formed bytes.
    const std::string whole =
        !ids.empty() && ids[0] == tokenizer.bos() ? tokenizer.decode(ids) : pieces(tokenizer, ids);
    ASSERT_EQ(streamed(tokenizer, ids), utf8::sanitize(whole));
  }
}

INSTANTIATE_TEST_SUITE_P(RealModels, RoundTripTest,
                         ::testing::Values("gpt-2", "starcoder", "deepseek-coder", "llama-spm",
                                           "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(StreamingDecoder, HoldsAnEmojiSplitAcrossByteTokensUntilComplete) {
  const Tokenizer& tokenizer = shared_tokenizer("llama-spm");
  // "🦙" is F0 9F A6 99: four <0xNN> byte tokens (ids 3 + byte).
  const std::vector<int32_t> ids = {3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99};
  StreamingDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.push(ids[0]), "");
  EXPECT_EQ(decoder.push(ids[1]), "");
  EXPECT_EQ(decoder.push(ids[2]), "");
  EXPECT_EQ(decoder.push(ids[3]), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(decoder.flush(), "");
}

TEST(StreamingDecoder, FlushTurnsAnUnfinishedCharacterIntoReplacement) {
  const Tokenizer& tokenizer = shared_tokenizer("llama-spm");
  StreamingDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.push(3 + 0xE2), "");
  EXPECT_EQ(decoder.push(3 + 0x82), "");
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD");
}

TEST(StreamingDecoder, ABrokenSequenceIsReplacedAsSoonAsItCannotComplete) {
  const Tokenizer& tokenizer = shared_tokenizer("llama-spm");
  StreamingDecoder decoder(tokenizer);
  EXPECT_EQ(decoder.push(3 + 0xE2), "");
  // 'A' cannot continue E2: U+FFFD then 'A'.
  EXPECT_EQ(decoder.push(3 + 'A'),
            "\xEF\xBF\xBD"
            "A");
}

TEST(StreamingDecoder, KeepsTheSpaceOfAContinuationButNotAfterBos) {
  const Tokenizer& tokenizer = shared_tokenizer("llama-spm");
  // 15043 is "▁Hello", 3186 "▁world" in the LLaMA vocabulary.
  StreamingDecoder continuation(tokenizer);
  EXPECT_EQ(continuation.push(15043), " Hello");
  StreamingDecoder from_start(tokenizer);
  EXPECT_EQ(from_start.push(1), "");
  EXPECT_EQ(from_start.push(15043), "Hello");
  EXPECT_EQ(from_start.push(3186), " world");
  const std::vector<int32_t> ids = {1, 15043, 3186};
  EXPECT_EQ(tokenizer.decode(ids), "Hello world");
}

TEST(Decode, IdsOutsideTheVocabularyAreAnError) {
  const Tokenizer& tokenizer = shared_tokenizer("gpt-2");
  const std::vector<int32_t> bad = {15496, 50257};
  EXPECT_THROW(tokenizer.decode(bad), Error);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(tokenizer.decode(negative), Error);
  StreamingDecoder decoder(tokenizer);
  EXPECT_THROW(decoder.push(1 << 30), Error);
}

}  // namespace
}  // namespace specula

// The byte-only vocabulary `specula make-model` writes (issue 2): every byte
// is its own token, <s>/</s> are control tokens, <|extra_N|> user-defined.
#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace specula {
namespace {

class ByteLevelVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    loaded_ = testing_util::load_tokenizer(
        testing_util::write_temp_gguf(testing_util::make_model_vocab_writer(3), "byte_level"));
  }
  const Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  testing_util::LoadedTokenizer loaded_;
};

TEST_F(ByteLevelVocab, EachByteIsTheTokenWithItsValue) {
  EXPECT_EQ(tokenizer().n_vocab(), 261);
  EXPECT_EQ(tokenizer().bos(), 256);
  EXPECT_EQ(tokenizer().eos(), 257);
  EXPECT_TRUE(tokenizer().add_bos());
  EXPECT_EQ(tokenizer().encode("Hi é", false, false),
            (std::vector<int32_t>{72, 105, 32, 0xC3, 0xA9}));
  EXPECT_EQ(tokenizer().encode("Hi", true, false), (std::vector<int32_t>{256, 72, 105}));
  EXPECT_EQ(tokenizer().encode("", true, false), (std::vector<int32_t>{256}));
}

TEST_F(ByteLevelVocab, EveryByteStringRoundTrips) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 100; ++trial) {
    const std::string text = testing_util::random_bytes(rng, static_cast<size_t>(trial) * 3);
    const std::vector<int32_t> ids = tokenizer().encode(text, true, false);
    ASSERT_EQ(ids.size(), text.size() + 1);
    ASSERT_EQ(tokenizer().decode(ids), text);
  }
}

TEST_F(ByteLevelVocab, ControlTokensAreTextUnlessParsingSpecials) {
  EXPECT_EQ(tokenizer().encode("a</s>", false, false),
            (std::vector<int32_t>{'a', '<', '/', 's', '>'}));
  EXPECT_EQ(tokenizer().encode("a</s>", false, true), (std::vector<int32_t>{'a', 257}));
  // Control tokens do not show in decoded text.
  EXPECT_EQ(tokenizer().decode(std::vector<int32_t>{256, 'a', 257}), "a");
  EXPECT_TRUE(tokenizer().is_end_of_generation(257));
  EXPECT_FALSE(tokenizer().is_end_of_generation('a'));
}

TEST_F(ByteLevelVocab, UserDefinedTokensMatchAsAWholeAndDecodeAsText) {
  EXPECT_EQ(tokenizer().encode("x<|extra_2|>y", false, false),
            (std::vector<int32_t>{'x', 260, 'y'}));
  EXPECT_EQ(tokenizer().decode(std::vector<int32_t>{260}), "<|extra_2|>");
}

}  // namespace
}  // namespace specula

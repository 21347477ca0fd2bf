// The real vocabulary files shipped in tests/data/vocab (written by llama.cpp's
// converters) open and carry what the tokenizer needs.
#include <gtest/gtest.h>

#include <string>

#include "gguf/gguf_reader.h"

namespace specula {
namespace {

class GgufVocabFile : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufVocabFile, OpensWithTokens) {
  const std::string path = std::string(SPECULA_TEST_DATA_DIR) + "/vocab/" + GetParam();
  auto reader = GgufReader::open(path);
  EXPECT_EQ(reader->version(), 3u);
  EXPECT_TRUE(reader->tensors().empty());
  const auto model = reader->get_string("tokenizer.ggml.model");
  ASSERT_TRUE(model.has_value());
  EXPECT_TRUE(*model == "llama" || *model == "gpt2") << *model;
  const auto tokens = reader->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_GT(tokens->size(), 30000u);
  // Vocabulary sizes, when declared, agree with the token list.
  if (const auto types = reader->get_int_array("tokenizer.ggml.token_type")) {
    EXPECT_EQ(types->size(), tokens->size());
  }
  if (const auto scores = reader->get_float_array("tokenizer.ggml.scores")) {
    EXPECT_EQ(scores->size(), tokens->size());
  }
}

INSTANTIATE_TEST_SUITE_P(SharedVocab, GgufVocabFile,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                           "ggml-vocab-gpt-2.gguf", "ggml-vocab-starcoder.gguf",
                                           "ggml-vocab-deepseek-coder.gguf"));

TEST(GgufVocabFiles, SpmVocabularyHasItsKnownFirstTokens) {
  auto reader =
      GgufReader::open(std::string(SPECULA_TEST_DATA_DIR) + "/vocab/ggml-vocab-llama-spm.gguf");
  const auto tokens = reader->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  ASSERT_EQ(tokens->size(), 32000u);  // the Llama 2 SentencePiece vocabulary
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
}

}  // namespace
}  // namespace specula

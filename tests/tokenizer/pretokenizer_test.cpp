// Pre-tokenizer splits checked against hand-derived expectations from the
// regexes' documented behaviour, and coverage of arbitrary bytes.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer_test_util.h"

namespace specula {
namespace {

std::vector<std::string> pieces(std::string_view pre_name, std::string_view text) {
  std::vector<std::string> out;
  for (const TextSpan& span : PreTokenizer::for_name(pre_name)->split(text)) {
    out.emplace_back(text.substr(span.begin, span.size));
  }
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2SplitsWordsNumbersPunctuationAndSpaces) {
  EXPECT_EQ(pieces("gpt-2", "Hello world's  x 123!?"),
            (Pieces{"Hello", " world", "'s", " ", " x", " 123", "!?"}));
  EXPECT_EQ(pieces("gpt-2", "a  \n\tb"), (Pieces{"a", "  \n", "\t", "b"}));
  EXPECT_EQ(pieces("gpt-2", "Привет мир"), (Pieces{"Привет", " мир"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndKeepsNewlinesTogether) {
  EXPECT_EQ(pieces("llama3", "12345 ab\n\ncd"), (Pieces{"123", "45", " ab", "\n\n", "cd"}));
  EXPECT_EQ(pieces("llama-bpe", "I'M here"), (Pieces{"I", "'M", " here"}));
}

TEST(PreTokenizer, Qwen2SplitsEveryDigit) {
  EXPECT_EQ(pieces("qwen2", "x 2024"), (Pieces{"x", " ", "2", "0", "2", "4"}));
}

TEST(PreTokenizer, StarcoderIsolatesDigitsFirst) {
  EXPECT_EQ(pieces("starcoder", "ab12 c"), (Pieces{"ab", "1", "2", " c"}));
  EXPECT_EQ(pieces("refact", "ab12 c"), pieces("starcoder", "ab12 c"));
}

TEST(PreTokenizer, DeepseekCoderIsolatesNewlinesAndCjk) {
  // The letter regex takes " 中文"; the later CJK regex then cuts that piece
  // again, leaving the space on its own.
  EXPECT_EQ(pieces("deepseek-coder", "a\nb 中文1"), (Pieces{"a", "\n", "b", " ", "中文", "1"}));
}

TEST(PreTokenizer, DeepseekLlmKeepsLatinAndGreekWordsWithTheirSpace) {
  EXPECT_EQ(pieces("deepseek-llm", "Hi ώρα 42!"), (Pieces{"Hi", " ώρα", " ", "42", "!"}));
}

TEST(PreTokenizer, EveryNamedVariantCoversArbitraryBytesExactly) {
  std::mt19937 rng(3);
  for (const std::string& name : PreTokenizer::supported_names()) {
    std::unique_ptr<PreTokenizer> pre = PreTokenizer::for_name(name);
    for (int trial = 0; trial < 30; ++trial) {
      const std::string text =
          trial % 2 ? testing_util::random_bytes(rng, 40) : testing_util::random_unicode(rng, 40);
      size_t expected_begin = 0;
      for (const TextSpan& span : pre->split(text)) {
        ASSERT_EQ(span.begin, expected_begin) << name;
        ASSERT_GT(span.size, 0u) << name;
        expected_begin += span.size;
      }
      ASSERT_EQ(expected_begin, text.size()) << name;
    }
  }
}

TEST(PreTokenizer, UnknownNameIsAnErrorThatNamesIt) {
  try {
    PreTokenizer::for_name("no-such-pre");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos);
  }
}

TEST(PreTokenizer, NamesFromTheIssueAreSupported) {
  for (const char* name : {"default", "gpt-2", "llama3", "llama-bpe", "qwen2", "deepseek-coder",
                           "deepseek-llm", "starcoder", "falcon", "mpt", "gpt-neox", "refact"}) {
    EXPECT_NO_THROW(PreTokenizer::for_name(name)) << name;
  }
}

}  // namespace
}  // namespace specula

#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace specula {
namespace {

TEST(Utf8, ValidCharLengthRejectsOverlongSurrogatesAndTruncation) {
  EXPECT_EQ(utf8::valid_char_length("a", 0), 1u);
  EXPECT_EQ(utf8::valid_char_length("\xC3\xA9", 0), 2u);
  EXPECT_EQ(utf8::valid_char_length("\xC0\xAF", 0), 0u);          // overlong '/'
  EXPECT_EQ(utf8::valid_char_length("\xED\xA0\x80", 0), 0u);      // surrogate
  EXPECT_EQ(utf8::valid_char_length("\xF4\x90\x80\x80", 0), 0u);  // > U+10FFFF
  EXPECT_EQ(utf8::valid_char_length("\xE2\x82", 0), 0u);          // truncated
  EXPECT_EQ(utf8::valid_char_length("\x80", 0), 0u);
}

TEST(Utf8, StablePrefixHoldsOnlyAViableUnfinishedCharacter) {
  EXPECT_EQ(utf8::stable_prefix_length("ab\xE2\x82"), 2u);
  EXPECT_EQ(utf8::stable_prefix_length("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(utf8::stable_prefix_length("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(utf8::stable_prefix_length("ab\xE0\x80"), 4u);  // E0 80 can never complete
  EXPECT_EQ(utf8::stable_prefix_length("ab\x80"), 3u);
  EXPECT_EQ(utf8::stable_prefix_length(""), 0u);
}

TEST(Utf8, SanitizeReplacesEachMaximalIllFormedSubpart) {
  EXPECT_EQ(utf8::sanitize("a\xFF"
                           "b"),
            "a\xEF\xBF\xBD"
            "b");
  // E2 82 is one maximal subpart (one U+FFFD); then 'x'.
  EXPECT_EQ(utf8::sanitize("\xE2\x82x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(utf8::sanitize("\xC3\xA9"), "\xC3\xA9");
  EXPECT_TRUE(utf8::is_valid(utf8::sanitize("\xF0\x9F\xC3\x28\xED\xA0\x80")));
}

TEST(Utf8, Gpt2ByteMapIsABijection) {
  // Spot values from GPT-2's published table: space is U+0120 "Ġ",
  // newline U+010A "Ċ", '!' itself.
  EXPECT_EQ(utf8::byte_to_char()[' '], "\xC4\xA0");
  EXPECT_EQ(utf8::byte_to_char()['\n'], "\xC4\x8A");
  EXPECT_EQ(utf8::byte_to_char()['!'], "!");
  for (int b = 0; b < 256; ++b) {
    const std::string& s = utf8::byte_to_char()[static_cast<size_t>(b)];
    const size_t n = utf8::valid_char_length(s, 0);
    ASSERT_EQ(n, s.size());
    EXPECT_EQ(utf8::char_to_byte(utf8::decode_codepoint(s, 0, n)), b);
  }
}

}  // namespace
}  // namespace specula

#include "core/split_list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace specula {
namespace {

using Items = std::vector<std::string>;

TEST(SplitList, CutsAtTheSeparatorAndDropsBlanksAroundItems) {
  EXPECT_EQ(split_list("1,2,4", "--list"), (Items{"1", "2", "4"}));
  EXPECT_EQ(split_list(" 1 ,\t2, 4 ", "--list"), (Items{"1", "2", "4"}));
  EXPECT_EQ(split_list("model", "--drafter"), (Items{"model"}));
  EXPECT_EQ(split_list("a b,c", "--list"), (Items{"a b", "c"}));  // inner blanks stay
}

TEST(SplitList, OneSeparatorAtTheEndIsAllowed) {
  EXPECT_EQ(split_list("1,2,", "--list"), (Items{"1", "2"}));
  EXPECT_EQ(split_list("1,2 , ", "--list"), (Items{"1", "2"}));
}

TEST(SplitList, OtherSeparators) {
  EXPECT_EQ(split_list("model,lookup; suffix", "--drafter-sets", ';'),
            (Items{"model,lookup", "suffix"}));
}

std::string message_of(std::string_view text, std::string_view what) {
  try {
    split_list(text, what);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SplitList, AnEmptyItemIsAnErrorNamingWhatWasParsed) {
  for (const char* text : {"1,,2", ",1", "1, ,2", "1,2,,"}) {
    const std::string message = message_of(text, "--decode");
    EXPECT_NE(message.find(std::string("--decode \"") + text + "\""), std::string::npos)
        << text << ": " << message;
    EXPECT_NE(message.find("empty item"), std::string::npos) << text << ": " << message;
  }
  EXPECT_NE(message_of("1,,2", "--ids").find("(number 2)"), std::string::npos);
  EXPECT_NE(message_of(",1", "--ids").find("(number 1)"), std::string::npos);
}

TEST(SplitList, NoItemsIsAnError) {
  for (const char* text : {"", " ", ",", " , "}) {
    EXPECT_NE(message_of(text, "--ids").find("holds no items"), std::string::npos) << text;
  }
}

std::string int_message_of(std::string_view text) {
  try {
    split_int_list(text, "--prompt-ids");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SplitIntList, ParsesIntegers) {
  EXPECT_EQ(split_int_list("1, 15,42", "--prompt-ids"), (std::vector<int32_t>{1, 15, 42}));
  EXPECT_EQ(split_int_list("-3", "--x"), (std::vector<int32_t>{-3}));
  EXPECT_EQ(split_int_list("2147483647,-2147483648", "--x"),
            (std::vector<int32_t>{2147483647, -2147483647 - 1}));
}

TEST(SplitIntList, ABadItemIsAnErrorNamingIt) {
  EXPECT_NE(int_message_of("1,x,3").find("\"x\" is not an integer"), std::string::npos);
  EXPECT_NE(int_message_of("1,2.5").find("\"2.5\" is not an integer"), std::string::npos);
  EXPECT_NE(int_message_of("1 2").find("\"1 2\" is not an integer"), std::string::npos);
  EXPECT_NE(int_message_of("2147483648").find("does not fit"), std::string::npos);
  EXPECT_NE(int_message_of("1,,2").find("empty item"), std::string::npos);
  EXPECT_NE(int_message_of("").find("--prompt-ids"), std::string::npos);
}

}  // namespace
}  // namespace specula

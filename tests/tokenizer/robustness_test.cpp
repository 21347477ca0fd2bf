// Hostile input: invalid UTF-8, NUL bytes, a BOM, long runs of one
// character, and malformed vocabularies. Each gives a clear Error or the
// documented behaviour, never a crash (the ASan build checks the "never").
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer_test_util.h"

namespace specula {
namespace {

const Tokenizer& shared_tokenizer(const std::string& name) {
  static std::map<std::string, testing_util::LoadedTokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache.emplace(name, testing_util::load_tokenizer(testing_util::shared_vocab(name))).first;
  }
  return *it->second.tokenizer;
}

class HostileText : public ::testing::TestWithParam<const char*> {};

TEST_P(HostileText, InvalidUtf8NulAndBomRoundTrip) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  const std::string cases[] = {
      std::string("a\0b\0\0c", 6), "\xEF\xBB\xBFHello", "\xFF\xFE\x80 x", "\xC3", "ab\xE2\x82",
      "\xED\xA0\x80 surrogate",    "\xC0\xAF overlong",
  };
  for (const std::string& text : cases) {
    std::string expected = text;
    if (std::string(GetParam()) == "starcoder") {
      // StarCoder has no tokens (and no unknown token) for bytes that never
      // occur in valid UTF-8 (and 0xF1): they are dropped, as documented.
      std::erase_if(expected, [](char c) {
        const auto b = static_cast<uint8_t>(c);
        return b == 0xC0 || b == 0xC1 || b == 0xF1 || b >= 0xF5;
      });
    }
    const std::vector<int32_t> ids = tokenizer.encode(text, true, true);
    EXPECT_EQ(tokenizer.decode(ids), expected);
  }
}

TEST_P(HostileText, LongRunsOfOneCharacterRoundTrip) {
  const Tokenizer& tokenizer = shared_tokenizer(GetParam());
  // 10 MB runs belong in the benchmark; 256 KiB is enough to catch a
  // quadratic algorithm (it would take minutes) and keeps the test short.
  for (const std::string unit : {"a", " ", "\n", "3", "\xC3\xA9", "!"}) {
    std::string text;
    while (text.size() < 256 * 1024) text += unit;
    const std::vector<int32_t> ids = tokenizer.encode(text, true, false);
    ASSERT_EQ(tokenizer.decode(ids), text) << "unit \"" << unit << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(RealModels, HostileText,
                         ::testing::Values("gpt-2", "starcoder", "deepseek-coder", "llama-spm",
                                           "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(SpecialTokens, ParsedOnlyWhenAsked) {
  const Tokenizer& gpt2 = shared_tokenizer("gpt-2");
  EXPECT_EQ(gpt2.encode("<|endoftext|>", false, true), (std::vector<int32_t>{50256}));
  const std::vector<int32_t> plain = gpt2.encode("<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(gpt2.decode(plain), "<|endoftext|>");
  const Tokenizer& phi3 = shared_tokenizer("phi-3");
  // 32010 <|user|>, 32007 <|end|>, 32001 <|assistant|> in Phi-3's vocabulary.
  const std::vector<int32_t> chat = phi3.encode("<|user|>\nHi<|end|>\n<|assistant|>", false, true);
  EXPECT_EQ(chat.front(), 32010);
  EXPECT_NE(std::find(chat.begin(), chat.end(), 32007), chat.end());
  EXPECT_EQ(chat.back(), 32001);
  EXPECT_TRUE(phi3.is_end_of_generation(32007));
  EXPECT_TRUE(phi3.is_end_of_generation(32000));
  EXPECT_FALSE(phi3.is_end_of_generation(32010));
}

// A small gpt2 vocabulary: the 256 bytes, then "ab" and "abc", with merges.
GgufWriter tiny_bpe_writer() {
  std::vector<std::string> tokens = testing_util::gpt2_byte_tokens();
  tokens.push_back("ab");
  tokens.push_back("abc");
  GgufWriter writer;
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "gpt-2");
  writer.set_string_array("tokenizer.ggml.tokens", tokens);
  return writer;
}

class MalformedVocab : public ::testing::Test {
 protected:
  void SetUp() override { set_log_level(LogLevel::kError); }
  void TearDown() override { set_log_level(LogLevel::kWarn); }
};

TEST_F(MalformedVocab, MergesNamingUnknownTokensAreSkipped) {
  GgufWriter writer = tiny_bpe_writer();
  writer.set_string_array("tokenizer.ggml.merges", {"a b", "x nosuchtoken", "nospace", "ab c"});
  auto loaded = testing_util::load_tokenizer(testing_util::write_temp_gguf(writer, "bad_merges"));
  EXPECT_EQ(loaded.tokenizer->encode("abc", false, false), (std::vector<int32_t>{257}));
  EXPECT_EQ(loaded.tokenizer->encode("xab", false, false), (std::vector<int32_t>{'x', 256}));
}

TEST_F(MalformedVocab, TokenTypeOfTheWrongLengthIsIgnored) {
  GgufWriter writer = tiny_bpe_writer();
  writer.set_string_array("tokenizer.ggml.merges", {"a b"});
  writer.set_int32_array("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 3});
  auto loaded = testing_util::load_tokenizer(testing_util::write_temp_gguf(writer, "bad_types"));
  EXPECT_EQ(loaded.tokenizer->encode("ab", false, false), (std::vector<int32_t>{256}));
}

TEST_F(MalformedVocab, SpecialIdsOutOfRangeAreDisabled) {
  GgufWriter writer = tiny_bpe_writer();
  writer.set_string_array("tokenizer.ggml.merges", {});
  writer.set_uint32("tokenizer.ggml.bos_token_id", 1000000);
  writer.set_int32("tokenizer.ggml.eos_token_id", -5);
  writer.set_bool("tokenizer.ggml.add_bos_token", true);
  auto loaded = testing_util::load_tokenizer(testing_util::write_temp_gguf(writer, "bad_special"));
  EXPECT_EQ(loaded.tokenizer->bos(), -1);
  EXPECT_EQ(loaded.tokenizer->eos(), -1);
  EXPECT_FALSE(loaded.tokenizer->add_bos());
  EXPECT_EQ(loaded.tokenizer->encode("a", true, false), (std::vector<int32_t>{'a'}));
}

void expect_error_mentioning(GgufWriter& writer, const std::string& name,
                             const std::string& needle) {
  const std::string path = testing_util::write_temp_gguf(writer, name);
  std::unique_ptr<GgufReader> file = GgufReader::open(path);
  try {
    Tokenizer::from_gguf(*file);
    ADD_FAILURE() << "no error for " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST_F(MalformedVocab, UnknownPreTokenizerIsAnErrorNamingIt) {
  GgufWriter writer;
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "mystery-pre");
  writer.set_string_array("tokenizer.ggml.tokens", testing_util::gpt2_byte_tokens());
  writer.set_string_array("tokenizer.ggml.merges", {});
  expect_error_mentioning(writer, "bad_pre", "mystery-pre");
}

TEST_F(MalformedVocab, UnknownModelMissingTokensAndMissingMergesAreErrors) {
  GgufWriter unknown_model;
  unknown_model.set_string("tokenizer.ggml.model", "wordpiece-ish");
  unknown_model.set_string_array("tokenizer.ggml.tokens", {"a"});
  expect_error_mentioning(unknown_model, "bad_model", "wordpiece-ish");

  GgufWriter no_tokens;
  no_tokens.set_string("tokenizer.ggml.model", "llama");
  expect_error_mentioning(no_tokens, "no_tokens", "tokenizer.ggml.tokens");

  GgufWriter no_merges;
  no_merges.set_string("tokenizer.ggml.model", "gpt2");
  no_merges.set_string_array("tokenizer.ggml.tokens", testing_util::gpt2_byte_tokens());
  expect_error_mentioning(no_merges, "no_merges", "tokenizer.ggml.merges");

  GgufWriter no_model;
  no_model.set_string("general.architecture", "llama");
  expect_error_mentioning(no_model, "no_model", "tokenizer.ggml.model");
}

TEST_F(MalformedVocab, SpmWithoutByteTokensFallsBackToUnknown) {
  // "▁a" and "a" exist; "é" has neither a token nor byte tokens.
  GgufWriter writer;
  writer.set_string("tokenizer.ggml.model", "llama");
  writer.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a",
                                                    "\xE2\x96\x81"
                                                    "a"});
  writer.set_float32_array("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1, -2, -0.5f});
  writer.set_int32_array("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1, 1, 1});
  writer.set_uint32("tokenizer.ggml.unknown_token_id", 0);
  writer.set_uint32("tokenizer.ggml.bos_token_id", 1);
  writer.set_uint32("tokenizer.ggml.eos_token_id", 2);
  auto loaded = testing_util::load_tokenizer(testing_util::write_temp_gguf(writer, "spm_no_bytes"));
  EXPECT_EQ(loaded.tokenizer->encode("a\xC3\xA9"
                                     "a",
                                     false, false),
            (std::vector<int32_t>{5, 0, 4}));
  // The unknown token decodes as U+FFFD: this round trip is lossy by design.
  EXPECT_EQ(loaded.tokenizer->decode(std::vector<int32_t>{1, 5, 0, 4}),
            "a\xEF\xBF\xBD"
            "a");
}

}  // namespace
}  // namespace specula

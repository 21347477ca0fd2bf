// The vocabularies of real models in tests/data/vocab, each with llama.cpp's
// test texts (.inp, cases separated by "\n__ggml_vocab_test__\n") and the ids
// the models' own Hugging Face tokenizers produced for them (.out, one line
// of space-separated ids per case, encoded without added BOS/EOS).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace specula {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> split(const std::string& text, const std::string& separator) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (;;) {
    const size_t at = text.find(separator, begin);
    if (at == std::string::npos) {
      parts.push_back(text.substr(begin));
      return parts;
    }
    parts.push_back(text.substr(begin, at - begin));
    begin = at + separator.size();
  }
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<VocabCase> load_cases(const std::string& gguf_path) {
  std::vector<std::string> inputs = split(read_file(gguf_path + ".inp"), "\n__ggml_vocab_test__\n");
  std::vector<std::string> outputs = split(read_file(gguf_path + ".out"), "\n");
  // Each case, the last one included, ends with a separator (or a newline),
  // so both lists end with an empty remainder.
  EXPECT_TRUE(!inputs.empty() && inputs.back().empty());
  EXPECT_TRUE(!outputs.empty() && outputs.back().empty());
  inputs.pop_back();
  outputs.pop_back();
  EXPECT_EQ(inputs.size(), outputs.size());
  std::vector<VocabCase> cases;
  for (size_t i = 0; i < inputs.size() && i < outputs.size(); ++i) {
    VocabCase c;
    c.text = inputs[i];
    std::istringstream ids(outputs[i]);
    int32_t id = 0;
    while (ids >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  return cases;
}

class VocabFileTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabFileTest, EveryCaseMatchesTheReferenceIds) {
  const std::string path =
      std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + GetParam() + ".gguf";
  std::unique_ptr<GgufReader> file = GgufReader::open(path);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  const std::vector<VocabCase> cases = load_cases(path);
  ASSERT_GT(cases.size(), 40u);
  size_t failures = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> ids =
        tokenizer->encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (ids != c.ids) {
      ++failures;
      std::ostringstream got, want;
      for (int32_t id : ids) got << ' ' << id;
      for (int32_t id : c.ids) want << ' ' << id;
      ADD_FAILURE() << "text: \"" << c.text << "\"\n got:" << got.str() << "\nwant:" << want.str();
    }
  }
  EXPECT_EQ(failures, 0u);
}

TEST_P(VocabFileTest, DecodingTheReferenceIdsGivesTheTextBack) {
  const std::string path =
      std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + GetParam() + ".gguf";
  std::unique_ptr<GgufReader> file = GgufReader::open(path);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  for (const VocabCase& c : load_cases(path)) {
    std::vector<int32_t> ids = c.ids;
    // SPM adds a space in front of the text; a leading BOS tells decode to
    // take it off again.
    if (tokenizer->add_space_prefix() && !c.text.empty()) ids.insert(ids.begin(), tokenizer->bos());
    std::string decoded = tokenizer->decode(ids);
    EXPECT_EQ(decoded, c.text);
  }
}

// The reference ids are encoded without BOS: decoding them as they are must
// give the text, not the text with SPM's added space in front (issue 15).
TEST_P(VocabFileTest, DecodingTheReferenceIdsWithoutBosGivesTheTextBack) {
  const std::string path =
      std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + GetParam() + ".gguf";
  std::unique_ptr<GgufReader> file = GgufReader::open(path);
  std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  for (const VocabCase& c : load_cases(path)) {
    EXPECT_EQ(tokenizer->decode(c.ids), c.text);
  }
}

INSTANTIATE_TEST_SUITE_P(RealModels, VocabFileTest,
                         ::testing::Values("gpt-2", "starcoder", "deepseek-coder", "llama-spm",
                                           "phi-3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace specula

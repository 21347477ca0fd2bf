// `specula tokenize`, `tokenizer train`, and `make-model --tokenizer-from`
// followed by `generate`, run as the real executable on the vocabularies of
// real models (tests/data/vocab: llama.cpp's test texts in .inp, the ids of
// each model's Hugging Face tokenizer in .out, encoded without BOS/EOS).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"
#include "gguf/gguf_writer.h"

namespace specula::testing {
namespace {

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

struct SplitResult {
  int exit_code = -1;
  std::string out;  // stdout only: the tokens or text, byte for byte
  std::string err;
};

// Like run_cli, but keeps stdout apart from stderr, where load warnings
// (e.g. StarCoder's missing bytes) and summaries go.
// `stdin_path`: the file to read as standard input (default: nothing).
SplitResult run_split(const TempDir& dir, const std::string& args,
                      const std::string& stdin_path = "/dev/null") {
  const std::string err_path = dir.file("stderr.txt");
  const std::string command = std::string(SPECULA_CLI_PATH) + " " + args + " 2>" +
                              shell_quote(err_path) + " <" + shell_quote(stdin_path);
  SplitResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.err = read_file(err_path);
  return result;
}

// Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF),
// written here independently of the tokenizer's own helpers.
bool is_valid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t length;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: texts, each followed by "\n__ggml_vocab_test__\n"; .out: one line
// of space-separated ids per text.
std::vector<VocabCase> load_cases(const std::string& gguf_path) {
  const std::string inputs = read_file(gguf_path + ".inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::istringstream outputs(read_file(gguf_path + ".out"));
  std::vector<VocabCase> cases;
  for (size_t begin = 0;;) {
    const size_t end = inputs.find(separator, begin);
    if (end == std::string::npos) break;
    VocabCase c;
    c.text = inputs.substr(begin, end - begin);
    std::string line;
    if (!std::getline(outputs, line)) break;
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) c.ids.push_back(id);
    cases.push_back(std::move(c));
    begin = end + separator.size();
  }
  return cases;
}

std::string join(const std::vector<int32_t>& ids, const char* separator) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? separator : "") + std::to_string(ids[i]);
  return out;
}

// Few, as each is a process that loads the vocabulary (seconds under ASan):
// "ied 4 ½ months", the empty text, a lone space, Cyrillic, then emoji + CJK +
// digits, and the last: whitespace runs, emoji sequences, digit runs, code.
// The tokenizer tests run every case through the library.
const size_t kCases[] = {0, 2, 3, 20, 32, 45};

struct Vocab {
  const char* name;
  const char* model;  // tokenizer.ggml.model
  int32_t spm_bos;    // SPM: the BOS id that tells decode to drop the leading space; else -1
  int32_t n_tokens;
};

std::string vocab_path(const Vocab& vocab) {
  return std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + vocab.name + ".gguf";
}

class TokenizerCli : public ::testing::TestWithParam<Vocab> {
 protected:
  TempDir dir_;
};

TEST_P(TokenizerCli, IdsMatchTheReference) {
  const std::string vocab = vocab_path(GetParam());
  const std::vector<VocabCase> cases = load_cases(vocab);
  ASSERT_GT(cases.size(), 45u);
  for (const size_t index : kCases) {
    const VocabCase& c = cases[index];
    SCOPED_TRACE("case " + std::to_string(index) + ": " + c.text);
    write_file(dir_.file("case.txt"), c.text);
    const SplitResult result = run_split(
        dir_, "tokenize -m " + vocab + " --ids --no-special --file " + dir_.file("case.txt"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, join(c.ids, " ") + "\n");
  }
  // The text from standard input, by '-' as the text or as the file.
  const VocabCase& c = cases.at(32);
  write_file(dir_.file("case.txt"), c.text);
  for (const char* stdin_flag : {"-", "--file -"}) {
    SCOPED_TRACE(stdin_flag);
    const SplitResult result = run_split(
        dir_, "tokenize -m " + vocab + " --ids --no-special " + stdin_flag, dir_.file("case.txt"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, join(c.ids, " ") + "\n");
  }
}

TEST_P(TokenizerCli, DecodingTheReferenceIdsGivesTheText) {
  const Vocab& param = GetParam();
  const std::string vocab = vocab_path(param);
  const std::vector<VocabCase> cases = load_cases(vocab);
  ASSERT_GT(cases.size(), 45u);
  for (const size_t index : kCases) {
    const VocabCase& c = cases[index];
    SCOPED_TRACE("case " + std::to_string(index) + ": " + c.text);
    std::vector<int32_t> ids = c.ids;
    // SPM encodes " " + text; a leading BOS marks the ids as a whole text,
    // so decode drops that space again (docs/tokenizers.md).
    if (param.spm_bos >= 0) ids.insert(ids.begin(), param.spm_bos);
    if (ids.empty()) continue;  // no ids to give --decode
    const SplitResult result =
        run_split(dir_, "tokenize -m " + vocab + " --decode " + shell_quote(join(ids, ",")));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, c.text + "\n");
  }
}

TEST_P(TokenizerCli, JsonParses) {
  const Vocab& param = GetParam();
  const std::string vocab = vocab_path(param);
  const VocabCase c = load_cases(vocab).at(32);  // emoji, CJK, digits, an apostrophe
  write_file(dir_.file("case.txt"), c.text);
  const SplitResult encoded = run_split(
      dir_, "tokenize -m " + vocab + " --json --no-special --file " + dir_.file("case.txt"));
  ASSERT_EQ(encoded.exit_code, 0) << encoded.err;
  const nlohmann::json json = nlohmann::json::parse(encoded.out);
  EXPECT_EQ(json.at("model"), param.model);
  EXPECT_EQ(json.at("ids").get<std::vector<int32_t>>(), c.ids);
  EXPECT_EQ(json.at("n_tokens"), c.ids.size());
  EXPECT_EQ(json.at("pieces").size(), c.ids.size());
  EXPECT_EQ(json.at("token_texts").size(), c.ids.size());

  std::vector<int32_t> ids = c.ids;
  if (param.spm_bos >= 0) ids.insert(ids.begin(), param.spm_bos);
  const SplitResult decoded =
      run_split(dir_, "tokenize -m " + vocab + " --json --decode " + join(ids, ","));
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  const nlohmann::json text = nlohmann::json::parse(decoded.out);
  EXPECT_EQ(text.at("text"), c.text);
  EXPECT_EQ(text.at("valid_utf8"), true);
}

// A random model carrying this vocabulary tokenizes as the vocabulary does,
// generates valid UTF-8, and a draft derived from it changes nothing at
// temperature 0.
TEST_P(TokenizerCli, ModelWithThisTokenizerGenerates) {
  const Vocab& param = GetParam();
  const std::string vocab = vocab_path(param);
  const std::string model = dir_.file("model.gguf");
  const std::string draft = dir_.file("draft.gguf");
  const SplitResult made =
      run_split(dir_, "make-model --tokenizer-from " + vocab + " --out " + model +
                          " --embd 16 --layers 2 --heads 2 --ff 32 "
                          "--type f16 --tied --ctx 128");
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  EXPECT_NE(made.out.find("vocab " + std::to_string(param.n_tokens)), std::string::npos)
      << made.out;
  ASSERT_EQ(run_split(dir_, "make-model --from " + model + " --layers 1 --out " + draft).exit_code,
            0);

  const SplitResult from_vocab = run_split(dir_, "tokenize -m " + vocab + " --ids 'Hello world'");
  const SplitResult from_model = run_split(dir_, "tokenize -m " + model + " --ids 'Hello world'");
  ASSERT_EQ(from_model.exit_code, 0) << from_model.err;
  EXPECT_GT(from_model.out.size(), 1u);
  EXPECT_EQ(from_model.out, from_vocab.out);

  const std::string generate = "generate -q --temp 0 -n 8 -m " + model;
  const SplitResult plain = run_split(dir_, generate + " 'Hello world'");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_TRUE(is_valid_utf8(plain.out)) << plain.out;
  const SplitResult speculative = run_split(dir_, generate + " -d " + draft + " 'Hello world'");
  ASSERT_EQ(speculative.exit_code, 0) << speculative.err;
  EXPECT_EQ(speculative.out, plain.out);

  // The same tokens, not only the same text.
  const SplitResult plain_json = run_split(dir_, generate + " --json 'Hello world'");
  const SplitResult speculative_json =
      run_split(dir_, generate + " -d " + draft + " --json 'Hello world'");
  ASSERT_EQ(plain_json.exit_code, 0) << plain_json.err;
  ASSERT_EQ(speculative_json.exit_code, 0) << speculative_json.err;
  const nlohmann::json plain_tokens = nlohmann::json::parse(plain_json.out).at("tokens");
  EXPECT_GE(plain_tokens.size(), 1u);
  EXPECT_LE(plain_tokens.size(), 8u);
  EXPECT_EQ(nlohmann::json::parse(speculative_json.out).at("tokens"), plain_tokens);
  EXPECT_EQ(nlohmann::json::parse(speculative_json.out).at("mode"), "speculative");
}

INSTANTIATE_TEST_SUITE_P(RealModels, TokenizerCli,
                         ::testing::Values(Vocab{"gpt-2", "gpt2", -1, 50257},
                                           Vocab{"starcoder", "gpt2", -1, 49152},
                                           Vocab{"deepseek-coder", "gpt2", -1, 32256},
                                           Vocab{"llama-spm", "llama", 1, 32000},
                                           Vocab{"phi-3", "llama", 1, 32064}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// Some 40 KB of words, numbers, punctuation and non-ASCII text.
std::string training_text() {
  const std::vector<std::string> words = {
      "the",   "speculative", "decoding", "token",  "model",  "draft", "target", "accepted",
      "bytes", "Unicode",     "naïve",    "Straße", "日本語", "текст", "🚀",      "(x)",
      "x+1;",  "return",      "42",       "3.14",   "\t",     "\n"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick(0, words.size() - 1);
  std::string text;
  while (text.size() < 40000) text += words[pick(rng)] + " ";
  return text;
}

class TokenizerTrainCli : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(TokenizerTrainCli, TrainedVocabularyLoadsAndRoundTrips) {
  const std::string corpus = dir_.file("corpus.txt");
  const std::string bpe = dir_.file("bpe.gguf");
  write_file(corpus, training_text());
  const SplitResult trained =
      run_split(dir_, "tokenizer train --input " + corpus + " --vocab-size 1000 --out " + bpe);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;

  // A text the trainer never saw, with words it did see.
  const std::string text = "the draft model: naïve Straße, 日本語 текст 🚀 return 42;\n";
  write_file(dir_.file("text.txt"), text);
  const SplitResult encoded = run_split(
      dir_, "tokenize -m " + bpe + " --json --no-special --file " + dir_.file("text.txt"));
  ASSERT_EQ(encoded.exit_code, 0) << encoded.err;
  const nlohmann::json json = nlohmann::json::parse(encoded.out);
  EXPECT_EQ(json.at("model"), "gpt2");
  const auto ids = json.at("ids").get<std::vector<int32_t>>();
  // Each of the 11 words was seen hundreds of times: at most a few tokens each.
  EXPECT_LT(ids.size(), 30u) << "the merges should cover the common words";
  for (const int32_t id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 1000);
  }
  const SplitResult decoded = run_split(dir_, "tokenize -m " + bpe + " --decode " + join(ids, ","));
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, text + "\n");

  // Any bytes, valid UTF-8 or not, round-trip through a byte-level BPE.
  std::string bytes;
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) bytes += static_cast<char>(rng() & 0xFF);
  write_file(dir_.file("bytes.bin"), bytes);
  const SplitResult byte_ids = run_split(
      dir_, "tokenize -m " + bpe + " --ids --no-special --file " + dir_.file("bytes.bin"));
  ASSERT_EQ(byte_ids.exit_code, 0) << byte_ids.err;
  std::string id_list = byte_ids.out;
  for (char& c : id_list) {
    if (c == ' ' || c == '\n') c = ',';
  }
  const SplitResult byte_text = run_split(dir_, "tokenize -m " + bpe + " --decode " + id_list);
  ASSERT_EQ(byte_text.exit_code, 0) << byte_text.err;
  EXPECT_EQ(byte_text.out, bytes + "\n");

  // A model made with it generates.
  const std::string model = dir_.file("model.gguf");
  const SplitResult made = run_split(dir_, "make-model --tokenizer-from " + bpe + " --out " +
                                               model + " --embd 16 --layers 1 --heads 2 --ff 32");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // The trainer may stop before 1000 tokens once every word is one token;
  // its report says how many it wrote.
  const size_t count_end = trained.err.find(" tokens, ");
  ASSERT_NE(count_end, std::string::npos) << trained.err;
  const size_t count_begin = trained.err.rfind(' ', count_end - 1) + 1;
  const int n_tokens = std::stoi(trained.err.substr(count_begin, count_end - count_begin));
  EXPECT_GT(n_tokens, 258);
  EXPECT_LE(n_tokens, 1000);
  EXPECT_NE(made.out.find("vocab " + std::to_string(n_tokens) + ","), std::string::npos)
      << made.out;
  const SplitResult generated =
      run_split(dir_, "generate -q --temp 0 -n 4 -m " + model + " 'the draft'");
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  EXPECT_TRUE(is_valid_utf8(generated.out));
}

// A non-zero exit below 128 (no crash) and one message naming the problem.
void expect_error(const CliResult& result, const std::string& words) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_LT(result.exit_code, 128) << "killed by a signal: " << result.output;
  EXPECT_NE(result.output.find("error"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(words), std::string::npos)
      << "expected '" << words << "' in: " << result.output;
}

class TokenizerCliErrors : public ::testing::Test {
 protected:
  TempDir dir_;
  const std::string gpt2_ = std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-gpt-2.gguf");
};

TEST_F(TokenizerCliErrors, Tokenize) {
  expect_error(run_cli("tokenize -m " + dir_.file("absent.gguf") + " hi"), "absent.gguf");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --file " + dir_.file("absent.txt")),
               "absent.txt");
  expect_error(run_cli("tokenize -m " + gpt2_), "no text");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --decode 1,2 hi"), "not both");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --decode 1,x"), "\"x\" is not an integer");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --decode ,"), "holds no items");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --decode 50257"), "50257");
  expect_error(run_cli("tokenize -m " + gpt2_ + " --decode -1"), "-1");

  // A model file without a tokenizer (make-model writes none below 258 tokens).
  const std::string no_tokenizer = dir_.file("no-tokenizer.gguf");
  ASSERT_EQ(run_cli("make-model --out " + no_tokenizer + " --vocab 100 --embd 8 --layers 1 " +
                    "--heads 2 --ff 16")
                .exit_code,
            0);
  expect_error(run_cli("tokenize -m " + no_tokenizer + " hi"), "tokenizer");
}

// A vocabulary naming a pre-tokenizer specula does not know.
std::string write_unknown_pre_vocab(const TempDir& dir) {
  std::vector<std::string> tokens;
  for (int c = 'a'; c <= 'z'; ++c) tokens.push_back(std::string(1, static_cast<char>(c)));
  GgufWriter writer;
  writer.set_string("tokenizer.ggml.model", "gpt2");
  writer.set_string("tokenizer.ggml.pre", "no-such-pre");
  writer.set_string_array("tokenizer.ggml.tokens", tokens);
  writer.set_string_array("tokenizer.ggml.merges", {});
  const std::string path = dir.file("unknown-pre.gguf");
  writer.write(path);
  return path;
}

TEST_F(TokenizerCliErrors, UnknownPreTokenizer) {
  const std::string vocab = write_unknown_pre_vocab(dir_);
  expect_error(run_cli("tokenize -m " + vocab + " hi"), "no-such-pre");
  const CliResult made =
      run_cli("make-model --tokenizer-from " + vocab + " --out " + dir_.file("m.gguf"));
  expect_error(made, "no-such-pre");
  expect_error(made, "--tokenizer-from");

  write_file(dir_.file("corpus.txt"), "some text to learn from\n");
  expect_error(run_cli("tokenizer train --input " + dir_.file("corpus.txt") +
                       " --vocab-size 300 --pre no-such-pre --out " + dir_.file("bpe.gguf")),
               "no-such-pre");
}

TEST_F(TokenizerCliErrors, TokenizerTrain) {
  const std::string corpus = dir_.file("corpus.txt");
  write_file(corpus, "some text to learn from\n");
  const std::string out = " --out " + dir_.file("bpe.gguf");
  expect_error(run_cli("tokenizer train --input " + corpus + " --vocab-size 100" + out),
               "--vocab-size");
  expect_error(
      run_cli("tokenizer train --input " + dir_.file("absent.txt") + " --vocab-size 300" + out),
      "absent.txt");
  write_file(dir_.file("empty.txt"), "");
  expect_error(
      run_cli("tokenizer train --input " + dir_.file("empty.txt") + " --vocab-size 300" + out),
      "empty");
  expect_error(
      run_cli("tokenizer train --input " + corpus + " --vocab-size 300 --min-count 0" + out),
      "--min-count");
  expect_error(run_cli("tokenizer train --input " + corpus + " --vocab-size 300 --out " +
                       dir_.file("no-dir/bpe.gguf")),
               "no-dir");
  expect_error(run_cli("tokenizer"), "subcommand");
}

TEST_F(TokenizerCliErrors, MakeModelTokenizerFrom) {
  const std::string out = " --out " + dir_.file("m.gguf") + " --embd 8 --heads 2 --layers 1";
  expect_error(run_cli("make-model --tokenizer-from " + dir_.file("absent.gguf") + out),
               "absent.gguf");
  expect_error(run_cli("make-model --tokenizer-from " + gpt2_ + " --vocab 1000" + out),
               "disagrees with the 50257 tokens");
  // 258 is --vocab's default: given explicitly, it still has to agree.
  expect_error(run_cli("make-model --tokenizer-from " + gpt2_ + " --vocab 258" + out),
               "disagrees with the 50257 tokens");
  expect_error(run_cli("make-model --tokenizer-from " + gpt2_ + " --from " + gpt2_ +
                       " --layers 1 --out " + dir_.file("d.gguf")),
               "--tokenizer-from cannot be combined with --from");

  const std::string no_tokenizer = dir_.file("no-tokenizer.gguf");
  ASSERT_EQ(run_cli("make-model --out " + no_tokenizer + " --vocab 100 --embd 8 --layers 1 " +
                    "--heads 2 --ff 16")
                .exit_code,
            0);
  expect_error(run_cli("make-model --tokenizer-from " + no_tokenizer + out), "no tokenizer");
}

}  // namespace
}  // namespace specula::testing

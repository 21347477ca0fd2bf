// make-model with tokenizer_from: a random model carrying the tokenizer of a
// real one (the vocab-only files of tests/data/vocab), every tokenizer.* key
// copied with its value type, and n_vocab set to the token count.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "gguf/gguf_writer.h"
#include "model/make_model.h"
#include "model/model.h"
#include "model_test_util.h"

namespace specula {
namespace {

std::string shared_vocab(const std::string& name) {
  return std::string(SPECULA_TEST_DATA_DIR "/vocab/ggml-vocab-") + name + ".gguf";
}

// Small enough that a 50k-token model is about a megabyte.
RandomModelOptions tiny_options(const std::string& tokenizer_from) {
  RandomModelOptions o;
  o.n_embd = 8;
  o.n_layer = 1;
  o.n_head = 2;
  o.n_ff = 16;
  o.n_ctx = 64;
  o.type = DType::kF16;
  o.tied_output = true;
  o.tokenizer_from = tokenizer_from;
  return o;
}

bool starts_with_tokenizer(const std::string& key) {
  return key.rfind("tokenizer.", 0) == 0;
}

// The same type and the same value, byte for byte for fixed-size arrays.
void expect_same_value(const std::string& key, const GgufValue& got, const GgufValue& want) {
  SCOPED_TRACE(key);
  ASSERT_EQ(got.type, want.type);
  switch (want.type) {
    case GgufType::kString:
      EXPECT_EQ(got.str, want.str);
      return;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      EXPECT_EQ(got.f, want.f);
      return;
    case GgufType::kArray:
      break;
    default:
      EXPECT_EQ(got.i, want.i);
      EXPECT_EQ(got.u, want.u);
      return;
  }
  ASSERT_EQ(got.array_type, want.array_type);
  ASSERT_EQ(got.array_size, want.array_size);
  if (want.array_type == GgufType::kString) {
    EXPECT_TRUE(got.array_strs == want.array_strs);
  } else {
    const uint64_t n_bytes = want.array_size * gguf_type_size(want.array_type);
    EXPECT_EQ(std::memcmp(got.array_data, want.array_data, n_bytes), 0);
  }
}

struct VocabFile {
  const char* name;
  int32_t n_tokens;  // counted independently (llama.cpp's files, model cards)
};

class TokenizerFromVocab : public ::testing::TestWithParam<VocabFile> {};

TEST_P(TokenizerFromVocab, CopiesEveryTokenizerKeyAndSizesTheVocabulary) {
  const VocabFile vocab = GetParam();
  const std::string source_path = shared_vocab(vocab.name);
  const std::string model_path =
      test::write_temp_model(tiny_options(source_path), std::string("tok-") + vocab.name + ".gguf");

  const auto model = Model::load(model_path);
  EXPECT_EQ(model->config().n_vocab, vocab.n_tokens);
  const GgufReader& copy = model->file();
  EXPECT_EQ(copy.get_uint("llama.vocab_size"), static_cast<uint64_t>(vocab.n_tokens));
  EXPECT_EQ(copy.tensor("token_embd.weight").dims[1], static_cast<uint64_t>(vocab.n_tokens));

  const auto source = GgufReader::open(source_path);
  std::set<std::string> source_keys;
  for (const GgufKv& kv : source->metadata()) {
    if (!starts_with_tokenizer(kv.key)) continue;
    source_keys.insert(kv.key);
    const GgufValue* copied = copy.find(kv.key);
    ASSERT_NE(copied, nullptr) << kv.key << " was not copied";
    expect_same_value(kv.key, *copied, kv.value);
  }
  EXPECT_TRUE(source_keys.count("tokenizer.ggml.tokens"));
  // Nothing of the byte-level tokenizer is mixed in, and nothing but the
  // tokenizer comes from the source (its architecture keys describe another
  // model).
  for (const GgufKv& kv : copy.metadata()) {
    if (starts_with_tokenizer(kv.key)) {
      EXPECT_TRUE(source_keys.count(kv.key)) << kv.key << " is not in the source";
    }
  }
  EXPECT_EQ(copy.get_string("general.architecture"), "llama");
  EXPECT_NE(copy.get_string("general.name"), source->get_string("general.name"));
}

INSTANTIATE_TEST_SUITE_P(RealModels, TokenizerFromVocab,
                         ::testing::Values(VocabFile{"gpt-2", 50257}, VocabFile{"starcoder", 49152},
                                           VocabFile{"deepseek-coder", 32256},
                                           VocabFile{"llama-spm", 32000},
                                           VocabFile{"phi-3", 32064}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(MakeModelTokenizerFrom, ResolveSetsTheVocabularySize) {
  const RandomModelOptions resolved =
      resolve_random_model_options(tiny_options(shared_vocab("llama-spm")));
  EXPECT_EQ(resolved.n_vocab, 32000);
  RandomModelOptions agreeing = tiny_options(shared_vocab("llama-spm"));
  agreeing.n_vocab = 32000;
  EXPECT_EQ(resolve_random_model_options(agreeing).n_vocab, 32000);
}

TEST(MakeModelTokenizerFrom, DisagreeingVocabularyIsAnError) {
  RandomModelOptions o = tiny_options(shared_vocab("phi-3"));
  o.n_vocab = 32000;
  try {
    resolve_random_model_options(o);
    FAIL() << "a vocabulary of 32000 was accepted for phi-3's 32064 tokens";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("32064"), std::string::npos) << message;
    EXPECT_NE(message.find("ggml-vocab-phi-3.gguf"), std::string::npos) << message;
  }
}

TEST(MakeModelTokenizerFrom, FileWithoutTokensIsAnError) {
  RandomModelOptions no_tokenizer = tiny_options("");
  no_tokenizer.n_vocab = 100;  // below 258: make-model writes no tokenizer
  const std::string path = test::write_temp_model(no_tokenizer, "no-tokenizer.gguf");
  try {
    resolve_random_model_options(tiny_options(path));
    FAIL() << "a file without tokens was accepted";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("tokenizer.ggml.tokens"), std::string::npos) << message;
    EXPECT_NE(message.find("no-tokenizer.gguf"), std::string::npos) << message;
  }
  EXPECT_THROW(resolve_random_model_options(tiny_options(test::temp_path("absent.gguf"))), Error);
}

// The tokenizer changes the metadata only: the weights are those of a model
// of the same shape and vocabulary size made without it.
TEST(MakeModelTokenizerFrom, WeightsDoNotDependOnTheTokenizer) {
  RandomModelOptions plain = tiny_options("");
  plain.n_vocab = 32000;
  const auto with = GgufReader::open(
      test::write_temp_model(tiny_options(shared_vocab("llama-spm")), "tok-weights.gguf"));
  const auto without = GgufReader::open(test::write_temp_model(plain, "plain-weights.gguf"));
  ASSERT_EQ(with->tensors().size(), without->tensors().size());
  for (const GgufTensorInfo& tensor : without->tensors()) {
    const GgufTensorInfo& other = with->tensor(tensor.name);
    ASSERT_EQ(other.n_bytes, tensor.n_bytes) << tensor.name;
    EXPECT_EQ(std::memcmp(other.data, tensor.data, tensor.n_bytes), 0) << tensor.name;
  }
  // ...while the plain model has the byte-level tokens instead.
  EXPECT_EQ(without->get_string_array("tokenizer.ggml.tokens")->size(), 32000u);
  EXPECT_EQ((*without->get_string_array("tokenizer.ggml.tokens"))[33], "!");  // byte 0x21
  EXPECT_EQ((*with->get_string_array("tokenizer.ggml.tokens"))[0], "<unk>");
}

// Keys of every GGUF value type keep their type (no narrowing to the
// writer's common widths), in the model and in a draft derived from it, and
// keys outside tokenizer.* stay behind.
TEST(MakeModelTokenizerFrom, EveryValueTypeIsCopiedAsIs) {
  GgufWriter source;
  source.set_string("general.name", "all types");
  source.set_uint32("other.key", 7);
  source.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
  source.set_uint8("tokenizer.t.u8", 200);
  source.set_int8("tokenizer.t.i8", -100);
  source.set_uint16("tokenizer.t.u16", 60000);
  source.set_int16("tokenizer.t.i16", -30000);
  source.set_uint32("tokenizer.t.u32", 4000000000u);
  source.set_int32("tokenizer.t.i32", -2000000000);
  source.set_uint64("tokenizer.t.u64", 18000000000000000000ull);
  source.set_int64("tokenizer.t.i64", -9000000000000000000ll);
  source.set_float32("tokenizer.t.f32", 0.1f);
  source.set_float64("tokenizer.t.f64", 0.1);
  source.set_bool("tokenizer.t.bool", true);
  source.set_string("tokenizer.t.string", "text");
  const std::vector<uint8_t> u64_bytes = {1, 0, 0, 0, 0, 0, 0, 0x80, 2, 0, 0, 0, 0, 0, 0, 0};
  source.set_array("tokenizer.t.u64_array", GgufType::kUint64, u64_bytes);
  const std::vector<uint8_t> f64_bytes(16, 0x3F);
  source.set_array("tokenizer.t.f64_array", GgufType::kFloat64, f64_bytes);
  const std::vector<uint8_t> bool_bytes = {1, 0, 1};
  source.set_array("tokenizer.t.bool_array", GgufType::kBool, bool_bytes);
  source.set_array("tokenizer.t.empty_array", GgufType::kInt16, {});
  source.set_string_array("tokenizer.t.empty_strings", {});
  const std::string source_path = test::temp_path("all-types-tokenizer.gguf");
  source.write(source_path);

  const std::string model_path =
      test::write_temp_model(tiny_options(source_path), "all-types-model.gguf");
  // A draft derived from the model keeps them as they are too.
  const std::string draft_path = test::temp_path("all-types-draft.gguf");
  write_draft_model(model_path, 1, draft_path);
  const auto original = GgufReader::open(source_path);
  for (const std::string& path : {model_path, draft_path}) {
    SCOPED_TRACE(path);
    const auto model = GgufReader::open(path);
    size_t copied = 0;
    for (const GgufKv& kv : original->metadata()) {
      if (!starts_with_tokenizer(kv.key)) continue;
      const GgufValue* value = model->find(kv.key);
      ASSERT_NE(value, nullptr) << kv.key;
      expect_same_value(kv.key, *value, kv.value);
      ++copied;
    }
    EXPECT_EQ(copied, 18u);  // the tokens and the 17 typed keys
    EXPECT_EQ(model->find("other.key"), nullptr);
    EXPECT_EQ(model->get_uint("llama.vocab_size"), 4u);
    EXPECT_EQ(model->tensor("token_embd.weight").dims[1], 4u);
  }
}

}  // namespace
}  // namespace specula

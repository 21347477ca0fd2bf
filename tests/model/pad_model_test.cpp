// Padded models (model/pad_model.h): more layers and a wider FFN, the same
// function. Greedy continuations of several prompts must be identical token
// for token to the original's, for F32, F16, BF16 and Q8_0 targets, kept or
// converted; extra layers alone must not move a single bit of the logits;
// the file must have the shape and size asked for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "gguf/gguf_reader.h"
#include "model/model.h"
#include "model/pad_model.h"
#include "model_test_util.h"

namespace specula {
namespace {

const std::vector<std::string> kPrompts = {
    "def parse(self, text):\n    return",
    "The quick brown fox jumps over the lazy dog.",
    "for i in range(10):\n    print(i * i)\n",
    "{\"key\": [1, 2, 3], \"other\": null}",
};

struct Greedy {
  std::vector<int32_t> tokens;  // the continuation
  std::vector<float> logits;    // every position's logits, prompt and continuation
};

// Greedy continuation of the prompt's bytes (token id = byte), n tokens.
Greedy greedy(const Model& model, const std::string& prompt, int n, ThreadPool* pool) {
  const int32_t n_vocab = model.config().n_vocab;
  KvCache cache = model.make_cache(static_cast<int32_t>(prompt.size()) + n);
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < prompt.size(); ++i) {
    rows.push_back({0, static_cast<int32_t>(i), static_cast<unsigned char>(prompt[i]), true});
  }
  Greedy out;
  std::vector<float> logits;
  for (int step = 0; step < n; ++step) {
    model.forward(rows, cache, logits, pool);
    out.logits.insert(out.logits.end(), logits.begin(), logits.end());
    const float* last = logits.data() + logits.size() - static_cast<size_t>(n_vocab);
    const int32_t next = static_cast<int32_t>(std::max_element(last, last + n_vocab) - last);
    out.tokens.push_back(next);
    rows = {{0, rows.back().position + 1, next, true}};
  }
  return out;
}

RandomModelOptions small_target(DType type) {
  RandomModelOptions o;
  o.n_vocab = 300;
  o.n_embd = 64;
  o.n_layer = 3;
  o.n_head = 4;
  o.n_head_kv = 2;
  o.n_ff = 160;
  o.type = type;
  o.seed = 21;
  return o;
}

// Greedy continuations of every prompt equal token for token; logits within
// `tolerance` (relative to the largest), or bitwise equal when it is 0.
void expect_same_function(const std::string& original_path, const std::string& padded_path,
                          double tolerance, int n = 24) {
  const auto original = Model::load(original_path);
  const auto padded = Model::load(padded_path);
  ThreadPool pool(2);
  bool bitwise = true;
  bool same_tokens = true;
  for (const std::string& prompt : kPrompts) {
    const Greedy a = greedy(*original, prompt, n, &pool);
    const Greedy b = greedy(*padded, prompt, n, &pool);
    EXPECT_EQ(a.tokens, b.tokens) << prompt;
    same_tokens = same_tokens && a.tokens == b.tokens;
    ASSERT_EQ(a.logits.size(), b.logits.size());
    bitwise = bitwise &&
              std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)) == 0;
    if (tolerance == 0.0) {
      EXPECT_EQ(a.logits, b.logits) << prompt;
    } else {
      EXPECT_LT(test::relative_error(b.logits, a.logits), tolerance) << prompt;
    }
  }
  std::printf("%s vs %s: greedy tokens %s; logits %s\n",
              std::filesystem::path(original_path).filename().c_str(),
              std::filesystem::path(padded_path).filename().c_str(),
              same_tokens ? "equal" : "DIFFER", bitwise ? "bitwise equal" : "not bitwise equal");
}

std::vector<uint8_t> tensor_bytes(const GgufReader& file, const std::string& name) {
  const GgufTensorInfo* t = file.find_tensor(name);
  if (t == nullptr) return {};
  return std::vector<uint8_t>(t->data, t->data + t->n_bytes);
}

bool all_zero(const std::vector<uint8_t>& bytes) {
  return !bytes.empty() &&
         std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

TEST(PadModel, ExtraLayersAloneLeaveEveryLogitBitwiseEqual) {
  for (const DType type : {DType::kF32, DType::kF16}) {
    const std::string target = test::write_temp_model(
        small_target(type), str_cat("pad_layers_target_", dtype_name(type), ".gguf"));
    const std::string padded = test::temp_path(str_cat("pad_layers_", dtype_name(type), ".gguf"));
    PadModelOptions options;
    options.n_layer = 8;
    write_padded_model(target, options, padded);
    expect_same_function(target, padded, 0.0);
  }
}

TEST(PadModel, WiderFfnAndMoreLayersGiveTheSameGreedyTokens) {
  for (const DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    const std::string target = test::write_temp_model(
        small_target(type), str_cat("pad_target_", dtype_name(type), ".gguf"));
    const std::string padded = test::temp_path(str_cat("pad_both_", dtype_name(type), ".gguf"));
    PadModelOptions options;
    options.n_layer = 7;
    options.n_ff = 1000;  // not a power of two: other blockings in the kernels
    write_padded_model(target, options, padded);
    expect_same_function(target, padded, 1e-5);
  }
}

// A quantized target keeps its blocks (byte for byte in its own layers);
// its padding is zero blocks and copied rows.
TEST(PadModel, Q8_0TargetKeepsItsTypeAndFunction) {
  const std::string f32 = test::write_temp_model(small_target(DType::kF32), "pad_q8_source.gguf");
  const std::string target = test::temp_path("pad_q8_target.gguf");
  PadModelOptions convert;
  convert.type = DType::kQ8_0;
  write_padded_model(f32, convert, target);  // no padding: a conversion
  const std::string padded = test::temp_path("pad_q8_padded.gguf");
  PadModelOptions options;
  options.n_layer = 6;
  options.n_ff = 384;
  write_padded_model(target, options, padded);
  const auto file = GgufReader::open(padded);
  EXPECT_EQ(file->find_tensor("blk.5.ffn_up.weight")->type, DType::kQ8_0);
  EXPECT_EQ(file->find_tensor("blk.0.ffn_down.weight")->type, DType::kQ8_0);
  EXPECT_EQ(file->get_uint("general.file_type"), 7u);
  expect_same_function(target, padded, 1e-5);
}

// With --type, the copy computes the function of the target converted to
// that type: the same as converting without padding.
TEST(PadModel, ConvertedCopyEqualsTheConvertedTarget) {
  const std::string target =
      test::write_temp_model(small_target(DType::kF32), "pad_conv_target.gguf");
  PadModelOptions convert;
  convert.type = DType::kF16;
  const std::string converted = test::temp_path("pad_conv_f16.gguf");
  write_padded_model(target, convert, converted);
  PadModelOptions options = convert;
  options.n_layer = 5;
  options.n_ff = 512;
  const std::string padded = test::temp_path("pad_conv_padded_f16.gguf");
  write_padded_model(target, options, padded);
  expect_same_function(converted, padded, 1e-5);
  const auto file = GgufReader::open(padded);
  for (const GgufTensorInfo& t : file->tensors()) {
    const bool norm = t.name.find("_norm") != std::string::npos;
    EXPECT_EQ(t.type, norm ? DType::kF32 : DType::kF16) << t.name;
  }
  EXPECT_EQ(file->get_uint("general.file_type"), 1u);
}

TEST(PadModel, FileHasTheShapeAndSizeAsked) {
  RandomModelOptions o = small_target(DType::kF16);
  o.architecture = "qwen2";  // q/k/v biases are copied into the extra blocks too
  const std::string target = test::write_temp_model(o, "pad_shape_target.gguf");
  PadModelOptions options;
  options.n_layer = 5;
  options.n_ff = 224;
  const std::string padded = test::temp_path("pad_shape.gguf");
  write_padded_model(target, options, padded);
  const auto source = GgufReader::open(target);
  const auto file = GgufReader::open(padded);

  EXPECT_EQ(file->get_uint("qwen2.block_count"), 5u);
  EXPECT_EQ(file->get_uint("qwen2.feed_forward_length"), 224u);
  EXPECT_EQ(file->get_uint("qwen2.embedding_length"), 64u);
  EXPECT_EQ(*file->get_string_array("tokenizer.ggml.tokens"),
            *source->get_string_array("tokenizer.ggml.tokens"));
  EXPECT_NE(file->get_string("general.name")->find("padded to 5 layers, ff 224"),
            std::string::npos);
  EXPECT_EQ(file->tensors().size(), source->tensors().size() + 2 * 12);
  for (const char* name : {"token_embd.weight", "output.weight", "output_norm.weight",
                           "blk.0.attn_q.weight", "blk.2.attn_output.weight"}) {
    EXPECT_EQ(tensor_bytes(*file, name), tensor_bytes(*source, name)) << name;
  }
  // Extra blocks copy the target's blocks (3 -> 0, 4 -> 1) except their
  // outputs, which are zero.
  EXPECT_EQ(tensor_bytes(*file, "blk.4.attn_k.bias"), tensor_bytes(*source, "blk.1.attn_k.bias"));
  EXPECT_EQ(tensor_bytes(*file, "blk.3.attn_v.weight"),
            tensor_bytes(*source, "blk.0.attn_v.weight"));
  EXPECT_TRUE(all_zero(tensor_bytes(*file, "blk.3.attn_output.weight")));
  EXPECT_TRUE(all_zero(tensor_bytes(*file, "blk.4.ffn_down.weight")));
  EXPECT_EQ(file->find_tensor("blk.4.ffn_down.weight")->dims, (std::vector<uint64_t>{224, 64}));
  EXPECT_EQ(file->find_tensor("blk.4.ffn_gate.weight")->dims, (std::vector<uint64_t>{64, 224}));
  // Widened FFN: the first 160 rows of gate are the target's, then repeats;
  // each row of down is the target's row, then zeros.
  const std::vector<uint8_t> gate = tensor_bytes(*file, "blk.1.ffn_gate.weight");
  const std::vector<uint8_t> source_gate = tensor_bytes(*source, "blk.1.ffn_gate.weight");
  ASSERT_EQ(gate.size(), 64u * 224 * 2);
  EXPECT_TRUE(std::equal(source_gate.begin(), source_gate.end(), gate.begin()));
  EXPECT_TRUE(std::equal(gate.begin() + 160 * 128, gate.end(), source_gate.begin()));
  const std::vector<uint8_t> down = tensor_bytes(*file, "blk.1.ffn_down.weight");
  const std::vector<uint8_t> source_down = tensor_bytes(*source, "blk.1.ffn_down.weight");
  ASSERT_EQ(down.size(), 224u * 64 * 2);
  for (size_t row = 0; row < 64; ++row) {
    const auto begin = down.begin() + static_cast<ptrdiff_t>(row * 224 * 2);
    EXPECT_TRUE(std::equal(begin, begin + 160 * 2,
                           source_down.begin() + static_cast<ptrdiff_t>(row * 160 * 2)))
        << row;
    EXPECT_TRUE(std::all_of(begin + 160 * 2, begin + 224 * 2, [](uint8_t b) { return b == 0; }));
  }
  // Size: the target's tensor bytes plus 2 blocks and 64 more FFN units in 5.
  const uint64_t block_bytes = (64 * 64 * 2 + 2 * 64 * 32 * 2 + 64 * 64 * 2)  // q, k, v, output
                               + 2 * 64 * 4                                   // norms (F32)
                               + (64 + 2 * 32) * 4                            // biases (F32)
                               + 3 * 64 * 224 * 2;                            // gate, up, down
  uint64_t source_bytes = 0;
  for (const GgufTensorInfo& t : source->tensors()) source_bytes += t.n_bytes;
  const uint64_t expected = source_bytes + 3 * 64 * 64 * 2 * 3 + 2 * block_bytes;
  EXPECT_EQ(padded_model_bytes(target, options), expected);
  EXPECT_GE(file->file_size(), expected);
  EXPECT_LT(file->file_size(), expected + 64 * 1024);
  EXPECT_EQ(Model::load(padded)->config().n_ff, 224);
}

TEST(PadModel, BadOptionsAreRefusedBeforeWriting) {
  const std::string target =
      test::write_temp_model(small_target(DType::kF32), "pad_bad_target.gguf");
  const std::string out = test::temp_path("pad_bad.gguf");
  std::filesystem::remove(out);
  auto refused = [&](PadModelOptions options, const std::string& words) {
    try {
      write_padded_model(target, options, out);
      ADD_FAILURE() << "accepted; expected an error with " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(out)) << words;
  };
  refused({.n_layer = 2}, "--layers 2 must be in [3, 4096]");
  refused({.n_layer = 5000}, "--layers 5000");
  refused({.n_ff = 100}, "--ff 100 must be in [160,");
  refused({.type = DType::kQ5_0}, "Q5_0 is not supported for padding");
  refused({.n_ff = 170, .type = DType::kQ8_0}, "multiple of 32");
  try {
    write_padded_model(test::temp_path("no_such_target.gguf"), {.n_layer = 4}, out);
    ADD_FAILURE() << "a missing target was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_target.gguf"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace specula

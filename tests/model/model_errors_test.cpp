// Bad model files and bad forward batches give one clear Error whose message
// names the problem (table-driven), and a rejected batch leaves the cache
// untouched.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "core/error.h"
#include "model/model.h"
#include "model_test_util.h"

namespace specula {
namespace {

// llama, n_embd 48, 4 heads (2 kv), 2 layers, vocab 37.
const std::string& base_model_path() {
  static const std::string path = [] {
    RandomModelOptions o;
    o.n_vocab = 37;
    o.n_embd = 48;
    o.n_layer = 2;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_ff = 64;
    return test::write_temp_model(o, "errors_base.gguf");
  }();
  return path;
}

struct FileCase {
  std::string label;
  test::GgufEdits edits;
  std::vector<std::string> words;  // all must appear in the message
};

void PrintTo(const FileCase& c, std::ostream* out) {
  *out << c.label;
}

std::vector<FileCase> file_cases() {
  std::vector<FileCase> cases;
  auto add = [&](std::string label, std::vector<std::string> words) -> test::GgufEdits& {
    cases.push_back({std::move(label), {}, std::move(words)});
    return cases.back().edits;
  };
  add("missing_tensor", {"blk.1.ffn_up.weight", "missing"}).drop_tensors = {"blk.1.ffn_up.weight"};
  add("missing_norm", {"output_norm.weight", "missing"}).drop_tensors = {"output_norm.weight"};
  add("missing_embeddings", {"token_embd.weight", "missing"}).drop_tensors = {"token_embd.weight"};
  add("wrong_shape", {"blk.0.attn_k.weight", "wrong shape", "[48, 26]", "[48, 24]"})
      .reshape_tensors["blk.0.attn_k.weight"] = {48, 26};
  add("wrong_rank", {"blk.1.ffn_norm.weight", "wrong shape"})
      .reshape_tensors["blk.1.ffn_norm.weight"] = {48, 1};
  add("vocab_mismatch", {"vocab mismatch", "38", "37"}).reshape_tensors["output.weight"] = {48, 38};
  add("vocab_size_key", {"vocab_size", "40", "37"}).metadata["llama.vocab_size"] = uint32_t{40};
  add("n_head_zero", {"n_head", "is 0"}).metadata["llama.attention.head_count"] = uint32_t{0};
  {
    auto& e = add("n_embd_not_multiple", {"n_embd = 48", "not a multiple of n_head = 5"});
    e.metadata["llama.attention.head_count"] = uint32_t{5};
    e.metadata["llama.attention.head_count_kv"] = uint32_t{5};
  }
  add("n_head_kv_not_divisor", {"n_head = 4", "not a multiple of n_head_kv = 3"})
      .metadata["llama.attention.head_count_kv"] = uint32_t{3};
  add("missing_key", {"llama.block_count", "missing"}).metadata["llama.block_count"] =
      test::RemoveKey{};
  // Found by fuzz_gguf: the layer table was sized by block_count before any
  // tensor was looked up.
  add("block_count_beyond_tensors", {"block_count is 1000000", "at most 2 layers"})
      .metadata["llama.block_count"] = uint32_t{1000000};
  add("missing_eps", {"layer_norm_rms_epsilon", "missing"})
      .metadata["llama.attention.layer_norm_rms_epsilon"] = test::RemoveKey{};
  add("unknown_architecture", {"'gpt2'", "not supported", "llama, qwen2"})
      .metadata["general.architecture"] = std::string("gpt2");
  add("no_architecture", {"general.architecture", "missing"}).metadata["general.architecture"] =
      test::RemoveKey{};
  add("unsupported_weight_type", {"blk.0.ffn_down.weight", "I8", "not supported yet"})
      .retype_tensors["blk.0.ffn_down.weight"] = DType::kI8;
  // The list of what works names the quantized types too (issue 15).
  add("unsupported_quantized_type", {"blk.0.ffn_down.weight", "Q4_1", "not supported yet", "F32",
                                     "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
      .retype_tensors["blk.0.ffn_down.weight"] = DType::kQ4_1;
  // A misnamed output matrix must not silently tie the output to the
  // embeddings (issue 15).
  add("misnamed_output", {"output.weight is missing", "output.weights", "rename it"})
      .rename_tensors["output.weight"] = "output.weights";
  add("norm_not_f32", {"blk.0.attn_norm.weight", "F16", "must be F32"})
      .retype_tensors["blk.0.attn_norm.weight"] = DType::kF16;
  add("yarn_scaling", {"yarn", "not supported yet"}).metadata["llama.rope.scaling.type"] =
      std::string("yarn");
  add("partial_rope", {"rope.dimension_count", "partial"}).metadata["llama.rope.dimension_count"] =
      uint32_t{6};
  return cases;
}

class ModelFileErrorTest : public ::testing::TestWithParam<FileCase> {};

TEST_P(ModelFileErrorTest, LoadNamesTheProblem) {
  const FileCase& c = GetParam();
  const std::string path = test::rewrite_gguf(base_model_path(), c.edits, c.label + ".gguf");
  try {
    Model::load(path);
    FAIL() << "loaded without error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    for (const std::string& word : c.words) {
      EXPECT_NE(message.find(word), std::string::npos) << "'" << word << "' not in: " << message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, ModelFileErrorTest, ::testing::ValuesIn(file_cases()),
                         [](const auto& info) { return info.param.label; });

TEST(ModelFileError, UneditedBaseLoads) {
  const auto model = Model::load(base_model_path());
  EXPECT_EQ(model->config().n_vocab, 37);
  EXPECT_EQ(model->config().head_dim, 12);
  EXPECT_FALSE(model->config().tied_output);
}

struct BatchCase {
  std::string label;
  std::vector<BatchRow> rows;  // against a cache holding 3 positions of seq 0, n_ctx 6, 2 seqs
  std::vector<std::string> words;
};

void PrintTo(const BatchCase& c, std::ostream* out) {
  *out << c.label;
}

std::vector<BatchCase> batch_cases() {
  return {
      {"position_gap", {{0, 4, 1, true}}, {"row 0", "position 4", "next position is 3"}},
      {"position_reused", {{0, 2, 1, true}}, {"position 2", "next position is 3"}},
      {"second_row_out_of_order",
       {{0, 3, 1, false}, {0, 3, 2, true}},
       {"row 1", "position 3", "1 earlier rows", "next position is 4"}},
      {"new_sequence_must_start_at_zero", {{1, 1, 1, true}}, {"sequence 1", "next position is 0"}},
      {"sequence_out_of_range", {{2, 0, 1, true}}, {"sequence 2", "0..1"}},
      {"negative_sequence", {{-1, 0, 1, true}}, {"sequence -1"}},
      {"token_out_of_range", {{0, 3, 37, true}}, {"token id 37", "[0, 37)"}},
      {"negative_token", {{0, 3, -2, true}}, {"token id -2"}},
      {"context_overflow",
       {{0, 3, 1, false}, {0, 4, 1, false}, {0, 5, 1, false}, {0, 6, 1, true}},
       {"row 3", "position 6", "exceed", "n_ctx = 6"}},
  };
}

class ForwardErrorTest : public ::testing::TestWithParam<BatchCase> {};

TEST_P(ForwardErrorTest, RejectsBatchBeforeWritingAnything) {
  const BatchCase& c = GetParam();
  const auto model = Model::load(base_model_path());
  KvCache cache = model->make_cache(6, 2);
  std::vector<float> logits;
  const std::vector<BatchRow> prefix = {{0, 0, 5, false}, {0, 1, 6, false}, {0, 2, 7, true}};
  model->forward(prefix, cache, logits, nullptr);
  const auto row_of = [&](int32_t position) {
    std::vector<float> row;
    for (int32_t c = 0; c < cache.kv_dim(); ++c) row.push_back(cache.key_at(1, 0, position, c));
    const auto* values = static_cast<const uint8_t*>(cache.value(1, 0, position));
    return std::pair(row, std::vector<uint8_t>(values, values + cache.row_bytes()));
  };
  const auto key_row = row_of(3);
  try {
    model->forward(c.rows, cache, logits, nullptr);
    FAIL() << "forward accepted the batch";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& word : c.words) {
      EXPECT_NE(message.find(word), std::string::npos) << "'" << word << "' not in: " << message;
    }
  }
  EXPECT_EQ(cache.length(0), 3);
  EXPECT_EQ(cache.length(1), 0);
  EXPECT_EQ(row_of(3), key_row);
}

INSTANTIATE_TEST_SUITE_P(Cases, ForwardErrorTest, ::testing::ValuesIn(batch_cases()),
                         [](const auto& info) { return info.param.label; });

TEST(ForwardError, CacheOfAnotherShapeIsRefused) {
  const auto model = Model::load(base_model_path());
  KvCache wrong(3, 1, 8, 24);  // the model has 2 layers
  std::vector<float> logits;
  const BatchRow row{0, 0, 1, true};
  EXPECT_THROW(model->forward(std::span<const BatchRow>(&row, 1), wrong, logits, nullptr), Error);
  EXPECT_THROW(model->make_cache(0), Error);
}

}  // namespace
}  // namespace specula

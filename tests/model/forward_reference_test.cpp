// The engine's forward pass against the independent double-precision
// reference (reference_model.cpp) on several shapes and both architectures.
#include <gtest/gtest.h>

#include <numeric>

#include "kernels/dispatch.h"
#include "model/model.h"
#include "model_test_util.h"
#include "reference_model.h"

namespace specula {
namespace {

struct Shape {
  std::string label;
  RandomModelOptions options;
  test::GgufEdits edits;  // applied to the written file (e.g. rope scaling keys)
};

void PrintTo(const Shape& shape, std::ostream* out) {
  *out << shape.label;
}

RandomModelOptions shape(std::string arch, int vocab, int embd, int layers, int heads, int heads_kv,
                         int ff, float rope_base, bool tied, uint64_t seed) {
  RandomModelOptions o;
  o.architecture = std::move(arch);
  o.n_vocab = vocab;
  o.n_embd = embd;
  o.n_layer = layers;
  o.n_head = heads;
  o.n_head_kv = heads_kv;
  o.n_ff = ff;
  o.n_ctx = 256;
  o.rope_freq_base = rope_base;
  o.tied_output = tied;
  o.seed = seed;
  return o;
}

std::vector<Shape> shapes() {
  std::vector<Shape> list = {
      {"llama_gqa_odd", shape("llama", 37, 48, 2, 4, 2, 83, 10000.0f, false, 11), {}},
      {"llama_tied_rope_base", shape("llama", 300, 32, 2, 2, 2, 64, 500000.0f, true, 12), {}},
      {"llama_mqa", shape("llama", 41, 40, 3, 5, 1, 70, 10000.0f, false, 13), {}},
      {"qwen2_bias_gqa", shape("qwen2", 37, 48, 2, 6, 2, 50, 1000000.0f, false, 14), {}},
      {"qwen2_tied", shape("qwen2", 29, 24, 2, 3, 3, 40, 10000.0f, true, 15), {}},
      {"llama_linear_rope_scaling", shape("llama", 37, 32, 2, 4, 2, 48, 10000.0f, false, 16), {}},
  };
  list.back().edits.metadata["llama.rope.scaling.type"] = std::string("linear");
  list.back().edits.metadata["llama.rope.scaling.factor"] = 4.0f;
  return list;
}

std::vector<int32_t> token_sequence(int n, int vocab, int salt) {
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 7 + salt * 13 + i * i) % vocab;
  return tokens;
}

// Feeds `tokens` to one sequence in chunks of the given sizes, asking for
// every row's logits.
std::vector<float> engine_logits(const Model& model, const std::vector<int32_t>& tokens,
                                 const std::vector<int>& chunks, ThreadPool* pool) {
  KvCache cache = model.make_cache(static_cast<int32_t>(tokens.size()));
  std::vector<float> all, logits;
  size_t next = 0;
  for (size_t c = 0; next < tokens.size(); ++c) {
    const size_t n = std::min<size_t>(chunks[c % chunks.size()], tokens.size() - next);
    std::vector<BatchRow> rows;
    for (size_t i = 0; i < n; ++i) {
      rows.push_back({0, static_cast<int32_t>(next + i), tokens[next + i], true});
    }
    model.forward(rows, cache, logits, pool);
    all.insert(all.end(), logits.begin(), logits.end());
    next += n;
  }
  return all;
}

class ForwardReferenceTest : public ::testing::TestWithParam<Shape> {};

TEST_P(ForwardReferenceTest, MatchesIndependentReference) {
  const Shape& s = GetParam();
  std::string path = test::write_temp_model(s.options, s.label + ".gguf");
  if (!s.edits.metadata.empty()) path = test::rewrite_gguf(path, s.edits, s.label + "_edited.gguf");
  const std::vector<int32_t> tokens = token_sequence(13, s.options.n_vocab, 3);
  ThreadPool pool(2);
  for (const DType kv_type : {DType::kF32, DType::kF16}) {
    const auto model = Model::load(path, kv_type);
    const bool half_kv = kv_type == DType::kF16;
    const std::vector<double> expected = test::reference_logits(path, tokens, half_kv);
    const std::vector<float> got = engine_logits(*model, tokens, {5, 1, 3}, &pool);
    EXPECT_LE(test::relative_error(got, expected), 1e-5)
        << s.label << ", KV " << dtype_name(kv_type);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ForwardReferenceTest, ::testing::ValuesIn(shapes()),
                         [](const auto& info) { return info.param.label; });

// A context longer than the attention kernel's block of keys, so the online
// softmax rescales across blocks.
TEST(ForwardReference, LongSequenceCrossesAttentionBlocks) {
  const RandomModelOptions o = shape("qwen2", 31, 16, 1, 2, 1, 24, 10000.0f, false, 21);
  const std::string path = test::write_temp_model(o, "long.gguf");
  const std::vector<int32_t> tokens = token_sequence(150, o.n_vocab, 5);
  for (const DType kv_type : {DType::kF32, DType::kF16}) {
    const auto model = Model::load(path, kv_type);
    const std::vector<double> expected =
        test::reference_logits(path, tokens, kv_type == DType::kF16);
    const std::vector<float> got = engine_logits(*model, tokens, {70, 1, 79}, nullptr);
    EXPECT_LE(test::relative_error(got, expected), 1e-5) << "KV " << dtype_name(kv_type);
  }
}

// An F16 cache holds rounded keys and values: the logits move off the F32
// cache's, by about the rounding (2^-11 of each value), not more.
TEST(ForwardReference, HalfKvCacheDiffersFromF32ByRoundingOnly) {
  const RandomModelOptions o = shape("llama", 37, 48, 2, 4, 2, 83, 10000.0f, false, 25);
  const std::string path = test::write_temp_model(o, "half_kv.gguf");
  const auto f32_kv = Model::load(path, DType::kF32);
  const auto f16_kv = Model::load(path, DType::kF16);
  EXPECT_EQ(f32_kv->make_cache(9).row_bytes(), 2 * f16_kv->make_cache(9).row_bytes());
  const std::vector<int32_t> tokens = token_sequence(40, o.n_vocab, 6);
  const double error = test::relative_error(engine_logits(*f16_kv, tokens, {40}, nullptr),
                                            engine_logits(*f32_kv, tokens, {40}, nullptr));
  EXPECT_GT(error, 0.0);
  EXPECT_LE(error, 5e-3);
}

// F16 weights: the reference decodes the halves itself.
TEST(ForwardReference, F16WeightsMatchReference) {
  RandomModelOptions o = shape("llama", 37, 48, 2, 4, 2, 83, 10000.0f, false, 22);
  o.type = DType::kF16;
  const std::string path = test::write_temp_model(o, "f16_ref.gguf");
  const auto model = Model::load(path);  // and an F16 cache, the default
  const std::vector<int32_t> tokens = token_sequence(9, o.n_vocab, 1);
  EXPECT_LE(test::relative_error(engine_logits(*model, tokens, {4, 5}, nullptr),
                                 test::reference_logits(path, tokens, /*half_kv=*/true)),
            1e-5);
}

// The same values stored as F16 and as F32 give the same logits.
TEST(ForwardReference, F16AndF32OfSameValuesAgree) {
  for (const DType type : {DType::kF16, DType::kBF16}) {
    RandomModelOptions o = shape("qwen2", 37, 48, 2, 4, 2, 83, 10000.0f, false, 23);
    o.type = type;
    const std::string half_path = test::write_temp_model(o, "half.gguf");
    test::GgufEdits to_f32;
    to_f32.convert_to_f32 = true;
    const std::string f32_path = test::rewrite_gguf(half_path, to_f32, "half_as_f32.gguf");
    const auto half_model = Model::load(half_path);
    const auto f32_model = Model::load(f32_path);
    EXPECT_EQ(half_model->file().find_tensor("blk.0.attn_q.weight")->type, type);
    EXPECT_EQ(f32_model->file().find_tensor("blk.0.attn_q.weight")->type, DType::kF32);
    const std::vector<int32_t> tokens = token_sequence(9, o.n_vocab, 2);
    const std::vector<float> f32_logits = engine_logits(*f32_model, tokens, {9}, nullptr);
    // BF16 weights with BF16 dot products (where the CPU has them) take
    // activations rounded to BF16, 8 significant bits: the same function
    // to about 2^-8 per activation. With F32 arithmetic, the same to float
    // rounding.
    const bool bf16_dot = type == DType::kBF16 && simd_bf16_dot();
    if (bf16_dot) {
      const double error =
          test::relative_error(engine_logits(*half_model, tokens, {9}, nullptr), f32_logits);
      EXPECT_GT(error, 0.0);
      EXPECT_LE(error, 1e-2);
      simd_set_bf16_dot(false);
    }
    EXPECT_LE(test::relative_error(engine_logits(*half_model, tokens, {9}, nullptr), f32_logits),
              1e-5)
        << dtype_name(type);
    if (bf16_dot) simd_set_bf16_dot(true);
  }
}

// A model written as F16 from the same random draws as an F32 one differs
// only by the rounding of its weights.
TEST(ForwardReference, F16RoundingStaysClose) {
  RandomModelOptions o = shape("llama", 37, 48, 2, 4, 2, 83, 10000.0f, false, 24);
  const auto f32_model = Model::load(test::write_temp_model(o, "round_f32.gguf"));
  o.type = DType::kF16;
  const auto f16_model = Model::load(test::write_temp_model(o, "round_f16.gguf"));
  const std::vector<int32_t> tokens = token_sequence(9, o.n_vocab, 4);
  const double error = test::relative_error(engine_logits(*f16_model, tokens, {9}, nullptr),
                                            engine_logits(*f32_model, tokens, {9}, nullptr));
  EXPECT_GT(error, 0.0);  // the files really differ
  EXPECT_LE(error, 5e-3);
}

}  // namespace
}  // namespace specula

// The training forward pass computes the same logits as the inference
// Model on the GGUF file the trainer writes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "learn/model_io.h"
#include "model/model.h"
#include "train/train_test_util.h"

namespace specula {
namespace {

struct Compared {
  double max_error = 0.0;
  double max_logit = 0.0;
};

Compared compare_with_inference(const TransformerShape& requested, DType type) {
  const ParameterLayout layout(resolve_transformer_shape(requested));
  const TransformerShape& shape = layout.shape();
  std::vector<float> params(layout.total());
  // Larger than the training init, so that every layer changes the logits.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (float& p : params) p = normal(rng);
  for (const ParameterTensor& t : layout.tensors()) {
    if (t.dims.size() == 1) {
      for (size_t i = 0; i < t.size; ++i) params[t.offset + i] = 1.0f + normal(rng);
    }
  }
  test::TempPath path("forward_match.gguf");
  GgufWriter writer;
  add_model_to_gguf(writer, layout, params, type, nullptr, "forward match test");
  writer.write(path.str());
  // An F32 cache: the training pass keeps keys and values in floats.
  const std::unique_ptr<Model> model = Model::load(path.str(), DType::kF32);

  // The inference model's F16 matrices are what the training pass must see.
  if (type == DType::kF16) {
    read_tensors_from_gguf(model->file(), layout, "", params);
  }
  const int64_t batch = 3, seq_len = 9;
  std::vector<int32_t> tokens(batch * seq_len);
  std::uniform_int_distribution<int32_t> token(0, shape.n_vocab - 1);
  for (int32_t& t : tokens) t = token(rng);
  Transformer<float> trainer_model(layout);
  ThreadPool pool(2);
  const std::span<float> train_logits =
      trainer_model.forward(params.data(), tokens, batch, seq_len, &pool);

  KvCache cache = model->make_cache(seq_len, batch);
  std::vector<BatchRow> rows;
  for (int32_t b = 0; b < batch; ++b) {
    for (int32_t t = 0; t < seq_len; ++t) rows.push_back({b, t, tokens[b * seq_len + t], true});
  }
  std::vector<float> logits;
  model->forward(rows, cache, logits, &pool);
  EXPECT_EQ(logits.size(), train_logits.size());
  Compared result;
  for (size_t i = 0; i < logits.size(); ++i) {
    result.max_error = std::max(result.max_error, double(std::abs(logits[i] - train_logits[i])));
    result.max_logit = std::max(result.max_logit, double(std::abs(logits[i])));
  }
  return result;
}

TransformerShape test_shape() {
  TransformerShape shape;
  shape.n_vocab = 97;
  shape.n_embd = 48;
  shape.n_layer = 3;
  shape.n_head = 6;
  shape.n_head_kv = 2;
  shape.n_ff = 80;
  shape.n_ctx = 16;
  return shape;
}

TEST(ForwardMatch, F32LogitsEqualInferenceModel) {
  const Compared c = compare_with_inference(test_shape(), DType::kF32);
  EXPECT_GT(c.max_logit, 1.0) << "logits should not be trivially small";
  EXPECT_LE(c.max_error, 1e-5 * c.max_logit);
}

TEST(ForwardMatch, TiedOutput) {
  TransformerShape shape = test_shape();
  shape.tied_output = true;
  const Compared c = compare_with_inference(shape, DType::kF32);
  EXPECT_LE(c.max_error, 1e-5 * c.max_logit);
}

TEST(ForwardMatch, F16FileLoadsAndAgrees) {
  // Both sides read the same F16-rounded weights; only the arithmetic differs.
  const Compared c = compare_with_inference(test_shape(), DType::kF16);
  EXPECT_LE(c.max_error, 1e-4 * c.max_logit);
}

TEST(ModelIo, ShapeAndParametersRoundTrip) {
  TransformerShape requested = test_shape();
  requested.rope_freq_base = 5000.0f;
  const ParameterLayout layout(resolve_transformer_shape(requested));
  std::vector<float> params(layout.total());
  init_parameters(layout, 3, params);
  test::TempPath path("roundtrip.gguf");
  GgufWriter writer;
  add_model_to_gguf(writer, layout, params, DType::kF32, nullptr, "roundtrip");
  add_tensors_to_gguf(writer, layout, params, "extra.");
  writer.write(path.str());
  const auto file = GgufReader::open(path.str());
  const TransformerShape shape = read_transformer_shape(*file);
  EXPECT_EQ(shape.n_vocab, 97);
  EXPECT_EQ(shape.n_head_kv, 2);
  EXPECT_EQ(shape.n_ff, 80);
  EXPECT_EQ(shape.n_ctx, 16);
  EXPECT_EQ(shape.rope_freq_base, 5000.0f);
  EXPECT_FALSE(shape.tied_output);
  std::vector<float> back(layout.total());
  read_tensors_from_gguf(*file, layout, "extra.", back);
  EXPECT_EQ(back, params);
}

}  // namespace
}  // namespace specula

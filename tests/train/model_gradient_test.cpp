// The whole model's backward pass against finite differences in double
// precision: every parameter of a tiny model, untied and tied.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "learn/transformer.h"

namespace specula {
namespace {

void check_model_gradient(bool tied) {
  TransformerShape shape;
  shape.n_vocab = 11;
  shape.n_embd = 8;
  shape.n_layer = 2;
  shape.n_head = 4;
  shape.n_head_kv = 2;
  shape.n_ff = 12;
  shape.n_ctx = 8;
  shape.tied_output = tied;
  const ParameterLayout layout(resolve_transformer_shape(shape));
  std::mt19937 rng(42);
  std::normal_distribution<double> normal(0.0, 0.5);
  std::vector<double> params(layout.total());
  for (double& p : params) p = normal(rng);
  const int64_t batch = 2, seq_len = 3;
  const std::vector<int32_t> tokens = {1, 5, 10, 0, 5, 7};
  const std::vector<int32_t> targets = {5, 10, 2, 5, 7, 7};

  Transformer<double> model(layout);
  const auto loss = [&] {
    const std::span<double> logits = model.forward(params.data(), tokens, batch, seq_len, nullptr);
    return cross_entropy<double>(logits.data(), targets.data(), batch * seq_len, shape.n_vocab,
                                 nullptr, nullptr);
  };
  ThreadPool pool(2);
  const std::span<double> logits = model.forward(params.data(), tokens, batch, seq_len, &pool);
  cross_entropy<double>(logits.data(), targets.data(), batch * seq_len, shape.n_vocab,
                        logits.data(), &pool);
  std::vector<double> grads(layout.total(), 0.0);
  model.backward(params.data(), logits.data(), grads.data(), &pool);

  constexpr double kStep = 1e-5;
  for (const ParameterTensor& tensor : layout.tensors()) {
    double largest = 0.0;
    for (size_t i = tensor.offset; i < tensor.offset + tensor.size; ++i) {
      const double saved = params[i];
      params[i] = saved + kStep;
      const double plus = loss();
      params[i] = saved - kStep;
      const double minus = loss();
      params[i] = saved;
      const double numeric = (plus - minus) / (2 * kStep);
      largest = std::max(largest, std::abs(numeric));
      ASSERT_NEAR(grads[i], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << tensor.name << " element " << i - tensor.offset;
    }
    EXPECT_GT(largest, 1e-4) << tensor.name << " has no gradient to check";
  }
}

TEST(ModelGradient, EveryParameterUntied) {
  check_model_gradient(false);
}

TEST(ModelGradient, EveryParameterTied) {
  check_model_gradient(true);
}

TEST(ParameterLayout, NamesShapesAndDecay) {
  TransformerShape shape;
  shape.n_vocab = 300;
  shape.n_embd = 64;
  shape.n_layer = 2;
  shape.n_head = 4;
  shape.n_head_kv = 2;
  const ParameterLayout layout(resolve_transformer_shape(shape));
  EXPECT_EQ(layout.shape().n_ff, 192);  // 64 * 8 / 3 = 170, up to a multiple of 32
  ASSERT_EQ(layout.tensors().size(), 1u + 2 * 9 + 2);
  EXPECT_EQ(layout.tensors()[0].name, "token_embd.weight");
  EXPECT_EQ(layout.tensors()[0].dims, (std::vector<uint64_t>{64, 300}));
  EXPECT_FALSE(layout.tensors()[0].weight_decay);
  EXPECT_EQ(layout.tensors()[3].name, "blk.0.attn_k.weight");
  EXPECT_EQ(layout.tensors()[3].dims, (std::vector<uint64_t>{64, 32}));
  EXPECT_TRUE(layout.tensors()[3].weight_decay);
  EXPECT_FALSE(layout.tensors()[1].weight_decay);  // attn_norm
  size_t expected = 64 * 300 * 2 + 64;
  expected += 2 * (2 * 64 + 64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 192);
  EXPECT_EQ(layout.total(), expected);
}

TEST(ParameterLayout, RejectsBadShapes) {
  TransformerShape shape;
  shape.n_vocab = 300;
  shape.n_embd = 60;
  shape.n_head = 8;  // 60 / 8 is not whole
  EXPECT_THROW(resolve_transformer_shape(shape), Error);
  shape.n_embd = 64;
  shape.n_head = 4;
  shape.n_head_kv = 3;  // 4 % 3 != 0
  EXPECT_THROW(resolve_transformer_shape(shape), Error);
  shape.n_head_kv = 0;
  EXPECT_NO_THROW(resolve_transformer_shape(shape));
}

}  // namespace
}  // namespace specula

// Analytic gradients of every layer kind against central finite
// differences, all in double precision, on tiny shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "learn/layers.h"

namespace specula {
namespace {

std::vector<double> random_doubles(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

double weighted_sum(const std::vector<double>& out, const std::vector<double>& weights) {
  double sum = 0.0;
  for (size_t i = 0; i < out.size(); ++i) sum += out[i] * weights[i];
  return sum;
}

// Compares analytic[i] with (f(x + h e_i) - f(x - h e_i)) / 2h for every i.
void expect_gradient(const char* what, std::vector<double>& x, const std::vector<double>& analytic,
                     const std::function<double()>& objective) {
  ASSERT_EQ(x.size(), analytic.size());
  constexpr double kStep = 1e-5;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + kStep;
    const double plus = objective();
    x[i] = saved - kStep;
    const double minus = objective();
    x[i] = saved;
    const double numeric = (plus - minus) / (2 * kStep);
    ASSERT_NEAR(analytic[i], numeric, 1e-7 * std::max(1.0, std::abs(numeric)))
        << what << " element " << i;
  }
}

TEST(LayerGradient, Embedding) {
  const int64_t dim = 5;
  const std::vector<int32_t> tokens = {3, 1, 3, 0, 2, 3};
  std::vector<double> table = random_doubles(4 * dim, 1);
  const std::vector<double> weights = random_doubles(tokens.size() * dim, 2);
  std::vector<double> out(weights.size());
  const auto objective = [&] {
    embedding_forward<double>(table.data(), dim, tokens, out.data(), nullptr);
    return weighted_sum(out, weights);
  };
  std::vector<double> d_table(table.size(), 0.0);
  embedding_backward<double>(weights.data(), dim, tokens, d_table.data(), nullptr);
  expect_gradient("table", table, d_table, objective);
}

TEST(LayerGradient, RmsNorm) {
  const int64_t rows = 3, dim = 7;
  std::vector<double> x = random_doubles(rows * dim, 3);
  std::vector<double> w = random_doubles(dim, 4);
  const std::vector<double> weights = random_doubles(rows * dim, 5);
  std::vector<double> out(x.size()), inv_rms(rows);
  const auto objective = [&] {
    rms_norm_forward<double>(x.data(), w.data(), rows, dim, 1e-5f, out.data(), inv_rms.data(),
                             nullptr);
    return weighted_sum(out, weights);
  };
  objective();
  std::vector<double> d_x(x.size(), 0.0), d_w(dim, 0.0);
  ThreadPool pool(2);
  rms_norm_backward_accumulate<double>(x.data(), w.data(), inv_rms.data(), weights.data(), rows,
                                       dim, d_x.data(), d_w.data(), &pool);
  expect_gradient("x", x, d_x, objective);
  expect_gradient("weight", w, d_w, objective);
}

TEST(LayerGradient, Linear) {
  const int64_t rows = 4, n_in = 5, n_out = 3;
  std::vector<double> x = random_doubles(rows * n_in, 6);
  std::vector<double> w = random_doubles(n_out * n_in, 7);
  const std::vector<double> weights = random_doubles(rows * n_out, 8);
  std::vector<double> y(rows * n_out);
  const auto objective = [&] {
    linear_forward<double>(x.data(), w.data(), rows, n_in, n_out, y.data(), nullptr);
    return weighted_sum(y, weights);
  };
  std::vector<double> d_x(x.size(), 0.0), d_w(w.size(), 0.0);
  linear_backward<double>(x.data(), w.data(), weights.data(), rows, n_in, n_out, d_x.data(), false,
                          d_w.data(), nullptr);
  expect_gradient("x", x, d_x, objective);
  expect_gradient("w", w, d_w, objective);
}

TEST(LayerGradient, RopeIsARotationAndItsBackwardTheTranspose) {
  const int64_t rows = 6, seq_len = 3, n_heads = 2, head_dim = 4;
  const RopeTable<double> table(seq_len, head_dim, 10000.0f, 1.0f);
  std::vector<double> x = random_doubles(rows * n_heads * head_dim, 9);
  const std::vector<double> weights = random_doubles(x.size(), 10);
  std::vector<double> y;
  const auto objective = [&] {
    y = x;
    rope_forward<double>(y.data(), rows, seq_len, n_heads, table, nullptr);
    return weighted_sum(y, weights);
  };
  std::vector<double> d_x = weights;
  rope_backward<double>(d_x.data(), rows, seq_len, n_heads, table, nullptr);
  expect_gradient("x", x, d_x, objective);
  // Position 0 rotates by nothing; position 1's first pair by 1 radian.
  y = x;
  rope_forward<double>(y.data(), rows, seq_len, n_heads, table, nullptr);
  EXPECT_EQ(y[0], x[0]);
  const size_t row1 = n_heads * head_dim;
  EXPECT_NEAR(y[row1], x[row1] * std::cos(1.0) - x[row1 + 1] * std::sin(1.0), 1e-15);
  EXPECT_NEAR(y[row1 + 1], x[row1] * std::sin(1.0) + x[row1 + 1] * std::cos(1.0), 1e-15);
}

TEST(LayerGradient, AttentionWithRopeAndGroupedQueries) {
  const AttentionDims dims{.batch = 2, .seq_len = 4, .n_head = 4, .n_head_kv = 2, .head_dim = 4};
  const int64_t rows = dims.batch * dims.seq_len;
  const RopeTable<double> table(dims.seq_len, dims.head_dim, 10000.0f, 1.0f);
  std::vector<double> q = random_doubles(rows * dims.q_dim(), 11);
  std::vector<double> k = random_doubles(rows * dims.kv_dim(), 12);
  std::vector<double> v = random_doubles(rows * dims.kv_dim(), 13);
  const std::vector<double> weights = random_doubles(rows * dims.q_dim(), 14);
  std::vector<double> q_rot, k_rot;
  std::vector<double> probs(dims.batch * dims.n_head * dims.seq_len * dims.seq_len);
  std::vector<double> out(rows * dims.q_dim());
  ThreadPool pool(2);
  const auto objective = [&] {
    q_rot = q;
    k_rot = k;
    rope_forward<double>(q_rot.data(), rows, dims.seq_len, dims.n_head, table, nullptr);
    rope_forward<double>(k_rot.data(), rows, dims.seq_len, dims.n_head_kv, table, nullptr);
    attention_forward<double>(dims, q_rot.data(), k_rot.data(), v.data(), probs.data(), out.data(),
                              &pool);
    return weighted_sum(out, weights);
  };
  objective();
  std::vector<double> d_q(q.size()), d_k(k.size()), d_v(v.size());
  attention_backward<double>(dims, q_rot.data(), k_rot.data(), v.data(), probs.data(),
                             weights.data(), d_q.data(), d_k.data(), d_v.data(), &pool);
  rope_backward<double>(d_q.data(), rows, dims.seq_len, dims.n_head, table, nullptr);
  rope_backward<double>(d_k.data(), rows, dims.seq_len, dims.n_head_kv, table, nullptr);
  expect_gradient("q", q, d_q, objective);
  expect_gradient("k", k, d_k, objective);
  expect_gradient("v", v, d_v, objective);
}

TEST(LayerGradient, AttentionIsCausal) {
  // Changing a later position's key or value leaves earlier outputs alone.
  const AttentionDims dims{.batch = 1, .seq_len = 5, .n_head = 2, .n_head_kv = 1, .head_dim = 2};
  std::vector<double> q = random_doubles(5 * 4, 15);
  std::vector<double> k = random_doubles(5 * 2, 16);
  std::vector<double> v = random_doubles(5 * 2, 17);
  std::vector<double> probs(2 * 25), before(5 * 4), after(5 * 4);
  attention_forward<double>(dims, q.data(), k.data(), v.data(), probs.data(), before.data(),
                            nullptr);
  k[4 * 2] += 1.0;
  v[4 * 2 + 1] += 1.0;
  attention_forward<double>(dims, q.data(), k.data(), v.data(), probs.data(), after.data(),
                            nullptr);
  for (size_t i = 0; i < 4 * 4; ++i) EXPECT_EQ(before[i], after[i]) << i;
  EXPECT_NE(before[4 * 4 + 1], after[4 * 4 + 1]);
  // The first position attends only to itself: its output is its value.
  EXPECT_NEAR(before[0], v[0], 1e-15);
  EXPECT_NEAR(before[2], v[0], 1e-15);  // head 1 shares kv head 0
}

TEST(LayerGradient, SwiGlu) {
  const int64_t n = 9;
  std::vector<double> gate = random_doubles(n, 18, 2.0);
  std::vector<double> up = random_doubles(n, 19);
  const std::vector<double> weights = random_doubles(n, 20);
  std::vector<double> out(n);
  const auto objective = [&] {
    swiglu_forward<double>(gate.data(), up.data(), n, out.data(), nullptr);
    return weighted_sum(out, weights);
  };
  std::vector<double> d_gate(n), d_up(n);
  swiglu_backward<double>(gate.data(), up.data(), weights.data(), n, d_gate.data(), d_up.data(),
                          nullptr);
  expect_gradient("gate", gate, d_gate, objective);
  expect_gradient("up", up, d_up, objective);
}

TEST(LayerGradient, CrossEntropy) {
  const int64_t rows = 3, vocab = 6;
  std::vector<double> logits = random_doubles(rows * vocab, 21, 3.0);
  const std::vector<int32_t> targets = {2, 5, 0};
  const auto objective = [&] {
    return cross_entropy<double>(logits.data(), targets.data(), rows, vocab, nullptr, nullptr);
  };
  std::vector<double> d_logits(logits.size());
  cross_entropy<double>(logits.data(), targets.data(), rows, vocab, d_logits.data(), nullptr);
  expect_gradient("logits", logits, d_logits, objective);
}

TEST(LayerGradient, CrossEntropyValue) {
  // Uniform logits over 4 ids: ln 4 whatever the target. Logits (0, ln 3)
  // over 2 ids with target 1: -ln(3/4).
  const std::vector<float> uniform(8, 0.7f);
  const std::vector<int32_t> targets = {1, 3};
  EXPECT_NEAR(cross_entropy<float>(uniform.data(), targets.data(), 2, 4, nullptr, nullptr),
              std::log(4.0), 1e-6);
  const std::vector<float> two = {0.0f, static_cast<float>(std::log(3.0))};
  const int32_t target = 1;
  EXPECT_NEAR(cross_entropy<float>(two.data(), &target, 1, 2, nullptr, nullptr), -std::log(0.75),
              1e-6);
}

}  // namespace
}  // namespace specula

// The SIMD attention kernel against its scalar twin on every instruction
// set compiled in, and both against a double-precision softmax written
// here; thread-count invariance of the parallel split. Keys and values
// stored as F32 and as F16.
#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/f16.h"
#include "kernels/dispatch.h"

namespace specula {
namespace {

struct Case {
  int64_t n_head, n_head_kv, head_dim;
  std::vector<int64_t> n_keys;  // one row per entry
};

// Rows over one shared key/value store (as rows of one sequence are).
// kv_type kF16: the store holds keys and values rounded to F16, and keys
// and values below are those rounded values as floats. keys: rows of
// kv_dim (position-major, for the reference); key_store / half_key_store:
// the same keys in attention()'s layout (attention.h), whose positions
// past the last key hold NaN, which must never reach a result.
struct Problem {
  AttentionShape shape;
  std::vector<float> queries, keys, values, key_store;
  std::vector<uint16_t> half_key_store, half_values;
  std::vector<int64_t> n_keys;

  explicit Problem(const Case& c, uint32_t seed, DType kv_type = DType::kF32) : n_keys(c.n_keys) {
    shape = AttentionShape{c.n_head, c.n_head_kv, c.head_dim,
                           1.0f / std::sqrt(static_cast<float>(c.head_dim)), kv_type};
    int64_t max_keys = 0;
    for (int64_t n : n_keys) max_keys = std::max(max_keys, n);
    std::mt19937 rng(seed);
    // Spread 2: scores of several units, so the softmax is far from uniform
    // and blocks raise the running maximum.
    std::normal_distribution<float> normal(0.0f, 2.0f);
    const auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(static_cast<size_t>(n));
      for (float& x : v) x = normal(rng);
    };
    fill(queries, static_cast<int64_t>(n_keys.size()) * c.n_head * c.head_dim);
    fill(keys, max_keys * c.n_head_kv * c.head_dim);
    fill(values, max_keys * c.n_head_kv * c.head_dim);
    if (kv_type == DType::kF16) {
      for (std::vector<float>* from : {&keys, &values}) {
        for (float& x : *from) x = f16_to_f32(f32_to_f16(x));
      }
      for (float x : values) half_values.push_back(f32_to_f16(x));
    }
    const int64_t kv_dim = c.n_head_kv * c.head_dim;
    key_store.assign(static_cast<size_t>(key_store_elements(kv_dim, max_keys)),
                     std::numeric_limits<float>::quiet_NaN());
    for (int64_t j = 0; j < max_keys; ++j) {
      for (int64_t e = 0; e < kv_dim; ++e)
        key_store[static_cast<size_t>(key_store_index(kv_dim, j, e))] = keys[j * kv_dim + e];
    }
    for (float x : key_store) half_key_store.push_back(f32_to_f16(x));
  }

  std::vector<float> run(bool scalar, ThreadPool* pool) const {
    const int64_t q_dim = shape.n_head * shape.head_dim;
    std::vector<float> out(n_keys.size() * static_cast<size_t>(q_dim), -1.0f);
    const bool half = shape.kv_type == DType::kF16;
    const void* k = half ? static_cast<const void*>(half_key_store.data()) : key_store.data();
    const void* v = half ? static_cast<const void*>(half_values.data()) : values.data();
    std::vector<AttentionRow> rows;
    for (size_t i = 0; i < n_keys.size(); ++i) {
      rows.push_back(AttentionRow{queries.data() + static_cast<int64_t>(i) * q_dim, k, v, n_keys[i],
                                  out.data() + static_cast<int64_t>(i) * q_dim});
    }
    if (scalar) {
      attention_scalar(shape, rows);
    } else {
      attention(shape, rows, pool);
    }
    return out;
  }

  // softmax(scale * K q) V in double, two passes, no blocks.
  std::vector<double> reference() const {
    const int64_t d = shape.head_dim, kv_dim = shape.n_head_kv * d;
    std::vector<double> out;
    for (size_t i = 0; i < n_keys.size(); ++i) {
      for (int64_t h = 0; h < shape.n_head; ++h) {
        const float* q = queries.data() + (static_cast<int64_t>(i) * shape.n_head + h) * d;
        const int64_t kv_offset = h / (shape.n_head / shape.n_head_kv) * d;
        std::vector<double> scores(static_cast<size_t>(n_keys[i]));
        double max_score = -1e300, total = 0.0;
        for (int64_t j = 0; j < n_keys[i]; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e) dot += double{q[e]} * keys[j * kv_dim + kv_offset + e];
          scores[static_cast<size_t>(j)] = dot * shape.scale;
          max_score = std::max(max_score, scores[static_cast<size_t>(j)]);
        }
        for (double& s : scores) total += (s = std::exp(s - max_score));
        for (int64_t e = 0; e < d; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < n_keys[i]; ++j)
            acc += scores[static_cast<size_t>(j)] * values[j * kv_dim + kv_offset + e];
          out.push_back(acc / total);
        }
      }
    }
    return out;
  }
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {4, 2, 12, {1, 2, 3}},         // GQA, tiny heads, first keys
      {3, 1, 33, {63, 64, 65}},      // MQA, odd width, block edges
      {2, 2, 80, {130, 7}},          // 4 vectors + tail on AVX-512, blocks crossed
      {8, 4, 64, {200, 201, 5, 1}},  // the common shape, enough work to go parallel
      {2, 1, 5, {17}},               // narrower than any vector
      {32, 4, 128, {300, 1}},  // GQA groups of 8 (Llama 3): runs of heads split across threads
      {66, 1, 8, {70}},        // a group longer than the longest head run (64)
      // AVX-512 score tiles (4 heads x 4 keys) short of heads and keys:
      {6, 1, 64, {67, 3}},  // a group of 6 heads, blocks of 3 and 67 keys
      {5, 5, 16, {9}},      // one head per group, one vector per head
  };
  return all;
}

class AttentionTest : public ::testing::TestWithParam<DType> {};

TEST_P(AttentionTest, EveryTargetMatchesScalarTwinAndDoubleReference) {
  for (size_t c = 0; c < cases().size(); ++c) {
    const Problem problem(cases()[c], static_cast<uint32_t>(c + 1), GetParam());
    const std::vector<float> scalar = problem.run(/*scalar=*/true, nullptr);
    const std::vector<double> reference = problem.reference();
    for (size_t i = 0; i < scalar.size(); ++i)
      // 2e-5: a score is one float chain of head_dim FMAs (up to 128 here),
      // whose rounding grows with head_dim; 1e-5 failed at 1.06e-5.
      ASSERT_NEAR(scalar[i], reference[i], 2e-5) << "scalar, case " << c << " at " << i;
    for (const SimdTarget& target : simd_targets()) {
      ScopedSimdTarget scoped(target.bit);
      const std::vector<float> simd = problem.run(/*scalar=*/false, nullptr);
      for (size_t i = 0; i < simd.size(); ++i) {
        ASSERT_NEAR(simd[i], scalar[i], 1e-5) << target.name << ", case " << c << " at " << i
                                              << " (reference " << reference[i] << ")";
      }
    }
  }
}

TEST_P(AttentionTest, IdenticalForAnyThreadCount) {
  for (size_t c = 0; c < cases().size(); ++c) {
    const Problem problem(cases()[c], static_cast<uint32_t>(c + 11), GetParam());
    const std::vector<float> one = problem.run(false, nullptr);
    for (int n_threads : {2, 3, 16}) {
      ThreadPool pool(n_threads);
      EXPECT_EQ(problem.run(false, &pool), one) << "case " << c << ", " << n_threads << " threads";
    }
  }
}

// Rows of one sequence run together (each block of keys read once for all
// of them), yet each row's result is bit for bit what it is alone: what
// makes a verification's logits those of decoding the rows one by one.
TEST_P(AttentionTest, RowsTogetherEqualEachRowAlone) {
  // Causal rows of a verification (n_keys 61..70: the last block is
  // shared, short and past some rows' ends) and of a prompt chunk crossing
  // blocks (1..130), over two shapes.
  std::vector<int64_t> verification, chunk;
  for (int64_t n = 61; n <= 70; ++n) verification.push_back(n);
  for (int64_t n = 1; n <= 130; n += 3) chunk.push_back(n);
  const std::vector<Case> batches = {
      {8, 1, 64, verification}, {8, 2, 64, chunk}, {6, 2, 40, verification}, {4, 4, 16, chunk}};
  for (size_t c = 0; c < batches.size(); ++c) {
    const Problem together(batches[c], static_cast<uint32_t>(c + 31), GetParam());
    ThreadPool pool(2);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      const std::vector<float> all = together.run(false, p);
      const size_t q_dim = static_cast<size_t>(together.shape.n_head * together.shape.head_dim);
      for (size_t i = 0; i < together.n_keys.size(); ++i) {
        Problem alone = together;
        alone.queries.assign(
            together.queries.begin() + static_cast<std::ptrdiff_t>(i * q_dim),
            together.queries.begin() + static_cast<std::ptrdiff_t>((i + 1) * q_dim));
        alone.n_keys = {together.n_keys[i]};
        const std::vector<float> one = alone.run(false, nullptr);
        ASSERT_TRUE(std::equal(one.begin(), one.end(),
                               all.begin() + static_cast<std::ptrdiff_t>(i * q_dim)))
            << "case " << c << ", row " << i << (p ? ", pool" : ", inline");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KvTypes, AttentionTest, ::testing::Values(DType::kF32, DType::kF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Keys and values of a type the kernels do not read are refused, not
// misread.
TEST(Attention, RefusesOtherKvTypes) {
  const std::vector<float> query(8, 1.0f), keys(8, 1.0f);
  std::vector<float> out(8);
  const AttentionRow row{query.data(), keys.data(), keys.data(), 1, out.data()};
  const AttentionShape shape{1, 1, 8, 1.0f, DType::kQ8_0};
  EXPECT_THROW(attention(shape, {&row, 1}, nullptr), Error);
  EXPECT_THROW(attention_scalar(shape, {&row, 1}), Error);
}

}  // namespace
}  // namespace specula

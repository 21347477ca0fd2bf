#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/f16.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_kernels.h"

namespace specula {
namespace {

struct Problem {
  DType type;
  int64_t n_in, n_out, m;
  std::vector<uint8_t> weights;
  std::vector<float> dequantized;  // n_out x n_in, what the weights hold
  std::vector<float> x;            // m x n_in
  WeightMatrix matrix() const { return make_weight_matrix(weights.data(), type, n_in, n_out); }
};

Problem make_problem(DType type, int64_t n_in, int64_t n_out, int64_t m, uint32_t seed) {
  Problem p{
      type, n_in, n_out, m, {}, {}, test::random_values(static_cast<size_t>(m * n_in), seed + 1)};
  p.weights = test::quantize_matrix(
      type, test::random_values(static_cast<size_t>(n_in * n_out), seed), n_in, n_out);
  p.dequantized.resize(static_cast<size_t>(n_in * n_out));
  const WeightMatrix w = p.matrix();
  for (int64_t r = 0; r < n_out; ++r) dequantize_row(w, r, p.dequantized.data() + r * n_in);
  return p;
}

// sum_k |w_k x_k| for output (i, r): float rounding errors scale with it.
double magnitude(const Problem& p, int64_t i, int64_t r) {
  double s = 0.0;
  for (int64_t k = 0; k < p.n_in; ++k)
    s += std::fabs(p.dequantized[r * p.n_in + k] * p.x[i * p.n_in + k]);
  return s;
}

// Bound on |matmul_scalar - matmul_reference| from 8-bit activations: each
// x_k moves by at most half its 32-value block's step amax / 127.
// With BF16 dot products (simd_bf16_dot) BF16 weights take activations
// rounded to BF16: each x_k moves by at most 2^-8 of itself.
double activation_quant_bound(const Problem& p, int64_t i, int64_t r) {
  if (p.type == DType::kBF16 && simd_bf16_dot()) return 0x1p-8 * magnitude(p, i, r);
  if (p.type == DType::kF32 || p.type == DType::kF16 || p.type == DType::kBF16) return 0.0;
  const int64_t group = 32;
  double bound = 0.0;
  for (int64_t g = 0; g < p.n_in / group; ++g) {
    float amax = 0.0f;
    for (int64_t k = g * group; k < (g + 1) * group; ++k)
      amax = std::max(amax, std::fabs(p.x[i * p.n_in + k]));
    double wsum = 0.0;
    for (int64_t k = g * group; k < (g + 1) * group; ++k)
      wsum += std::fabs(p.dequantized[r * p.n_in + k]);
    bound += wsum * amax / 127.0 / 2.0;
  }
  return bound;
}

// Row lengths: not multiples of any vector width for the float types;
// multiples of the block size but not of 512 for the quantized ones, so
// the integer kernels see a whole 16-block group and a partial one.
int64_t awkward_n_in(DType type) {
  switch (type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
      return 32 * 23;
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return 256 * 3;
    default:
      return 203;
  }
}

const int64_t kMs[] = {1, 2, 3, 7, 16, 33, 64};

TEST(Matmul, ScalarTwinMatchesReference) {
  for (DType type : test::all_matmul_types()) {
    const Problem p = make_problem(type, awkward_n_in(type), 13, 3, 10);
    std::vector<float> twin(static_cast<size_t>(p.m * p.n_out)), ref(twin.size());
    matmul_scalar(p.matrix(), p.x.data(), p.m, twin.data());
    matmul_reference(p.matrix(), p.x.data(), p.m, ref.data());
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t r = 0; r < p.n_out; ++r) {
        const size_t at = static_cast<size_t>(i * p.n_out + r);
        EXPECT_NEAR(twin[at], ref[at], activation_quant_bound(p, i, r) + 1e-5 * magnitude(p, i, r))
            << dtype_name(type) << " row " << i << " out " << r;
      }
    }
  }
}

TEST(Matmul, ReferenceMatchesHandComputedDot) {
  // 1 x 2 F32 weights times a 1 x 2 row: known answer, no code under test.
  const float w[4] = {1.0f, 2.0f, -3.0f, 0.5f};
  const float x[2] = {4.0f, -1.0f};
  float y[2];
  const WeightMatrix m = make_weight_matrix(w, DType::kF32, 2, 2);
  matmul_reference(m, x, 1, y);
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], -12.5f);
  matmul(m, x, 1, y, nullptr);
  EXPECT_EQ(y[0], 2.0f);
  EXPECT_EQ(y[1], -12.5f);
}

// Every SIMD target compiled in and supported here, against the scalar twin.
TEST(Matmul, EverySimdTargetMatchesScalarTwin) {
  ThreadPool pool(2);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    ASSERT_EQ(simd_active_target().name, target.name);
    for (DType type : test::all_matmul_types()) {
      for (int64_t m : kMs) {
        const Problem p =
            make_problem(type, awkward_n_in(type), 13, m, static_cast<uint32_t>(m * 100));
        std::vector<float> twin(static_cast<size_t>(m * p.n_out)), fast(twin.size());
        matmul_scalar(p.matrix(), p.x.data(), m, twin.data());
        matmul(p.matrix(), p.x.data(), m, fast.data(), m % 2 == 0 ? &pool : nullptr);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < p.n_out; ++r) {
            const size_t at = static_cast<size_t>(i * p.n_out + r);
            ASSERT_NEAR(fast[at], twin[at], 1e-5 * magnitude(p, i, r) + 1e-6)
                << target.name << " " << dtype_name(type) << " m " << m << " row " << i << " out "
                << r;
          }
        }
      }
    }
  }
}

TEST(Matmul, EverySimdTargetMatchesScalarTwinOnLongRows) {
  ThreadPool pool(3);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : test::all_matmul_types()) {
      for (int64_t m : {1, 2, 5, 9}) {
        const Problem p =
            make_problem(type, test::long_n_in(type), 37, m, static_cast<uint32_t>(m * 31 + 7));
        std::vector<float> twin(static_cast<size_t>(m * p.n_out)), fast(twin.size());
        matmul_scalar(p.matrix(), p.x.data(), m, twin.data());
        matmul(p.matrix(), p.x.data(), m, fast.data(), &pool);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < p.n_out; ++r) {
            const size_t at = static_cast<size_t>(i * p.n_out + r);
            ASSERT_NEAR(fast[at], twin[at], 1e-5 * magnitude(p, i, r) + 1e-6)
                << target.name << " " << dtype_name(type) << " m " << m << " row " << i << " out "
                << r;
          }
        }
      }
    }
  }
}

// Exact speculative decoding compares a verification pass over several
// rows with single-row passes: a row's result must not depend on how many
// other rows share the call, to the last bit, on every target.
TEST(Matmul, RowResultIndependentOfRowCount) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : test::all_matmul_types()) {
      const int64_t m_max = 17;
      const Problem p = make_problem(type, test::long_n_in(type), 21, m_max, 4242);
      std::vector<float> single(static_cast<size_t>(m_max * p.n_out));
      for (int64_t i = 0; i < m_max; ++i) {
        matmul(p.matrix(), p.x.data() + i * p.n_in, 1, single.data() + i * p.n_out, nullptr);
      }
      for (int64_t m : {2, 3, 4, 8, 9, 17}) {
        std::vector<float> y(static_cast<size_t>(m * p.n_out));
        matmul(p.matrix(), p.x.data(), m, y.data(), nullptr);
        for (int64_t at = 0; at < m * p.n_out; ++at) {
          ASSERT_EQ(y[static_cast<size_t>(at)], single[static_cast<size_t>(at)])
              << target.name << " " << dtype_name(type) << " m " << m << " row " << at / p.n_out
              << " out " << at % p.n_out;
        }
      }
    }
  }
}

// The vectorized activation preparation writes the same bytes as the plain
// one on every target (the twin comparison above relies on it).
TEST(Matmul, ActivationPreparationMatchesPlainOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (int64_t n : {32, 32 * 23, 256 * 3}) {
      const std::vector<float> x = test::random_values(static_cast<size_t>(n), 5);
      const auto blocks = static_cast<size_t>(groups_for(n) * kGroupBlocks);
      std::vector<int8_t> v1(blocks * 32, 99), v2(blocks * 32, -99);
      std::vector<float> s1(blocks), s2(blocks), ss1(blocks), ss2(blocks);
      std::vector<int32_t> n1(blocks), n2(blocks), lo1(blocks), lo2(blocks);
      prepare_activation_row(x.data(), n, v1.data(), s1.data(), n1.data(), lo1.data(), ss1.data());
      prepare_activation_row_simd(x.data(), n, v2.data(), s2.data(), n2.data(), lo2.data(),
                                  ss2.data());
      EXPECT_EQ(v1, v2) << target.name << " n " << n;
      EXPECT_EQ(s1, s2) << target.name << " n " << n;
      EXPECT_EQ(n1, n2) << target.name << " n " << n;
      EXPECT_EQ(lo1, lo2) << target.name << " n " << n;
      EXPECT_EQ(ss1, ss2) << target.name << " n " << n;
      // Hand check of one value: x[0] = v * scale within half a step.
      EXPECT_NEAR(v1[0] * s1[0], x[0], s1[0] / 2 + 1e-7f);
    }
  }
}

// F16 / BF16 rows longer than kHalfActivationMinIn take F16 activations
// (scaled by a power of two): the SIMD preparation writes the plain one's
// bytes on every target, including rows of zeros, tiny, huge and
// non-finite values.
TEST(Matmul, HalfActivationsMatchPlainOnEveryTarget) {
  std::vector<std::vector<float>> rows;
  rows.push_back(test::random_values(4097, 3));
  rows.push_back(std::vector<float>(4103, 0.0f));
  for (float factor : {1e-30f, 3e-8f, 1e5f, 1e30f}) {
    std::vector<float> x = test::random_values(4111, 9);
    for (float& v : x) v *= factor;
    rows.push_back(x);
  }
  std::vector<float> with_inf = test::random_values(4100, 4);
  with_inf[17] = std::numeric_limits<float>::infinity();
  rows.push_back(with_inf);
  std::vector<float> with_nan = test::random_values(4100, 5);
  with_nan[4099] = std::numeric_limits<float>::quiet_NaN();
  rows.push_back(with_nan);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (size_t row = 0; row < rows.size(); ++row) {
      const std::vector<float>& x = rows[row];
      const auto n = static_cast<int64_t>(x.size());
      std::vector<uint16_t> h1(x.size(), 1), h2(x.size(), 2);
      std::vector<float> r1(x.size(), 1.0f), r2(x.size(), 2.0f);
      const float inv1 = half_activations_row(x.data(), n, h1.data(), r1.data());
      const float inv2 = half_activations_row_simd(x.data(), n, h2.data(), r2.data());
      EXPECT_EQ(inv1, inv2) << target.name << " row " << row;
      bool finite = true;
      for (float v : x) finite = finite && std::isfinite(v);
      float max_abs = 0.0f;
      for (size_t k = 0; k < x.size(); ++k) {
        if (std::isnan(x[k])) {
          EXPECT_TRUE(std::isnan(r1[k]) && std::isnan(r2[k])) << target.name << " k " << k;
          continue;
        }
        ASSERT_EQ(h1[k], h2[k]) << target.name << " row " << row << " k " << k;
        ASSERT_EQ(r1[k], r2[k]) << target.name << " row " << row << " k " << k;
        max_abs = std::max(max_abs, std::fabs(r1[k]));
        if (!finite) {
          EXPECT_EQ(inv1, 1.0f);
          if (std::isinf(x[k])) {
            EXPECT_EQ(r1[k], x[k]);
          }
          continue;
        }
        // Hand check: r * inv is x to F16's 11 significant bits, or within
        // F16's subnormal step below 2^-14 (times the scale).
        EXPECT_NEAR(r1[k] * inv1, x[k], std::fabs(x[k]) * 0x1p-11f + 0x1p-25f * inv1 + 1e-38f)
            << "row " << row << " k " << k;
      }
      if (finite && max_abs > 0.0f && row != 2) {  // row 2 (1e-30) hits the clamp
        EXPECT_GE(max_abs, 16384.0f) << "row " << row;
        EXPECT_LE(max_abs, 32768.0f) << "row " << row;
      }
    }
  }
}

// Long F16 / BF16 rows (F16 activations) against the mathematical
// reference, on every target and for both decode row orders: the outputs
// differ from it by the activations' F16 rounding only.
TEST(Matmul, LongFloatRowsMatchReferenceOnEveryTarget) {
  ThreadPool pool(2);
  const int saved = simd_float_decode_rows();
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (int decode_rows : {1, 4}) {
      simd_set_float_decode_rows(decode_rows);
      for (DType type : {DType::kF16, DType::kBF16, DType::kF32}) {
        for (int64_t m : {1, 3}) {
          const Problem p = make_problem(type, 5632 + 7, 9, m, static_cast<uint32_t>(m + 50));
          std::vector<float> ref(static_cast<size_t>(m * p.n_out)), fast(ref.size()),
              twin(ref.size());
          matmul_reference(p.matrix(), p.x.data(), m, ref.data());
          matmul_scalar(p.matrix(), p.x.data(), m, twin.data());
          matmul(p.matrix(), p.x.data(), m, fast.data(), &pool);
          const double half = type == DType::kF32                       ? 0.0
                              : type == DType::kBF16 && simd_bf16_dot() ? 0x1p-8
                                                                        : 0x1p-11;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t r = 0; r < p.n_out; ++r) {
              const size_t at = static_cast<size_t>(i * p.n_out + r);
              const double bound = (half + 1e-5) * magnitude(p, i, r) + 1e-6;
              ASSERT_NEAR(fast[at], ref[at], bound) << target.name << " " << dtype_name(type);
              ASSERT_NEAR(twin[at], ref[at], bound) << dtype_name(type);
              ASSERT_NEAR(fast[at], twin[at], 1e-5 * magnitude(p, i, r) + 1e-6)
                  << target.name << " " << dtype_name(type);
            }
          }
        }
      }
    }
  }
  simd_set_float_decode_rows(saved);
}

// Batch invariance on long float rows (F16 activations for F16 / BF16),
// for both decode row orders: bit-identical for m = 1 and m > 1.
TEST(Matmul, LongFloatRowResultIndependentOfRowCount) {
  const int saved = simd_float_decode_rows();
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (int decode_rows : {1, 4}) {
      simd_set_float_decode_rows(decode_rows);
      for (DType type : {DType::kF16, DType::kBF16, DType::kF32}) {
        const int64_t m_max = 9;
        const Problem p = make_problem(type, 4096 + 37, 11, m_max, 99);
        std::vector<float> single(static_cast<size_t>(m_max * p.n_out));
        for (int64_t i = 0; i < m_max; ++i) {
          matmul(p.matrix(), p.x.data() + i * p.n_in, 1, single.data() + i * p.n_out, nullptr);
        }
        for (int64_t m : {2, 9}) {
          std::vector<float> y(static_cast<size_t>(m * p.n_out));
          matmul(p.matrix(), p.x.data(), m, y.data(), nullptr);
          for (int64_t at = 0; at < m * p.n_out; ++at) {
            ASSERT_EQ(y[static_cast<size_t>(at)], single[static_cast<size_t>(at)])
                << target.name << " " << dtype_name(type) << " decode rows " << decode_rows << " m "
                << m << " at " << at;
          }
        }
      }
    }
  }
  simd_set_float_decode_rows(saved);
}

// Non-finite activations reach the outputs of the rows they are in, and
// only those, for the long-row path as for the short one.
TEST(Matmul, NonFiniteActivationsGiveNonFiniteOutputs) {
  for (DType type : {DType::kF16, DType::kBF16}) {
    for (int64_t n_in : {int64_t{203}, int64_t{4100}}) {
      Problem p = make_problem(type, n_in, 5, 3, 8);
      p.x[static_cast<size_t>(1 * n_in + 7)] = std::numeric_limits<float>::quiet_NaN();
      p.x[static_cast<size_t>(2 * n_in + 9)] = std::numeric_limits<float>::infinity();
      for (int64_t m : {1, 3}) {
        std::vector<float> y(static_cast<size_t>(3 * p.n_out));
        for (int64_t i = 0; i < 3; i += m) {
          matmul(p.matrix(), p.x.data() + i * n_in, m, y.data() + i * p.n_out, nullptr);
        }
        for (int64_t r = 0; r < p.n_out; ++r) {
          EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(r)])) << dtype_name(type);
          EXPECT_TRUE(std::isnan(y[static_cast<size_t>(p.n_out + r)])) << dtype_name(type);
          EXPECT_FALSE(std::isfinite(y[static_cast<size_t>(2 * p.n_out + r)])) << dtype_name(type);
        }
      }
    }
  }
}

// BF16 dot products: exact where every product and partial sum is (small
// integers, any pairing), and activations rounded to BF16 first (1 + 2^-10
// is not a BF16 value; with the setting off, BF16 weights multiply floats).
TEST(Matmul, Bf16DotProductsRoundActivationsToBf16) {
  if (!simd_bf16_dot()) GTEST_SKIP() << "no AVX512_BF16 on this CPU (or not AVX3_DL)";
  constexpr int64_t n_in = 70, n_out = 3;  // two 32-value steps and a tail of 6
  std::vector<uint16_t> w(static_cast<size_t>(n_in * n_out));
  std::vector<float> x(static_cast<size_t>(2 * n_in));
  for (int64_t k = 0; k < n_in; ++k) {
    for (int64_t r = 0; r < n_out; ++r) {
      w[static_cast<size_t>(r * n_in + k)] = f32_to_bf16(static_cast<float>((k + 3 * r) % 7 - 3));
    }
    x[static_cast<size_t>(k)] = static_cast<float>(k % 5 - 2);
    x[static_cast<size_t>(n_in + k)] = k == 40 ? 1.0f + 0x1p-10f : 0.0f;
  }
  const WeightMatrix m = make_weight_matrix(w.data(), DType::kBF16, n_in, n_out);
  std::vector<float> y(static_cast<size_t>(2 * n_out));
  for (const int64_t rows : {1, 2}) {
    matmul(m, x.data(), rows, y.data(), nullptr);
    for (int64_t r = 0; r < n_out; ++r) {
      float expected = 0.0f;
      for (int64_t k = 0; k < n_in; ++k) {
        expected += static_cast<float>(((k + 3 * r) % 7 - 3) * (k % 5 - 2));
      }
      EXPECT_EQ(y[static_cast<size_t>(r)], expected) << "row " << r;
      if (rows == 2) {
        // Row 1 picks weight k = 40 times 1 + 2^-10, rounded to 1.
        EXPECT_EQ(y[static_cast<size_t>(n_out + r)], static_cast<float>((40 + 3 * r) % 7 - 3));
      }
    }
  }
  simd_set_bf16_dot(false);
  EXPECT_FALSE(simd_bf16_dot());
  matmul(m, x.data(), 2, y.data(), nullptr);
  simd_set_bf16_dot(true);
  EXPECT_EQ(y[static_cast<size_t>(n_out)], static_cast<float>((40 % 7) - 3) * (1.0f + 0x1p-10f));
}

TEST(Matmul, IntRowPrefetchSettingKeepsOutputs) {
  const bool saved = simd_int_row_prefetch();
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ6_K}) {
    const Problem p = make_problem(type, test::long_n_in(type), 37, 3, 5);
    std::vector<float> on(static_cast<size_t>(p.m * p.n_out)), off(on.size()), ref(on.size());
    simd_set_int_row_prefetch(true);
    EXPECT_TRUE(simd_int_row_prefetch());
    matmul(p.matrix(), p.x.data(), p.m, on.data(), nullptr);
    simd_set_int_row_prefetch(false);
    EXPECT_FALSE(simd_int_row_prefetch());
    matmul(p.matrix(), p.x.data(), p.m, off.data(), nullptr);
    EXPECT_EQ(on, off) << dtype_name(type);
    matmul_scalar(p.matrix(), p.x.data(), p.m, ref.data());
    for (size_t at = 0; at < ref.size(); ++at) {
      EXPECT_NEAR(off[at], ref[at], 1e-3 * (std::fabs(ref[at]) + 1.0)) << dtype_name(type);
    }
  }
  simd_set_int_row_prefetch(saved);
}

TEST(Matmul, FloatDecodeRowsSetting) {
  const int saved = simd_float_decode_rows();
  EXPECT_THROW(simd_set_float_decode_rows(3), Error);
  simd_set_float_decode_rows(4);
  EXPECT_EQ(simd_float_decode_rows(), 4);
  simd_set_float_decode_rows(saved);
}

// Issue 15: NaN or infinite activations once became INT_MIN in the 8-bit
// quantization and overflowed its int sums (undefined behaviour, caught by
// UBSan). Now such a block gets a NaN scale and zero values: every output
// of that row is NaN, the other rows are untouched, on every target and in
// the scalar twin. Blocks too small for their inverse scale quantize to 0.
TEST(Matmul, NonFiniteActivationsOfIntTypesGiveNaNOutputs) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : test::all_matmul_types()) {
      if (!is_int_dot_type(type)) continue;
      Problem p = make_problem(type, test::long_n_in(type), 6, 5, 21);
      const int64_t n = p.n_in;
      // Row 1: a NaN as the only non-zero of its block's max (a float max
      // would drop it); row 2: +inf; row 3: -inf and a NaN; row 4: a block
      // of 1e-40 (subnormal; 127 / amax overflows).
      for (int64_t k = 32; k < 64; ++k) p.x[static_cast<size_t>(n + k)] = 0.0f;
      p.x[static_cast<size_t>(n + 40)] = nan;
      p.x[static_cast<size_t>(2 * n + 5)] = inf;
      p.x[static_cast<size_t>(3 * n + n - 1)] = -inf;
      p.x[static_cast<size_t>(3 * n + 3)] = nan;
      for (int64_t k = 0; k < 32; ++k) p.x[static_cast<size_t>(4 * n + k)] = 1e-40f;
      std::vector<float> fast(static_cast<size_t>(p.m * p.n_out)), twin(fast.size()),
          single(fast.size());
      matmul(p.matrix(), p.x.data(), p.m, fast.data(), nullptr);
      matmul_scalar(p.matrix(), p.x.data(), p.m, twin.data());
      for (int64_t i = 0; i < p.m; ++i) {
        matmul(p.matrix(), p.x.data() + i * n, 1, single.data() + i * p.n_out, nullptr);
      }
      for (int64_t i = 0; i < p.m; ++i) {
        for (int64_t r = 0; r < p.n_out; ++r) {
          const size_t at = static_cast<size_t>(i * p.n_out + r);
          const bool poisoned = i >= 1 && i <= 3;
          for (const std::vector<float>* y : {&fast, &twin, &single}) {
            EXPECT_EQ(std::isnan((*y)[at]), poisoned)
                << target.name << " " << dtype_name(type) << " row " << i << " out " << r;
          }
          if (!poisoned) {
            EXPECT_EQ(fast[at], single[at]) << target.name << " " << dtype_name(type);
            EXPECT_NEAR(fast[at], twin[at], 1e-5 * magnitude(p, i, r) + 1e-6)
                << target.name << " " << dtype_name(type);
          }
        }
      }
      // The prepared activations: the same bytes from both preparations,
      // zero values and a NaN scale in the poisoned blocks.
      const auto blocks = static_cast<size_t>(groups_for(n) * kGroupBlocks);
      std::vector<int8_t> v1(blocks * 32, 99), v2(blocks * 32, -99);
      std::vector<float> s1(blocks), s2(blocks), ss1(blocks), ss2(blocks);
      std::vector<int32_t> n1(blocks), n2(blocks), lo1(blocks), lo2(blocks);
      for (int64_t i = 1; i < p.m; ++i) {
        const float* x = p.x.data() + i * n;
        prepare_activation_row(x, n, v1.data(), s1.data(), n1.data(), lo1.data(), ss1.data());
        prepare_activation_row_simd(x, n, v2.data(), s2.data(), n2.data(), lo2.data(), ss2.data());
        EXPECT_EQ(v1, v2) << target.name << " row " << i;
        EXPECT_EQ(n1, n2) << target.name << " row " << i;
        EXPECT_EQ(lo1, lo2) << target.name << " row " << i;
        for (size_t b = 0; b < blocks; ++b) {
          EXPECT_EQ(std::isnan(s1[b]), std::isnan(s2[b])) << target.name << " block " << b;
          if (!std::isnan(s1[b])) {
            EXPECT_EQ(s1[b], s2[b]) << target.name << " block " << b;
          }
        }
        const size_t poisoned_block = i == 1 ? 1 : 0;  // rows 2 and 3: block 0
        if (i <= 3) {
          EXPECT_TRUE(std::isnan(s1[poisoned_block])) << "row " << i;
          EXPECT_EQ(n1[poisoned_block], 0) << "row " << i;
        } else {
          EXPECT_EQ(s1[0], 0.0f);  // the 1e-40 block
          EXPECT_EQ(n1[0], 0);
        }
      }
    }
  }
}

TEST(Matmul, IdenticalFor1To3Threads) {
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kQ4_K}) {
    const Problem p = make_problem(type, awkward_n_in(type), 37, 5, 77);
    std::vector<float> expected(static_cast<size_t>(p.m * p.n_out));
    matmul(p.matrix(), p.x.data(), p.m, expected.data(), nullptr);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(expected.size());
      matmul(p.matrix(), p.x.data(), p.m, y.data(), &pool);
      EXPECT_EQ(y, expected) << dtype_name(type) << " threads " << threads;
    }
  }
}

TEST(Matmul, RejectsUnsupportedTypeAndBadRow) {
  std::vector<uint8_t> data(1024);
  float x[256] = {};
  float y[4];
  const WeightMatrix q2 = make_weight_matrix(data.data(), DType::kQ2_K, 256, 1);
  EXPECT_FALSE(matmul_supports(DType::kQ2_K));
  EXPECT_THROW(matmul(q2, x, 1, y, nullptr), Error);
  EXPECT_THROW(make_weight_matrix(data.data(), DType::kQ4_K, 100, 1), Error);
}

}  // namespace
}  // namespace specula

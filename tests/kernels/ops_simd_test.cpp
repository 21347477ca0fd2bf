// The SIMD row operations (kernels/ops_simd.cpp) against their scalar twins
// on every instruction set compiled in, on sizes that are not multiples of
// any vector width; plus hand-computed values, so that a bug shared by both
// versions is caught too. (These kernel tests live with the model tests
// because the forward pass is their only user.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ops.h"

namespace specula {
namespace {

const std::vector<int64_t> kAwkwardSizes = {1, 2, 3, 7, 15, 16, 17, 31, 33, 63, 65, 100, 257, 1001};

std::vector<float> random_values(size_t n, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// |a - b| <= tolerance * max(1, |b|) for every element.
void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tolerance,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_LE(std::fabs(a[i] - b[i]), tolerance * std::max(1.0f, std::fabs(b[i])))
        << what << " at " << i << " of " << a.size() << ": " << a[i] << " vs " << b[i];
  }
}

TEST(OpsSimd, EveryTargetMatchesScalarTwins) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (int64_t n : kAwkwardSizes) {
      const std::string what = target.name + " n=" + std::to_string(n);
      const auto size = static_cast<size_t>(n);
      const std::vector<float> x = random_values(size, 1, 3.0f);
      const std::vector<float> weight = random_values(size, 2, 1.0f);

      std::vector<float> simd(size), scalar(size);
      rms_norm(x.data(), weight.data(), n, 1e-5f, simd.data());
      rms_norm_scalar(x.data(), weight.data(), n, 1e-5f, scalar.data());
      expect_close(simd, scalar, 2e-6f, "rms_norm " + what);

      // Logits-like spread, so that exp covers a wide range.
      simd = random_values(size, 3, 8.0f);
      scalar = simd;
      softmax(simd.data(), n);
      softmax_scalar(scalar.data(), n);
      expect_close(simd, scalar, 2e-6f, "softmax " + what);

      // Gates up to ~+-150 reach the capped exp and both saturated ends.
      simd = random_values(size, 4, 40.0f);
      scalar = simd;
      silu_mul(simd.data(), weight.data(), n);
      silu_mul_scalar(scalar.data(), weight.data(), n);
      expect_close(simd, scalar, 2e-6f, "silu_mul " + what);

      simd = x;
      scalar = x;
      add_in_place(simd.data(), weight.data(), n);
      add_in_place_scalar(scalar.data(), weight.data(), n);
      EXPECT_EQ(simd, scalar) << "add_in_place " << what;
    }
  }
}

TEST(OpsSimd, HandComputedValues) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    // mean(3^2, 4^2) = 12.5.
    const float x[2] = {3.0f, 4.0f};
    const float weight[2] = {1.0f, 2.0f};
    float out[2];
    rms_norm(x, weight, 2, 0.0f, out);
    EXPECT_NEAR(out[0], 3.0 / std::sqrt(12.5), 1e-6) << target.name;
    EXPECT_NEAR(out[1], 8.0 / std::sqrt(12.5), 1e-6) << target.name;

    // e^0 : e^ln3 = 1 : 3.
    float p[2] = {0.5f, 0.5f + std::log(3.0f)};
    softmax(p, 2);
    EXPECT_NEAR(p[0], 0.25, 1e-6) << target.name;
    EXPECT_NEAR(p[1], 0.75, 1e-6) << target.name;
    // Large values must not overflow; a far smaller one gets exactly 0.
    float big[3] = {1000.0f, 1000.0f, -1e30f};
    softmax(big, 3);
    EXPECT_NEAR(big[0], 0.5, 1e-6) << target.name;
    EXPECT_NEAR(big[1], 0.5, 1e-6) << target.name;
    EXPECT_EQ(big[2], 0.0f) << target.name;

    // silu(0) = 0, silu(2) = 2 / (1 + e^-2), silu(-200) ~ 0, silu(200) = 200.
    float gate[4] = {0.0f, 2.0f, -200.0f, 200.0f};
    const float up[4] = {5.0f, 3.0f, 1.0f, 0.5f};
    silu_mul(gate, up, 4);
    EXPECT_EQ(gate[0], 0.0f) << target.name;
    EXPECT_NEAR(gate[1], 3.0 * 2.0 / (1.0 + std::exp(-2.0)), 1e-5) << target.name;
    EXPECT_NEAR(gate[2], 0.0f, 1e-30) << target.name;
    EXPECT_NEAR(gate[3], 100.0f, 1e-5) << target.name;
  }
}

TEST(RopeAngles, MatchesTheFormulaAndTheOneCallRope) {
  const int64_t head_dim = 10;
  const RopeAngles angles(head_dim, 10000.0f, 0.25f);
  std::vector<float> cos(5), sin(5);
  angles.cos_sin(37, cos.data(), sin.data());
  for (int i = 0; i < 5; ++i) {
    const double theta = 37 * 0.25 * std::pow(10000.0, -2.0 * i / 10.0);
    EXPECT_NEAR(cos[static_cast<size_t>(i)], std::cos(theta), 1e-7) << i;
    EXPECT_NEAR(sin[static_cast<size_t>(i)], std::sin(theta), 1e-7) << i;
  }

  // Two heads; the table path must equal rope() bit for bit in both styles.
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    std::vector<float> a = random_values(2 * head_dim, 5, 1.0f);
    std::vector<float> b = a;
    rope(a.data(), 2, head_dim, 37, 10000.0f, 0.25f, style);
    rope_rotate(b.data(), 2, head_dim, cos.data(), sin.data(), style);
    EXPECT_EQ(a, b);
  }

  // A unit vector in the first pair turns by theta_0 = position * scale.
  std::vector<float> x(head_dim, 0.0f);
  x[0] = 1.0f;
  rope_rotate(x.data(), 1, head_dim, cos.data(), sin.data(), RopeStyle::kNormal);
  EXPECT_NEAR(x[0], std::cos(37 * 0.25), 1e-6);
  EXPECT_NEAR(x[1], std::sin(37 * 0.25), 1e-6);
}

}  // namespace
}  // namespace specula

#include "learn/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/dispatch.h"

namespace specula {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Case {
  Transpose ta, tb;
  int64_t m, n, k;
  bool accumulate;
};

// Runs gemm and gemm_reference on padded operands (leading dimensions
// larger than the logical widths) and compares within float rounding.
void check_case(const Case& c, ThreadPool* pool) {
  const GemmShape shape{c.ta, c.tb, c.m, c.n, c.k};
  const int64_t a_rows = c.ta == Transpose::kNo ? c.m : c.k;
  const int64_t a_cols = c.ta == Transpose::kNo ? c.k : c.m;
  const int64_t b_rows = c.tb == Transpose::kNo ? c.k : c.n;
  const int64_t b_cols = c.tb == Transpose::kNo ? c.n : c.k;
  const int64_t lda = a_cols + 3;
  const int64_t ldb = b_cols + 5;
  const int64_t ldc = c.n + 2;
  const std::vector<float> a = random_floats(static_cast<size_t>(a_rows * lda), 1);
  const std::vector<float> b = random_floats(static_cast<size_t>(b_rows * ldb), 2);
  std::vector<float> got = random_floats(static_cast<size_t>(c.m * ldc), 3);
  std::vector<float> want = got;
  gemm(shape, a.data(), lda, b.data(), ldb, got.data(), ldc, c.accumulate, pool);
  gemm_reference(shape, a.data(), lda, b.data(), ldb, want.data(), ldc, c.accumulate);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j >= c.n) {
        ASSERT_EQ(got[at], want[at]) << "wrote outside C at " << i << "," << j;
        continue;
      }
      // |sum of k products of values in [-1, 1]| rounding: ~k * 2^-24 each.
      const double tolerance = 1e-6 * (static_cast<double>(c.k) + 4.0);
      ASSERT_NEAR(got[at], want[at], tolerance)
          << "m=" << c.m << " n=" << c.n << " k=" << c.k << " ta=" << int(c.ta)
          << " tb=" << int(c.tb) << " at " << i << "," << j;
    }
  }
}

const Case kCases[] = {
    {Transpose::kNo, Transpose::kYes, 1, 1, 1, false},
    {Transpose::kNo, Transpose::kYes, 7, 33, 19, false},
    {Transpose::kNo, Transpose::kNo, 13, 45, 300, true},
    {Transpose::kYes, Transpose::kNo, 101, 17, 529, true},
    {Transpose::kYes, Transpose::kYes, 9, 270, 31, false},
    {Transpose::kNo, Transpose::kYes, 197, 300, 257, false},
    {Transpose::kNo, Transpose::kNo, 5, 3, 0, false},
    {Transpose::kNo, Transpose::kNo, 5, 3, 0, true},
};

TEST(Gemm, MatchesReferenceOnEveryTarget) {
  for (const SimdTarget& target : simd_targets()) {
    SCOPED_TRACE(target.name);
    ScopedSimdTarget scoped(target.bit);
    for (const Case& c : kCases) check_case(c, nullptr);
  }
}

TEST(Gemm, MatchesReferenceWithThreads) {
  ThreadPool pool(3);
  for (const Case& c : kCases) check_case(c, &pool);
}

TEST(Gemm, BitIdenticalForAnyThreadCount) {
  const GemmShape shape{Transpose::kYes, Transpose::kNo, 150, 300, 600};
  const std::vector<float> a = random_floats(600 * 150, 4);
  const std::vector<float> b = random_floats(600 * 300, 5);
  std::vector<float> one(150 * 300, 0.5f);
  std::vector<float> three = one;
  gemm(shape, a.data(), 150, b.data(), 300, one.data(), 300, true, nullptr);
  ThreadPool pool(3);
  gemm(shape, a.data(), 150, b.data(), 300, three.data(), 300, true, &pool);
  EXPECT_EQ(one, three);
}

TEST(Gemm, DoubleVersionIsExact) {
  // 2x3 * 3x2 with small integers: exact in double.
  const double a[] = {1, 2, 3, 4, 5, 6};
  const double b[] = {7, 8, 9, 10, 11, 12};
  double c[] = {1, 1, 1, 1};
  gemm(GemmShape{Transpose::kNo, Transpose::kNo, 2, 2, 3}, a, 3, b, 2, c, 2, true, nullptr);
  EXPECT_EQ(c[0], 1 + 58);
  EXPECT_EQ(c[1], 1 + 64);
  EXPECT_EQ(c[2], 1 + 139);
  EXPECT_EQ(c[3], 1 + 154);
  // A^T B^T: A stored 3x2, B stored 2x3.
  gemm(GemmShape{Transpose::kYes, Transpose::kYes, 2, 2, 3}, a, 2, b, 3, c, 2, false, nullptr);
  // A^T = [[1,3,5],[2,4,6]], B^T = [[7,10],[8,11],[9,12]].
  EXPECT_EQ(c[0], 1 * 7 + 3 * 8 + 5 * 9);
  EXPECT_EQ(c[1], 1 * 10 + 3 * 11 + 5 * 12);
  EXPECT_EQ(c[2], 2 * 7 + 4 * 8 + 6 * 9);
  EXPECT_EQ(c[3], 2 * 10 + 4 * 11 + 6 * 12);
}

}  // namespace
}  // namespace specula

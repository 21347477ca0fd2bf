// Batch invariance of matmul across every block size of the multi-row
// kernels: a row's outputs are bit-identical whether it is computed alone
// (m = 1) or inside a batch of m = 1..17, 20, 24, 33 or 64 rows, at any
// position of that batch, with any thread count, on every SIMD target. Exact
// speculative decoding compares a verification pass over g + 1 rows with
// single-row passes, so any difference is a wrong token.

#include <gtest/gtest.h>

#include <vector>

#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"

namespace specula {
namespace {

const int64_t kBatchSizes[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                               12, 13, 14, 15, 16, 17, 20, 24, 33, 64};

struct Case {
  DType type;
  int64_t n_in, n_out;
  std::vector<uint8_t> weights;
  std::vector<float> x;       // kRows x n_in
  std::vector<float> single;  // kRows x n_out, each row computed alone
  WeightMatrix matrix() const { return make_weight_matrix(weights.data(), type, n_in, n_out); }
};

constexpr int64_t kRows = 64;

// n_out = 53: several row blocks of the kernels, and a remainder that is
// not a multiple of any row tile.
Case make_case(DType type, int64_t n_in, uint32_t seed) {
  Case c{type, n_in, 53, {}, {}, {}};
  c.weights = test::quantize_matrix(
      type, test::random_values(static_cast<size_t>(n_in * c.n_out), seed), n_in, c.n_out);
  c.x = test::random_values(static_cast<size_t>(kRows * n_in), seed + 1);
  c.single.resize(static_cast<size_t>(kRows * c.n_out));
  for (int64_t i = 0; i < kRows; ++i) {
    matmul(c.matrix(), c.x.data() + i * n_in, 1, c.single.data() + i * c.n_out, nullptr);
  }
  return c;
}

// Every batch size, at the first, last and a middle position of the
// kRows rows, alternately on one thread and on `pool`.
void expect_batch_invariant(const Case& c, ThreadPool& pool, const std::string& what) {
  int call = 0;
  for (int64_t m : kBatchSizes) {
    for (int64_t start : {int64_t{0}, (kRows - m) / 2, kRows - m}) {
      std::vector<float> y(static_cast<size_t>(m * c.n_out));
      matmul(c.matrix(), c.x.data() + start * c.n_in, m, y.data(), call++ % 2 ? &pool : nullptr);
      for (int64_t at = 0; at < m * c.n_out; ++at) {
        const int64_t row = start + at / c.n_out;
        ASSERT_EQ(y[static_cast<size_t>(at)],
                  c.single[static_cast<size_t>(row * c.n_out + at % c.n_out)])
            << what << " " << dtype_name(c.type) << " n_in " << c.n_in << " m " << m << " start "
            << start << " row " << row << " out " << at % c.n_out;
      }
    }
  }
}

TEST(MatmulInvariance, EveryBatchSizeAndPositionOnEveryTarget) {
  ThreadPool pool(2);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : test::all_matmul_types()) {
      expect_batch_invariant(make_case(type, test::long_n_in(type), 4243), pool, target.name);
    }
  }
}

// Rows longer than kHalfActivationMinIn: F16 activations for F16 / BF16,
// for both decode row orders.
TEST(MatmulInvariance, LongFloatRowsEveryBatchSize) {
  ThreadPool pool(3);
  const int saved = simd_float_decode_rows();
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (int decode_rows : {1, 4}) {
      simd_set_float_decode_rows(decode_rows);
      for (DType type : {DType::kF16, DType::kBF16}) {
        expect_batch_invariant(make_case(type, 4096 + 37, 99), pool,
                               target.name + " decode rows " + std::to_string(decode_rows));
      }
    }
  }
  simd_set_float_decode_rows(saved);
}

}  // namespace
}  // namespace specula

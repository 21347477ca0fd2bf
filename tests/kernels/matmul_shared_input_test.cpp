// matmul_shared_input: several matrices over the same activations in one
// pass of the pool must give exactly what matmul gives for each.
#include <gtest/gtest.h>

#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/weight_packing.h"

namespace specula {
namespace {

// One matrix of the set: its bytes, the packed copy and the view of both.
struct Matrix {
  std::vector<uint8_t> bytes;
  AlignedBuffer<uint8_t> packed;
  WeightMatrix w;
};

std::vector<Matrix> make_set(const std::vector<DType>& types, const std::vector<int64_t>& n_outs,
                             int64_t n_in, uint32_t seed) {
  std::vector<Matrix> set(types.size());
  for (size_t j = 0; j < types.size(); ++j) {
    set[j].bytes = test::quantize_matrix(
        types[j], test::random_values(static_cast<size_t>(n_in * n_outs[j]), seed + 7 * j), n_in,
        n_outs[j]);
    set[j].w = pack_weight_matrix(
        make_weight_matrix(set[j].bytes.data(), types[j], n_in, n_outs[j]), &set[j].packed);
  }
  return set;
}

// Runs the set both ways and expects bit-identical outputs.
void expect_same_as_matmul(const std::vector<DType>& types, int64_t n_in, int64_t m,
                           ThreadPool* pool) {
  const std::vector<int64_t> n_outs = {40, 13, 64, 5};
  const std::vector<Matrix> set = make_set(types, n_outs, n_in, 11);
  const std::vector<float> x = test::random_values(static_cast<size_t>(m * n_in), 5);
  std::vector<const WeightMatrix*> ws;
  std::vector<std::vector<float>> expected(types.size()), got(types.size());
  std::vector<float*> ys;
  for (size_t j = 0; j < types.size(); ++j) {
    ws.push_back(&set[j].w);
    expected[j].resize(static_cast<size_t>(m * n_outs[j]));
    got[j].assign(expected[j].size(), -1.0f);
    matmul(set[j].w, x.data(), m, expected[j].data(), pool);
    ys.push_back(got[j].data());
  }
  matmul_shared_input(ws, x.data(), m, ys, pool);
  for (size_t j = 0; j < types.size(); ++j) {
    EXPECT_EQ(got[j], expected[j])
        << "matrix " << j << " (" << dtype_name(types[j]) << "), m " << m << ", n_in " << n_in;
  }
}

TEST(MatmulSharedInput, SameOutputsAsOneMatmulPerMatrix) {
  const std::vector<std::vector<DType>> sets = {
      {DType::kQ4_K, DType::kQ4_K, DType::kQ6_K},  // a Q4_K_M layer's Q, K, V
      {DType::kQ4_0, DType::kQ8_0},
      {DType::kF16, DType::kF16, DType::kF16},
      {DType::kBF16, DType::kBF16},
      {DType::kF32, DType::kF32, DType::kF32, DType::kF32},
      {DType::kQ8_0, DType::kF16},  // activations differ: one after another
  };
  ThreadPool pool(3);
  for (const auto& types : sets) {
    for (int64_t m : {1, 2, 5, 9}) {
      expect_same_as_matmul(types, 512, m, &pool);
      expect_same_as_matmul(types, 512, m, nullptr);
    }
  }
  // Rows with a partial integer group and a float tail.
  expect_same_as_matmul({DType::kQ4_0, DType::kQ8_0}, test::long_n_in(DType::kQ4_0), 9, &pool);
  expect_same_as_matmul({DType::kF16, DType::kF16}, test::long_n_in(DType::kF16), 9, &pool);
}

TEST(MatmulSharedInput, RejectsMismatchedInputsAndCounts) {
  const std::vector<Matrix> a = make_set({DType::kQ8_0}, {8}, 64, 1);
  const std::vector<Matrix> b = make_set({DType::kQ8_0}, {8}, 96, 2);
  std::vector<float> x(96, 0.5f), y0(8), y1(8);
  const WeightMatrix* both[] = {&a[0].w, &b[0].w};
  float* outs[] = {y0.data(), y1.data()};
  EXPECT_THROW(matmul_shared_input(both, x.data(), 1, outs, nullptr), Error);
  const WeightMatrix* one[] = {&a[0].w};
  EXPECT_THROW(matmul_shared_input(one, x.data(), 1, outs, nullptr), Error);
  const WeightMatrix* five[] = {&a[0].w, &a[0].w, &a[0].w, &a[0].w, &a[0].w};
  float* five_outs[] = {y0.data(), y0.data(), y0.data(), y0.data(), y0.data()};
  EXPECT_THROW(matmul_shared_input(five, x.data(), 1, five_outs, nullptr), Error);
}

}  // namespace
}  // namespace specula

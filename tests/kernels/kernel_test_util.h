// Random test data for the kernel tests: seeded, reproducible.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/quantize.h"

namespace specula::test {

// Values ~ N(0, 1) with an occasional outlier, as real weights and
// activations have.
inline std::vector<float> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * (uniform(rng) < 0.01f ? 8.0f : 1.0f);
  return v;
}

// n_out rows of n_in values quantized to `type`, row after row.
inline std::vector<uint8_t> quantize_matrix(DType type, const std::vector<float>& values,
                                            int64_t n_in, int64_t n_out) {
  const uint64_t row_bytes = *dtype_row_bytes(type, static_cast<uint64_t>(n_in));
  std::vector<uint8_t> out(row_bytes * static_cast<uint64_t>(n_out));
  for (int64_t r = 0; r < n_out; ++r)
    quantize_row(type, values.data() + r * n_in, n_in, out.data() + r * row_bytes);
  return out;
}

inline const std::vector<DType>& all_matmul_types() {
  static const std::vector<DType> types = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};
  return types;
}

// Rows long enough for several k chunks of the multi-row kernels (n_in >
// 512, not a multiple of 16), with a tail that is not a whole vector (float
// types) or a whole 16-block group (quantized types): several whole
// integer groups plus a partial one.
inline int64_t long_n_in(DType type) {
  switch (type) {
    case DType::kQ8_0:
    case DType::kQ4_0:
      return 32 * 71;
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return 256 * 7;
    default:
      return 1100;
  }
}

}  // namespace specula::test

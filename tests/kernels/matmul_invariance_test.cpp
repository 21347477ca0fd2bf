// Batch invariance of matmul across every block size of the multi-row
// kernels: a row's outputs are bit-identical whether it is computed alone
// (m = 1) or inside a batch of m = 1..17, 20, 24, 33 or 64 rows, at any
// position of that batch, with any thread count, on every SIMD target. Exact
// speculative decoding compares a verification pass over g + 1 rows with
// single-row passes, so any difference is a wrong token.

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/weight_packing.h"

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
  // The rows repacked for this CPU's integer kernels (weight_packing.h), or
  // null: the kernels then read the GGUF rows.
  std::shared_ptr<AlignedBuffer<uint8_t>> packed;
  WeightMatrix matrix() const {
    WeightMatrix w = make_weight_matrix(weights.data(), type, n_in, n_out);
    if (packed != nullptr) w.packed = packed->data();
    return w;
  }
};

constexpr int64_t kRows = 64;

// n_out = 53: several row blocks of the kernels, and a remainder that is
// not a multiple of any row tile.
// pack: use the packed rows where the type has them. scale multiplies
// the weights and the activations.
Case make_case(DType type, int64_t n_in, uint32_t seed, bool pack = false, float scale = 1.0f) {
  Case c{type, n_in, 53, {}, {}, {}, nullptr};
  std::vector<float> values = test::random_values(static_cast<size_t>(n_in * c.n_out), seed);
  for (float& v : values) v *= scale;
  c.weights = test::quantize_matrix(type, values, n_in, c.n_out);
  if (pack && packable_type(type)) {
    c.packed = std::make_shared<AlignedBuffer<uint8_t>>();
    if (pack_weight_matrix(c.matrix(), c.packed.get()).packed == nullptr) c.packed = nullptr;
  }
  c.x = test::random_values(static_cast<size_t>(kRows * n_in), seed + 1);
  for (float& v : c.x) v *= scale;
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

// Integer rows of whole 512-value groups only (the shapes of real models:
// every decode path's fast loop, without the partial last group of the
// test above), packed and not.
TEST(MatmulInvariance, WholeGroupIntegerRowsPackedAndNot) {
  ThreadPool pool(3);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
      for (const bool pack : {false, true}) {
        expect_batch_invariant(make_case(type, 1024, 77, pack), pool,
                               target.name + (pack ? " packed" : " GGUF rows"));
      }
    }
  }
}

// The 4-bit tiles' high nibbles through GFNI (simd_gfni) and through a
// shift and a mask: both against m = 1, which uses neither.
TEST(MatmulInvariance, GfniHighNibblesEqualShiftAndMask) {
  ThreadPool pool(2);
  const bool saved = simd_gfni();
  for (const bool gfni : {true, false}) {
    simd_set_gfni(gfni);
    if (gfni && !simd_gfni()) continue;  // this CPU has no GFNI
    for (DType type : {DType::kQ4_0, DType::kQ4_K}) {
      expect_batch_invariant(make_case(type, 2048, 5, true), pool,
                             gfni ? "GFNI" : "shift and mask");
    }
  }
  simd_set_gfni(saved);
}

// Every integer type in the tiles at every m, decode included
// (simd_int_tiles_min_bytes = 0), against m = 1 on the fused-row paths
// (these matrices are below the default threshold, so `single` took them).
TEST(MatmulInvariance, IntegerTilesAtEveryBatchSizeEqualFusedRows) {
  ThreadPool pool(2);
  const uint64_t saved = simd_int_tiles_min_bytes();
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
      for (const bool pack : {false, true}) {
        const Case c = make_case(type, 2048 + 256, 61, pack);
        ASSERT_LT(c.weights.size(), saved);
        simd_set_int_tiles_min_bytes(0);
        expect_batch_invariant(c, pool, target.name + " tiles at every m");
        simd_set_int_tiles_min_bytes(saved);
      }
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

// Decode in the blocked tiles (large matrices with four rows side by
// side, simd_float_decode_blocked_min_bytes; 0 sends these small ones
// there) against the plain four-row tiles, which computed `single`.
TEST(MatmulInvariance, FloatDecodeInBlockedTilesEqualsPlainRows) {
  ThreadPool pool(2);
  const int saved_rows = simd_float_decode_rows();
  const uint64_t saved_bytes = simd_float_decode_blocked_min_bytes();
  simd_set_float_decode_rows(4);
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (const int64_t n_in : {test::long_n_in(type), int64_t{4096 + 37}}) {
        const Case c = make_case(type, n_in, 57);
        simd_set_float_decode_blocked_min_bytes(0);
        expect_batch_invariant(c, pool, target.name + " blocked decode");
        simd_set_float_decode_blocked_min_bytes(saved_bytes);
      }
    }
  }
  simd_set_float_decode_rows(saved_rows);
}

// BF16 dot products over m >= 2 rows in F32 FMAs (simd_bf16_dot_fma)
// against vdpbf16ps at m = 1, and with the setting off: on values of
// ordinary size and on values of 2^-64, whose products (~2^-128) are as
// often denormal as not, which vdpbf16ps reads as zero and flushes.
TEST(MatmulInvariance, Bf16DotInFmasEqualsVdpbf16ps) {
  if (!simd_bf16_dot_fma_exact()) {
    GTEST_SKIP() << "no AVX512_BF16 here, or its vdpbf16ps is not two FMAs in order";
  }
  const bool saved = simd_bf16_dot_fma();
  ThreadPool pool(2);
  for (const bool fma : {true, false}) {
    simd_set_bf16_dot_fma(fma);
    ASSERT_EQ(simd_bf16_dot_fma(), fma);
    for (const float scale : {1.0f, 0x1p-64f}) {
      expect_batch_invariant(
          make_case(DType::kBF16, 1024 + 37, 31, false, scale), pool,
          std::string(fma ? "FMAs" : "vdpbf16ps") + (scale < 1.0f ? " tiny values" : ""));
    }
  }
  simd_set_bf16_dot_fma(true);
  simd_set_bf16_dot(false);  // F32 activations: no dot products to stand in for
  EXPECT_FALSE(simd_bf16_dot_fma());
  simd_set_bf16_dot(true);
  simd_set_bf16_dot_fma(saved);
}

}  // namespace
}  // namespace specula

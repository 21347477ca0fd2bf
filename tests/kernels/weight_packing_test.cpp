// Packed integer weight rows (weight_packing.h): the layout as documented,
// and matmul results bit-identical to the GGUF rows' on every target.
#include "kernels/weight_packing.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"

namespace specula {
namespace {

using test::quantize_matrix;
using test::random_values;

struct PackedCase {
  DType type;
  int64_t n_in;
};

std::vector<PackedCase> packed_cases() {
  std::vector<PackedCase> cases;
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    cases.push_back({type, 1024});                   // whole groups only
    cases.push_back({type, test::long_n_in(type)});  // whole groups and a partial one
  }
  cases.push_back({DType::kQ8_0, 384});  // a partial group only
  cases.push_back({DType::kQ4_K, 256});
  return cases;
}

bool reads_packed_rows(int64_t target_bit) {
  return target_bit == HWY_AVX3 || target_bit == HWY_AVX3_DL;
}

TEST(WeightPacking, Q8_0LayoutAsDocumented) {
  constexpr int64_t n_in = 1024;  // two whole groups
  const std::vector<uint8_t> row = quantize_matrix(DType::kQ8_0, random_values(n_in, 3), n_in, 1);
  std::vector<uint8_t> packed(row.size());
  pack_row(DType::kQ8_0, n_in, row.data(), packed.data());
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row.data());
  const uint8_t* group1 = packed.data() + 544;
  // Scale of block 16 + 5 is the sixth f16 of the second group.
  EXPECT_EQ(std::memcmp(group1 + 2 * 5, &blocks[16 + 5].d, 2), 0);
  // Value 13 of block 16 + 7: vector 3, lane 7, byte 1, stored as q + 128.
  EXPECT_EQ(group1[32 + 64 * 3 + 4 * 7 + 1],
            static_cast<uint8_t>(static_cast<int>(blocks[16 + 7].qs[13]) + 128));
}

TEST(WeightPacking, Q4_0LayoutAsDocumented) {
  constexpr int64_t n_in = 512;
  const std::vector<uint8_t> row = quantize_matrix(DType::kQ4_0, random_values(n_in, 4), n_in, 1);
  std::vector<uint8_t> packed(row.size());
  pack_row(DType::kQ4_0, n_in, row.data(), packed.data());
  const auto* blocks = reinterpret_cast<const BlockQ4_0*>(row.data());
  EXPECT_EQ(std::memcmp(packed.data() + 2 * 15, &blocks[15].d, 2), 0);
  // qs byte 9 of block 2 (values 9 and 25): vector 2, lane 2, byte 1.
  EXPECT_EQ(packed[32 + 64 * 2 + 4 * 2 + 1], blocks[2].qs[9]);
}

// A Q4_0 / Q8_0 partial group: the whole group's layout with as many
// lanes as blocks (weight_packing.h).
TEST(WeightPacking, PartialSimpleGroupLayoutAsDocumented) {
  const int64_t n_in = test::long_n_in(DType::kQ4_0);  // 4 whole groups + 7 blocks
  const std::vector<uint8_t> row = quantize_matrix(DType::kQ4_0, random_values(n_in, 5), n_in, 1);
  std::vector<uint8_t> packed(row.size());
  pack_row(DType::kQ4_0, n_in, row.data(), packed.data());
  const size_t whole = 4 * 288;
  ASSERT_EQ(row.size(), whole + 7 * 18);
  const auto* blocks = reinterpret_cast<const BlockQ4_0*>(row.data() + whole);
  EXPECT_EQ(std::memcmp(packed.data() + whole + 2 * 6, &blocks[6].d, 2), 0);
  // qs byte 9 of block 2: vector 2 (28 bytes each after 14 of scales), lane 2, byte 1.
  EXPECT_EQ(packed[whole + 14 + 28 * 2 + 4 * 2 + 1], blocks[2].qs[9]);

  const int64_t n_q8 = 384;  // a partial group only: 12 blocks
  const std::vector<uint8_t> row8 = quantize_matrix(DType::kQ8_0, random_values(n_q8, 8), n_q8, 1);
  std::vector<uint8_t> packed8(row8.size());
  pack_row(DType::kQ8_0, n_q8, row8.data(), packed8.data());
  const auto* blocks8 = reinterpret_cast<const BlockQ8_0*>(row8.data());
  EXPECT_EQ(std::memcmp(packed8.data() + 2 * 11, &blocks8[11].d, 2), 0);
  // value 29 of block 11 (vector 7, byte 1) as q + 128.
  EXPECT_EQ(packed8[24 + 48 * 7 + 4 * 11 + 1], static_cast<uint8_t>(blocks8[11].qs[29] ^ 0x80));
}

// A K-quant row's partial group, one super-block: the whole group's
// layout for its 8 sub-blocks, vectors of 32 bytes (weight_packing.h).
// The expected bytes are read from the GGUF block as the format defines it.
TEST(WeightPacking, PartialKQuantGroupLayoutAsDocumented) {
  const int64_t n_in = 512 + 256;  // a whole group and one super-block
  const std::vector<uint8_t> row = quantize_matrix(DType::kQ4_K, random_values(n_in, 7), n_in, 1);
  std::vector<uint8_t> packed(row.size());
  pack_row(DType::kQ4_K, n_in, row.data(), packed.data());
  const size_t whole = 288;
  ASSERT_EQ(row.size(), whole + 144);
  const auto* block = reinterpret_cast<const BlockQ4_K*>(row.data() + whole);
  const uint8_t* half = packed.data() + whole;
  EXPECT_EQ(std::memcmp(half, &block->d, 2), 0);
  EXPECT_EQ(std::memcmp(half + 2, &block->dmin, 2), 0);
  // Sub-block 6's 6-bit scale and min (GGUF: low 4 bits in scales[10],
  // high 2 bits in the top of scales[2] and scales[6]).
  const int scale6 = (block->scales[10] & 15) | (block->scales[2] >> 6) << 4;
  const int min6 = (block->scales[10] >> 4) | (block->scales[6] >> 6) << 4;
  EXPECT_EQ(half[4 + 6], (scale6 & 15) | (min6 & 15) << 4);
  uint16_t sc_high = 0, mn_high = 0;
  std::memcpy(&sc_high, half + 12, 2);
  std::memcpy(&mn_high, half + 14, 2);
  EXPECT_EQ((sc_high >> 12) & 3, scale6 >> 4);
  EXPECT_EQ((mn_high >> 12) & 3, min6 >> 4);
  // Sub-block 5 (odd: high nibbles of qs[64..95]), values 13 and 29:
  // vector 3, lane 5, byte 1, low and high nibble.
  const uint8_t byte = half[16 + 32 * 3 + 4 * 5 + 1];
  EXPECT_EQ(byte & 15, block->qs[64 + 13] >> 4);
  EXPECT_EQ(byte >> 4, block->qs[64 + 29] >> 4);

  const std::vector<uint8_t> row6 = quantize_matrix(DType::kQ6_K, random_values(n_in, 9), n_in, 1);
  std::vector<uint8_t> packed6(row6.size());
  pack_row(DType::kQ6_K, n_in, row6.data(), packed6.data());
  ASSERT_EQ(row6.size(), 420u + 210u);
  const auto* block6 = reinterpret_cast<const BlockQ6_K*>(row6.data() + 420);
  EXPECT_EQ(std::memcmp(packed6.data() + 420, block6->scales, 16), 0);
  EXPECT_EQ(std::memcmp(packed6.data() + 420 + 16, &block6->d, 2), 0);
}

TEST(WeightPacking, UnpackableTypesAreLeftAlone) {
  const std::vector<uint8_t> rows = quantize_matrix(DType::kF16, random_values(256 * 2, 6), 256, 2);
  const WeightMatrix w = make_weight_matrix(rows.data(), DType::kF16, 256, 2);
  AlignedBuffer<uint8_t> storage;
  EXPECT_EQ(pack_weight_matrix(w, &storage).packed, nullptr);
  EXPECT_EQ(storage.size(), 0u);
  EXPECT_FALSE(packable_type(DType::kF16));
  EXPECT_FALSE(packable_type(DType::kBF16));
  EXPECT_FALSE(packable_type(DType::kF32));
  EXPECT_TRUE(packable_type(DType::kQ5_K));
  EXPECT_TRUE(packable_type(DType::kQ6_K));
}

// Every batch size the kernels treat differently (fused rows, tiles of 4,
// decoded-row tiles), an n_out that is not a multiple of the row tile.
TEST(WeightPacking, MatmulBitIdenticalOnEveryTarget) {
  constexpr int64_t n_out = 9;
  ThreadPool pool(2);
  for (const PackedCase& c : packed_cases()) {
    const std::vector<uint8_t> rows = quantize_matrix(
        c.type, random_values(static_cast<size_t>(c.n_in * n_out), 7), c.n_in, n_out);
    const WeightMatrix w = make_weight_matrix(rows.data(), c.type, c.n_in, n_out);
    AlignedBuffer<uint8_t> storage;
    const WeightMatrix packed = pack_weight_matrix(w, &storage);
    ASSERT_NE(packed.packed, nullptr);
    for (const SimdTarget& target : simd_targets()) {
      ScopedSimdTarget scoped(target.bit);
      for (int64_t m : {1, 2, 3, 4, 5, 8, 9, 16}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * c.n_in), 8);
        std::vector<float> y_gguf(static_cast<size_t>(m * n_out));
        std::vector<float> y_packed(y_gguf.size());
        matmul(w, x.data(), m, y_gguf.data(), &pool);
        matmul(packed, x.data(), m, y_packed.data(), &pool);
        ASSERT_EQ(std::memcmp(y_gguf.data(), y_packed.data(), y_gguf.size() * sizeof(float)), 0)
            << dtype_name(c.type) << " n_in " << c.n_in << " m " << m << " on " << target.name;
      }
    }
  }
}

// The AVX-512 kernels really read the packed rows: give a matrix the
// packed rows of other weights, and those weights' results come out there
// (and the GGUF rows' everywhere else).
TEST(WeightPacking, AvxFiveTwelveKernelsReadThePackedRows) {
  constexpr int64_t n_in = 1024, n_out = 8;
  ThreadPool pool(2);
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const auto n = static_cast<size_t>(n_in * n_out);
    const std::vector<uint8_t> a = quantize_matrix(type, random_values(n, 11), n_in, n_out);
    const std::vector<uint8_t> b = quantize_matrix(type, random_values(n, 12), n_in, n_out);
    const WeightMatrix wa = make_weight_matrix(a.data(), type, n_in, n_out);
    const WeightMatrix wb = make_weight_matrix(b.data(), type, n_in, n_out);
    AlignedBuffer<uint8_t> storage;
    WeightMatrix mixed = wa;
    mixed.packed = pack_weight_matrix(wb, &storage).packed;
    for (const SimdTarget& target : simd_targets()) {
      ScopedSimdTarget scoped(target.bit);
      for (int64_t m : {1, 8}) {
        const std::vector<float> x = random_values(static_cast<size_t>(m * n_in), 13);
        std::vector<float> y(static_cast<size_t>(m * n_out)), expected(y.size());
        matmul(mixed, x.data(), m, y.data(), &pool);
        matmul(reads_packed_rows(target.bit) ? wb : wa, x.data(), m, expected.data(), &pool);
        ASSERT_EQ(std::memcmp(y.data(), expected.data(), y.size() * sizeof(float)), 0)
            << dtype_name(type) << " m " << m << " on " << target.name;
      }
    }
  }
}

}  // namespace
}  // namespace specula

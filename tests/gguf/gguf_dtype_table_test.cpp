// The tensor type table (src/core/dtype.cpp) decides how many bytes the
// reader expects for every tensor, so it must match ggml exactly. Expected
// values are derived here from the sizes of ggml's block_* structs (fields
// listed in each row), not taken from the code under test.
#include <gtest/gtest.h>

#include "core/dtype.h"

namespace specula {
namespace {

struct ExpectedType {
  uint32_t id;
  const char* name;
  uint32_t block_size;
  uint32_t block_bytes;
};

constexpr uint32_t kHalf = 2;  // ggml_half
constexpr uint32_t kQK_K = 256;

// clang-format off
const ExpectedType kExpected[] = {
    {0, "F32", 1, 4},
    {1, "F16", 1, 2},
    {2, "Q4_0", 32, kHalf + 32 / 2},                          // d, qs
    {3, "Q4_1", 32, 2 * kHalf + 32 / 2},                      // d, m, qs
    {6, "Q5_0", 32, kHalf + 4 + 32 / 2},                      // d, qh, qs
    {7, "Q5_1", 32, 2 * kHalf + 4 + 32 / 2},                  // d, m, qh, qs
    {8, "Q8_0", 32, kHalf + 32},                              // d, qs
    {9, "Q8_1", 32, 2 * kHalf + 32},                          // d, s, qs
    {10, "Q2_K", kQK_K, kQK_K / 16 + kQK_K / 4 + 2 * kHalf},  // scales, qs, d, dmin
    {11, "Q3_K", kQK_K, kQK_K / 8 + kQK_K / 4 + 12 + kHalf},  // hmask, qs, scales, d
    {12, "Q4_K", kQK_K, 2 * kHalf + 12 + kQK_K / 2},          // d, dmin, scales, qs
    {13, "Q5_K", kQK_K, 2 * kHalf + 12 + kQK_K / 8 + kQK_K / 2},  // + qh
    {14, "Q6_K", kQK_K, kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + kHalf},  // ql, qh, scales, d
    {15, "Q8_K", kQK_K, 4 + kQK_K + 2 * kQK_K / 16},          // float d, qs, int16 bsums
    {16, "IQ2_XXS", kQK_K, kHalf + 2 * kQK_K / 8},            // d, uint16 qs
    {17, "IQ2_XS", kQK_K, kHalf + 2 * kQK_K / 8 + kQK_K / 32},  // + scales
    {18, "IQ3_XXS", kQK_K, kHalf + 3 * kQK_K / 8},
    {19, "IQ1_S", kQK_K, kHalf + kQK_K / 8 + 2 * kQK_K / 32},  // d, qs, uint16 qh
    {20, "IQ4_NL", 32, kHalf + 32 / 2},
    {21, "IQ3_S", kQK_K, kHalf + kQK_K / 4 + kQK_K / 32 + kQK_K / 8 + kQK_K / 64},
    {22, "IQ2_S", kQK_K, kHalf + kQK_K / 4 + kQK_K / 32 + kQK_K / 32},
    {23, "IQ4_XS", kQK_K, kHalf + 2 + kQK_K / 64 + kQK_K / 2},  // d, scales_h, scales_l, qs
    {24, "I8", 1, 1},
    {25, "I16", 1, 2},
    {26, "I32", 1, 4},
    {27, "I64", 1, 8},
    {28, "F64", 1, 8},
    {29, "IQ1_M", kQK_K, kQK_K / 8 + kQK_K / 16 + kQK_K / 32},  // qs, qh, scales
    {30, "BF16", 1, 2},
    {34, "TQ1_0", kQK_K, (kQK_K - 4 * kQK_K / 64) / 5 + kQK_K / 64 + kHalf},
    {35, "TQ2_0", kQK_K, kQK_K / 4 + kHalf},
    {39, "MXFP4", 32, 1 + 32 / 2},  // e (E8M0), qs
};
// clang-format on

TEST(DTypeTable, MatchesGgmlBlockLayouts) {
  for (const ExpectedType& expected : kExpected) {
    const auto info = dtype_info(expected.id);
    ASSERT_TRUE(info.has_value()) << expected.name;
    EXPECT_EQ(info->name, expected.name) << expected.id;
    EXPECT_EQ(info->block_size, expected.block_size) << expected.name;
    EXPECT_EQ(info->block_bytes, expected.block_bytes) << expected.name;
    EXPECT_EQ(dtype_from_name(expected.name), info->type);
  }
}

TEST(DTypeTable, RemovedIdsAreUnknown) {
  // Q4_2, Q4_3, the Q4_0_x_y and IQ4_NL_x_y repacks were removed from GGUF.
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 1000u}) {
    EXPECT_FALSE(dtype_info(id).has_value()) << id;
  }
}

TEST(DTypeTable, RowBytes) {
  EXPECT_EQ(dtype_row_bytes(DType::kQ4_K, 512), 288u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ4_K, 100), std::nullopt);
  EXPECT_EQ(dtype_row_bytes(DType::kF16, 3), 6u);
  EXPECT_EQ(dtype_from_name("q8_0"), DType::kQ8_0);
  EXPECT_EQ(dtype_from_name("Q9_9"), std::nullopt);
}

}  // namespace
}  // namespace specula

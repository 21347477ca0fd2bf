#include "kernels/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/f16.h"
#include "kernel_test_util.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_decode.h"

namespace specula {
namespace {

constexpr float kF16Slack = 1.0f + 1.0f / 512;  // scales are rounded up to f16

std::vector<float> round_trip(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(*dtype_row_bytes(type, x.size()));
  quantize_row(type, x.data(), static_cast<int64_t>(x.size()), bytes.data());
  std::vector<float> y(x.size());
  dequantize_values(type, bytes.data(), static_cast<int64_t>(x.size()), y.data());
  return y;
}

float amax_of(const float* x, int n) {
  float a = 0.0f;
  for (int i = 0; i < n; ++i) a = std::max(a, std::fabs(x[i]));
  return a;
}

TEST(Quantize, FloatTypesRoundToNearest) {
  const std::vector<float> x = test::random_values(1000, 1);
  const std::vector<float> f16 = round_trip(DType::kF16, x);
  const std::vector<float> bf16 = round_trip(DType::kBF16, x);
  const std::vector<float> f32 = round_trip(DType::kF32, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_LE(std::fabs(f16[i] - x[i]), std::fabs(x[i]) * 0x1p-11f + 0x1p-25f) << i;
    EXPECT_LE(std::fabs(bf16[i] - x[i]), std::fabs(x[i]) * 0x1p-8f) << i;
    EXPECT_EQ(f32[i], x[i]);
  }
}

// Per 32-value block: Q8_0 error <= d/2 with d = amax/127.
TEST(Quantize, Q8_0WithinHalfStep) {
  const std::vector<float> x = test::random_values(32 * 40, 2);
  const std::vector<float> y = round_trip(DType::kQ8_0, x);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float d = amax_of(&x[32 * b], 32) / 127.0f * kF16Slack;
    for (size_t i = 32 * b; i < 32 * b + 32; ++i)
      EXPECT_LE(std::fabs(y[i] - x[i]), d / 2 + 1e-7f) << i;
  }
}

// Q4_0 error <= |d| with |d| = amax/8: the extreme maps exactly to -8 * d,
// the other end may clamp at +7 * d.
TEST(Quantize, Q4_0WithinOneStep) {
  const std::vector<float> x = test::random_values(32 * 40, 3);
  const std::vector<float> y = round_trip(DType::kQ4_0, x);
  double sum_sq = 0.0;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float d = amax_of(&x[32 * b], 32) / 8.0f * kF16Slack;
    for (size_t i = 32 * b; i < 32 * b + 32; ++i) {
      EXPECT_LE(std::fabs(y[i] - x[i]), d + 1e-7f) << i;
      sum_sq += (y[i] - x[i]) * (y[i] - x[i]) / (d * d);
    }
  }
  // Most values are rounding errors (<= d/2): the RMS in units of d must be
  // near that of a uniform error on [-1/2, 1/2], 0.29.
  EXPECT_LT(std::sqrt(sum_sq / x.size()), 0.35);
}

// The K-quant bounds of quantize.h, computed from the data alone.
void check_k_min(DType type, int levels, uint32_t seed) {
  const std::vector<float> x = test::random_values(256 * 12, seed);
  const std::vector<float> y = round_trip(type, x);
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const float* xb = &x[256 * b];
    float range[8], max_neg_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      const float lo = std::min(0.0f, *std::min_element(xb + 32 * j, xb + 32 * j + 32));
      const float hi = *std::max_element(xb + 32 * j, xb + 32 * j + 32);
      range[j] = hi - lo;
      max_neg_min = std::max(max_neg_min, -lo);
    }
    const float dmin = max_neg_min / 63.0f * kF16Slack;
    float d = 0.0f;
    for (int j = 0; j < 8; ++j) d = std::max(d, (range[j] + dmin) / (63.0f * levels));
    d *= kF16Slack;
    for (int j = 0; j < 8; ++j) {
      const float step = ((range[j] + dmin) / levels + d) * kF16Slack;
      for (size_t i = 256 * b + 32 * j; i < 256 * b + 32 * j + 32; ++i) {
        EXPECT_LE(std::fabs(y[i] - x[i]), step / 2 + 1e-6f) << dtype_name(type) << " value " << i;
      }
    }
  }
}

TEST(Quantize, Q4_KWithinHalfStep) {
  check_k_min(DType::kQ4_K, 15, 4);
}
TEST(Quantize, Q5_KWithinHalfStep) {
  check_k_min(DType::kQ5_K, 31, 5);
}

TEST(Quantize, Q6_KWithinHalfStep) {
  const std::vector<float> x = test::random_values(256 * 12, 6);
  const std::vector<float> y = round_trip(DType::kQ6_K, x);
  for (size_t b = 0; b < x.size() / 256; ++b) {
    const float d = amax_of(&x[256 * b], 256) / 31.0f / 127.0f * kF16Slack;
    for (int j = 0; j < 16; ++j) {
      const float step = (amax_of(&x[256 * b + 16 * j], 16) / 31.0f + d) * kF16Slack;
      for (size_t i = 256 * b + 16 * j; i < 256 * b + 16 * j + 16; ++i) {
        EXPECT_LE(std::fabs(y[i] - x[i]), step / 2 + 1e-6f) << i;
      }
    }
  }
}

TEST(Quantize, ZerosStayZero) {
  const std::vector<float> x(512, 0.0f);
  for (DType type : test::all_matmul_types()) {
    for (float v : round_trip(type, x)) EXPECT_EQ(v, 0.0f) << dtype_name(type);
  }
}

TEST(Quantize, RejectsBadLengthAndType) {
  std::vector<float> x(40, 1.0f);
  std::vector<uint8_t> out(100);
  EXPECT_THROW(quantize_row(DType::kQ8_0, x.data(), 40, out.data()), Error);
  EXPECT_THROW(quantize_row(DType::kQ2_K, x.data(), 32, out.data()), Error);
  EXPECT_THROW(dequantize_values(DType::kQ4_K, out.data(), 32, x.data()), Error);
}

// Layout checks against ggml's formulas on hand-made blocks: these do not
// use our quantizers, so they pin the byte layout itself.
TEST(QuantLayout, Q4_0NibbleOrder) {
  BlockQ4_0 block{};
  block.d = f32_to_f16(0.5f);
  block.qs[3] = 0xA1;  // value 3: low nibble 1 -> (1-8)*0.5; value 19: 10 -> (10-8)*0.5
  float y[32];
  dequantize_values(DType::kQ4_0, &block, 32, y);
  EXPECT_EQ(y[3], -3.5f);
  EXPECT_EQ(y[19], 1.0f);
  EXPECT_EQ(y[0], -4.0f);  // nibble 0 -> -8 * d
}

TEST(QuantLayout, Q4_KScalesAndNibbles) {
  BlockQ4_K block{};
  block.d = f32_to_f16(0.25f);
  block.dmin = f32_to_f16(0.5f);
  // Sub-block 5 (values 160..191: chunk 2, high nibbles of qs[64..95]):
  // scale = (scales[9] & 15) | (scales[1] >> 6) << 4; min = (scales[9] >> 4) | (scales[5] >> 6)
  // << 4.
  block.scales[9] = 0x32;   // scale low 2, min low 3
  block.scales[1] = 0x40;   // scale high bits 1 -> scale = 2 + 16 = 18
  block.scales[5] = 0x80;   // min high bits 2 -> min = 3 + 32 = 35
  block.qs[64 + 7] = 0x90;  // value 160 + 7 -> nibble 9
  float y[256];
  dequantize_values(DType::kQ4_K, &block, 256, y);
  EXPECT_FLOAT_EQ(y[167], 0.25f * 18 * 9 - 0.5f * 35);
  EXPECT_FLOAT_EQ(y[166], -0.5f * 35);
  // Sub-block 1 (values 32..63, high nibbles of qs[0..31]): scale = scales[1] & 63 = 0, min =
  // scales[5] & 63 = 0.
  EXPECT_EQ(y[40], 0.0f);
}

TEST(QuantLayout, Q5_KFifthBit) {
  BlockQ5_K block{};
  block.d = f32_to_f16(1.0f);
  block.scales[3] = 1;      // sub-block 3 (values 96..127): scale 1, min 0
  block.qs[32 + 4] = 0x20;  // value 96 + 4: high nibble 2 of qs[32 + 4]
  block.qh[4] = 1u << 3;    // fifth bit of sub-block 3 at qh bit 3
  float y[256];
  dequantize_values(DType::kQ5_K, &block, 256, y);
  EXPECT_EQ(y[100], 2.0f + 16.0f);
}

TEST(QuantLayout, Q6_KIndexing) {
  BlockQ6_K block{};
  block.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) block.scales[j] = static_cast<int8_t>(j + 1);
  // Value 128 + 64 + 17: second half, quarter 2 (high nibble of ql[64 + 17]),
  // high bits 4-5 of qh[32 + 17], scale index 8 + 1 + 4 = 13.
  block.ql[64 + 17] = 0x70;
  block.qh[32 + 17] = 0x20;  // bits 4-5 = 2 -> q = 7 | 2 << 4 = 39
  float y[256];
  dequantize_values(DType::kQ6_K, &block, 256, y);
  EXPECT_FLOAT_EQ(y[128 + 64 + 17], 0.5f * 14 * (39 - 32));
  EXPECT_FLOAT_EQ(y[0], 0.5f * 1 * (0 - 32));
}

// The kernels' group decoding and dequantize_values read each layout
// independently; they must agree. 23 blocks: a whole group and a partial one
// (for the K-quants 768 values: one and a half groups).
TEST(QuantLayout, GroupDecodeMatchesDequantize) {
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const int64_t n = dtype_info(type).block_size == 256 ? 768 : 32 * 23;
    const std::vector<float> x = test::random_values(static_cast<size_t>(n), 7);
    const std::vector<uint8_t> bytes = test::quantize_matrix(type, x, n, 1);
    std::vector<float> expected(static_cast<size_t>(n));
    dequantize_values(type, bytes.data(), n, expected.data());
    const int bias = weight_bias(type);
    for (int64_t g = 0; g < groups_for(n); ++g) {
      DecodedGroup group;
      decode_group(type, bytes.data(), n, g, &group);
      for (int l = 0; l < kGroupBlocks; ++l) {
        for (int t = 0; t < 32; ++t) {
          const int64_t k = (g * kGroupBlocks + l) * 32 + t;
          const float scale =
              (type == DType::kQ6_K && t >= 16) ? group.scale_hi[l] : group.scale[l];
          const float got =
              scale * static_cast<float>(group.q[t / 4][l][t % 4] - bias) + group.min[l];
          if (k >= n) {
            EXPECT_EQ(scale, 0.0f) << "padding block " << l;
            continue;
          }
          EXPECT_NEAR(got, expected[static_cast<size_t>(k)],
                      1e-5f * (1.0f + std::fabs(expected[static_cast<size_t>(k)])))
              << dtype_name(type) << " " << k;
        }
      }
    }
  }
}

}  // namespace
}  // namespace specula

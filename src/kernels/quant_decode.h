// Weight rows and activation rows prepared for 8-bit integer dot products.
//
// Both sides are cut into 32-value blocks, and blocks into groups of
// kGroupBlocks = 16 (512 values). Inside a group the bytes are laid out
// "one block per 32-bit lane": vector k (k = 0..7, 64 bytes) holds, in lane
// l (4 bytes), values 4k..4k+3 of block l. So a u8 x s8 four-way dot
// (vpdpbusd, or pmaddubsw + pmaddwd) of weight vector k with activation
// vector k adds into lane l products of block l only, and after the 8
// vectors lane l holds block l's exact integer dot product: the float scale
// step then runs once per 16 blocks (one multiply and one FMA per activation
// row), not once per block.
//
// Activation rows (prepare_activation_row; once per matmul call):
//   values    int8, |v| <= 127, the layout above, zero-padded to whole groups
//   scales    float per block, x ~= scales[b] * v
//   neg_sums  int32 per block, -(sum of the block's 32 values)
//   neg_sums_lo  int32 per block, -(sum of its first 16 values)
//   scaled_sums  float per block, scales[b] * (sum of its values)
//
// Weight groups (decode_group; once per weight row, for all activation
// rows) as unsigned integers u with a per-type bias:
//   Q8_0: u = q + 128, bias 128   Q4_0: u = nibble, bias 8
//   Q4_K/Q5_K: u = q, bias 0, plus min[l] = -dmin * m_j
//   Q6_K: u = q, bias 32, separate scales for the two 16-value halves
// and per-lane float scales, so that for block l
//   w . x = scale[l] * dx * (sum u v - bias * sum v) + min[l] * dx * sum v
// (Q6_K: the first and second 16 values each with their own scale).
//
// This header holds the plain versions, used by the scalar twin and by the
// targets without a vectorized decoder; matmul_int_simd.cpp has the
// vectorized ones, and the tests compare the two through matmul results.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/dtype.h"
#include "core/f16.h"
#include "kernels/quant_blocks.h"

namespace specula {

inline constexpr int kGroupBlocks = 16;
inline constexpr int kGroupValues = 32 * kGroupBlocks;
inline constexpr int kGroupVectors = 8;  // 4-byte slices of a 32-value block

// f16_to_f32 with a fast path for normal numbers (block scales are almost
// always normal); the rare zero, subnormal, inf or NaN takes the full one.
inline float f16_scale_to_f32(uint16_t h) {
  const uint32_t exponent = h & 0x7c00u;
  if (exponent == 0 || exponent == 0x7c00u) return f16_to_f32(h);
  const uint32_t bits =
      (static_cast<uint32_t>(h & 0x8000u) << 16) | (((h & 0x7fffu) << 13) + 0x38000000u);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// True for the types whose matmul goes through integer dot products.
inline bool is_int_dot_type(DType type) {
  return type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ4_K ||
         type == DType::kQ5_K || type == DType::kQ6_K;
}

// The bias subtracted from decoded weight integers (see above).
inline int weight_bias(DType type) {
  switch (type) {
    case DType::kQ8_0:
      return 128;
    case DType::kQ4_0:
      return 8;
    case DType::kQ6_K:
      return 32;
    default:
      return 0;
  }
}

inline int64_t groups_for(int64_t n_in) {
  return (n_in + kGroupValues - 1) / kGroupValues;
}

// One decoded group of 16 weight blocks.
struct alignas(64) DecodedGroup {
  uint8_t q[kGroupVectors][kGroupBlocks][4];
  float scale[kGroupBlocks];     // per block (Q6_K: its first 16 values)
  float scale_hi[kGroupBlocks];  // Q6_K: its second 16 values
  float min[kGroupBlocks];       // Q4_K / Q5_K: -dmin * m; else 0
};

// Prepared activation rows: m rows of n_groups groups.
struct ActivationRows {
  int64_t n_groups = 0;
  const int8_t* values = nullptr;        // m x n_groups x 512
  const float* scales = nullptr;         // m x n_groups x 16
  const int32_t* neg_sums = nullptr;     // m x n_groups x 16
  const int32_t* neg_sums_lo = nullptr;  // m x n_groups x 16
  const float* scaled_sums = nullptr;    // m x n_groups x 16
};

// Where value t (0..31) of block l of a group sits in the group's bytes.
inline int group_byte(int l, int t) {
  return (t / 4) * (kGroupBlocks * 4) + l * 4 + t % 4;
}

// One activation block's scale (amax / 127) and its inverse, from the
// largest |x| of the block as IEEE bits (max of bits & 0x7fffffff, which
// orders as the values do and, unlike a float max, never drops a NaN).
// A block holding an infinity or a NaN gets a NaN scale and all-zero
// values, so that every output of its row is NaN (never an integer
// overflow). A block whose amax is so small (below ~3.7e-37) that the
// inverse overflows quantizes to zeros, like a block of zeros.
struct ActivationBlockScale {
  float scale = 0.0f;
  float inverse = 0.0f;
  bool non_finite = false;
};

inline ActivationBlockScale activation_block_scale(uint32_t max_abs_bits) {
  if (max_abs_bits >= 0x7f800000u) {
    return ActivationBlockScale{std::numeric_limits<float>::quiet_NaN(), 0.0f, true};
  }
  float amax;
  std::memcpy(&amax, &max_abs_bits, sizeof amax);
  const float scale = amax / 127.0f;
  const float inverse = 127.0f / amax;
  if (!(scale > 0.0f) || !(inverse <= std::numeric_limits<float>::max())) {
    return ActivationBlockScale{};
  }
  return ActivationBlockScale{scale, inverse, false};
}

// Quantizes one activation row of n values to the layout above (the
// n_groups * 512 bytes are all written, padding with zeros). Each block's
// scale is amax / 127, values round to nearest even; for non-finite and
// tiny blocks see activation_block_scale.
inline void prepare_activation_row(const float* x, int64_t n, int8_t* values, float* scales,
                                   int32_t* neg_sums, int32_t* neg_sums_lo, float* scaled_sums) {
  const int64_t n_groups = groups_for(n);
  for (int64_t b = 0; b < n_groups * kGroupBlocks; ++b) {
    int8_t* group = values + (b / kGroupBlocks) * kGroupValues;
    const int l = static_cast<int>(b % kGroupBlocks);
    if (32 * b >= n) {
      for (int t = 0; t < 32; ++t) group[group_byte(l, t)] = 0;
      scales[b] = 0.0f;
      neg_sums[b] = neg_sums_lo[b] = 0;
      scaled_sums[b] = 0.0f;
      continue;
    }
    const float* xb = x + 32 * b;
    uint32_t max_bits = 0;
    for (int t = 0; t < 32; ++t) {
      uint32_t bits;
      std::memcpy(&bits, xb + t, sizeof bits);
      max_bits = std::max(max_bits, bits & 0x7fffffffu);
    }
    const ActivationBlockScale block = activation_block_scale(max_bits);
    int sum = 0, sum_lo = 0;
    for (int t = 0; t < 32; ++t) {
      const int v = block.non_finite ? 0 : static_cast<int>(std::nearbyint(xb[t] * block.inverse));
      group[group_byte(l, t)] = static_cast<int8_t>(v);
      sum += v;
      if (t < 16) sum_lo += v;
    }
    scales[b] = block.scale;
    neg_sums[b] = -sum;
    neg_sums_lo[b] = -sum_lo;
    scaled_sums[b] = block.scale * static_cast<float>(sum);
  }
}

// Unpacks the 8 (scale, min) pairs of a Q4_K/Q5_K super-block.
inline void unpack_k_scales_mins(const uint8_t* packed, uint8_t* scale, uint8_t* min) {
  for (int j = 0; j < 8; ++j) unpack_k_scale_min(packed, j, scale + j, min + j);
}

// Decodes group g of a weight row of n_in values (n_in a multiple of the
// type's block size). Blocks past the row end decode as zeros.
inline void decode_group(DType type, const uint8_t* row, int64_t n_in, int64_t g,
                         DecodedGroup* out) {
  std::memset(out, 0, sizeof *out);
  const int64_t first = g * kGroupBlocks;
  const int n_blocks = static_cast<int>(std::min<int64_t>(kGroupBlocks, n_in / 32 - first));
  for (int l = 0; l < n_blocks; ++l) {
    const int64_t b = first + l;
    auto put = [&](int t, int u) { out->q[t / 4][l][t % 4] = static_cast<uint8_t>(u); };
    switch (type) {
      case DType::kQ8_0: {
        const auto* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
        out->scale[l] = f16_to_f32(block->d);
        for (int t = 0; t < 32; ++t) put(t, block->qs[t] + 128);
        break;
      }
      case DType::kQ4_0: {
        const auto* block = reinterpret_cast<const BlockQ4_0*>(row) + b;
        out->scale[l] = f16_to_f32(block->d);
        for (int t = 0; t < 16; ++t) {
          put(t, block->qs[t] & 0xF);
          put(t + 16, block->qs[t] >> 4);
        }
        break;
      }
      case DType::kQ4_K:
      case DType::kQ5_K: {
        // Sub-block j of a super-block: low (j even) or high (j odd)
        // nibbles of qs[32 (j/2) + t]; Q5_K's fifth bit is bit j of qh[t].
        const bool five_bits = type == DType::kQ5_K;
        const uint8_t* block =
            row + (b / 8) * static_cast<int64_t>(five_bits ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K));
        const auto* head = reinterpret_cast<const BlockQ4_K*>(block);
        const int j = static_cast<int>(b % 8);
        uint8_t sc, m;
        unpack_k_scale_min(head->scales, j, &sc, &m);
        out->scale[l] = f16_to_f32(head->d) * static_cast<float>(sc);
        out->min[l] = -f16_to_f32(head->dmin) * static_cast<float>(m);
        const uint8_t* qs = five_bits ? reinterpret_cast<const BlockQ5_K*>(block)->qs : head->qs;
        for (int t = 0; t < 32; ++t) {
          int u = (qs[32 * (j / 2) + t] >> (4 * (j % 2))) & 0xF;
          if (five_bits) u |= ((reinterpret_cast<const BlockQ5_K*>(block)->qh[t] >> j) & 1) << 4;
          put(t, u);
        }
        break;
      }
      case DType::kQ6_K: {
        // Values 32 j + t: low bits from ql[64 h + 32 (s & 1) + t], nibble
        // s >> 1; high bits 2s, 2s+1 of qh[32 h + t]; h = j / 4, s = j % 4.
        const auto* block = reinterpret_cast<const BlockQ6_K*>(row) + b / 8;
        const int j = static_cast<int>(b % 8), h = j / 4, s = j % 4;
        const float d = f16_to_f32(block->d);
        out->scale[l] = d * static_cast<float>(block->scales[2 * j]);
        out->scale_hi[l] = d * static_cast<float>(block->scales[2 * j + 1]);
        for (int t = 0; t < 32; ++t) {
          const int low = (block->ql[64 * h + 32 * (s & 1) + t] >> (4 * (s >> 1))) & 0xF;
          const int high = (block->qh[32 * h + t] >> (2 * s)) & 3;
          put(t, low | (high << 4));
        }
        break;
      }
      default:
        break;  // callers check is_int_dot_type first
    }
  }
}

// The plain dot of a decoded group with one prepared activation group:
// block by block in order, integer sums exact, then float. `lanes` points
// at the activation row's per-block arrays for this group.
inline float dot_group(DType type, const DecodedGroup& w, const int8_t* x, const float* scales,
                       const int32_t* neg_sums, const int32_t* neg_sums_lo,
                       const float* scaled_sums) {
  const int bias = weight_bias(type);
  float sum = 0.0f;
  for (int l = 0; l < kGroupBlocks; ++l) {
    int32_t lo = 0, hi = 0;
    for (int t = 0; t < 32; ++t) {
      const int32_t p = w.q[t / 4][l][t % 4] * x[group_byte(l, t)];
      (t < 16 ? lo : hi) += p;
    }
    if (type == DType::kQ6_K) {
      lo += bias * neg_sums_lo[l];
      hi += bias * (neg_sums[l] - neg_sums_lo[l]);
      sum += static_cast<float>(lo) * (w.scale[l] * scales[l]) +
             static_cast<float>(hi) * (w.scale_hi[l] * scales[l]);
    } else {
      const int32_t isum = lo + hi + bias * neg_sums[l];
      sum += static_cast<float>(isum) * (w.scale[l] * scales[l]) + w.min[l] * scaled_sums[l];
    }
  }
  return sum;
}

}  // namespace specula

// Weight rows and activation rows prepared for integer dot products.
//
// A quantized weight row of n_in values is decoded (in cache, one row at a
// time, once for all activation rows) to
//   values[k]        int16, small integers (|v| <= 4096)
//   group_scales[g]  float, one per group of kIntGroup(type) values
//   offsets[j]       float, one per 32 values (Q4_K/Q5_K mins; else 0)
// so that w[k] = group_scales[k / G] * values[k] + offsets[k / 32].
// For the K-quants the sub-block scale is folded into values (q * sc), so a
// whole 256-value super-block shares one float scale and the integer sums
// of its eight sub-blocks can be added before going to float.
//
// An activation row is quantized the same way, to 8-bit integers stored as
// int16 with one scale per group of the same size G:
//   x[k] ~= scales[k / G] * values[k], |values| <= 127,
// plus sums[j] = scales[g(j)] * (sum of values in 32-block j), which turns
// the offsets into one short dot product. Then
//   dot(w, x) ~= sum_g group_scales[g] * scales[g] * isum_g + sum_j offsets[j] * sums[j]
// with isum_g the exact int32 dot product of the group's values.
//
// decode_row_int16 is the plain version, used by the scalar twin;
// matmul_simd.cpp has a vectorized decoder per instruction set, and the
// tests compare the two through the matmul results.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/f16.h"
#include "kernels/quant_blocks.h"

namespace specula {

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

// Values per float scale (G above) for an integer-dot type.
inline int int_group_size(DType type) {
  return (type == DType::kQ8_0 || type == DType::kQ4_0) ? 32 : kSuperBlockSize;
}

inline bool has_offsets(DType type) {
  return type == DType::kQ4_K || type == DType::kQ5_K;
}

// Decodes one weight row (n_in values, a multiple of the type's block size).
// offsets is written only when has_offsets(type).
inline void decode_row_int16(DType type, const uint8_t* row, int64_t n_in, int16_t* values,
                             float* group_scales, float* offsets) {
  switch (type) {
    case DType::kQ8_0: {
      const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row);
      for (int64_t b = 0; b < n_in / 32; ++b) {
        group_scales[b] = f16_to_f32(blocks[b].d);
        int16_t* v = values + b * 32;
        for (int i = 0; i < 32; ++i) v[i] = blocks[b].qs[i];
      }
      break;
    }
    case DType::kQ4_0: {
      const auto* blocks = reinterpret_cast<const BlockQ4_0*>(row);
      for (int64_t b = 0; b < n_in / 32; ++b) {
        group_scales[b] = f16_to_f32(blocks[b].d);
        int16_t* v = values + b * 32;
        const uint8_t* qs = blocks[b].qs;
        for (int i = 0; i < 16; ++i) {
          v[i] = static_cast<int16_t>((qs[i] & 0xF) - 8);
          v[i + 16] = static_cast<int16_t>((qs[i] >> 4) - 8);
        }
      }
      break;
    }
    case DType::kQ4_K:
    case DType::kQ5_K: {
      const bool five_bits = type == DType::kQ5_K;
      const int64_t block_bytes = five_bits ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
      for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
        const uint8_t* block = row + b * block_bytes;
        // Q4_K and Q5_K share the d, dmin, scales prefix.
        const auto* head = reinterpret_cast<const BlockQ4_K*>(block);
        const float d = f16_to_f32(head->d);
        const float dmin = f16_to_f32(head->dmin);
        group_scales[b] = d;
        const uint8_t* qs = five_bits ? reinterpret_cast<const BlockQ5_K*>(block)->qs : head->qs;
        const uint8_t* qh = five_bits ? reinterpret_cast<const BlockQ5_K*>(block)->qh : nullptr;
        int16_t* v = values + b * kSuperBlockSize;
        // Each 64 values: sub-block 2c from the low nibbles of 32 bytes,
        // sub-block 2c+1 from their high nibbles; Q5_K's fifth bits for
        // chunk c are bits 2c and 2c+1 of qh[l].
        for (int c = 0; c < 4; ++c) {
          uint8_t sc_lo, m_lo, sc_hi, m_hi;
          unpack_k_scale_min(head->scales, 2 * c, &sc_lo, &m_lo);
          unpack_k_scale_min(head->scales, 2 * c + 1, &sc_hi, &m_hi);
          offsets[b * 8 + 2 * c] = -dmin * m_lo;
          offsets[b * 8 + 2 * c + 1] = -dmin * m_hi;
          const uint8_t* q = qs + 32 * c;
          int16_t* out = v + 64 * c;
          if (five_bits) {
            for (int l = 0; l < 32; ++l) {
              const int lo = (q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4);
              const int hi = (q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
              out[l] = static_cast<int16_t>(lo * sc_lo);
              out[l + 32] = static_cast<int16_t>(hi * sc_hi);
            }
          } else {
            for (int l = 0; l < 32; ++l) {
              out[l] = static_cast<int16_t>((q[l] & 0xF) * sc_lo);
              out[l + 32] = static_cast<int16_t>((q[l] >> 4) * sc_hi);
            }
          }
        }
      }
      break;
    }
    case DType::kQ6_K: {
      const auto* blocks = reinterpret_cast<const BlockQ6_K*>(row);
      for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
        const BlockQ6_K& block = blocks[b];
        group_scales[b] = f16_to_f32(block.d);
        // Two halves of 128 values; in each, value l + 32 * s (s = 0..3)
        // takes 4 bits from ql and 2 bits (2s, 2s+1) from qh[l].
        for (int half = 0; half < 2; ++half) {
          const uint8_t* ql = block.ql + 64 * half;
          const uint8_t* qh = block.qh + 32 * half;
          const int8_t* sc = block.scales + 8 * half;
          int16_t* out = values + b * kSuperBlockSize + 128 * half;
          for (int l = 0; l < 32; ++l) {
            const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            const int s = l / 16;
            out[l] = static_cast<int16_t>(q0 * sc[s]);
            out[l + 32] = static_cast<int16_t>(q1 * sc[s + 2]);
            out[l + 64] = static_cast<int16_t>(q2 * sc[s + 4]);
            out[l + 96] = static_cast<int16_t>(q3 * sc[s + 6]);
          }
        }
      }
      break;
    }
    default:
      break;  // callers check is_int_dot_type first
  }
}

// Quantizes one activation row (n values, a multiple of group) to 8-bit
// integers with one scale per group; see the header comment.
inline void quantize_activation_row(const float* x, int64_t n, int group, int16_t* values,
                                    float* scales, float* sums) {
  for (int64_t g = 0; g < n / group; ++g) {
    const float* xg = x + g * group;
    float amax = 0.0f;
    for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(xg[i]));
    const float scale = amax / 127.0f;
    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    scales[g] = scale;
    int16_t* v = values + g * group;
    for (int i = 0; i < group; ++i) v[i] = static_cast<int16_t>(std::nearbyint(xg[i] * inverse));
    for (int j = 0; j < group / 32; ++j) {
      int sum = 0;
      for (int i = 0; i < 32; ++i) sum += v[32 * j + i];
      sums[g * (group / 32) + j] = scale * static_cast<float>(sum);
    }
  }
}

}  // namespace specula

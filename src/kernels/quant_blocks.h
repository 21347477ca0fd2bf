// Block layouts of the quantized GGUF weight types specula computes with,
// byte for byte as ggml stores them (ggml-common.h's block_* structs), so a
// GGUF file's tensor data can be used in place. Scales are IEEE binary16
// bit patterns (see core/f16.h).
//
// Value formulas (i = index inside the block):
//   Q8_0: x = d * qs[i]                                   (32 values)
//   Q4_0: x = d * (nibble - 8); nibbles: qs[i] & 15 are values 0..15,
//         qs[i] >> 4 are values 16..31                    (32 values)
//   Q4_K: 8 sub-blocks of 32 with 6-bit scale sc and min m (packed in
//         `scales`); x = d * sc * q - dmin * m, q in 0..15 (256 values)
//   Q5_K: as Q4_K with a fifth bit from qh; q in 0..31      (256 values)
//   Q6_K: 16 sub-blocks of 16 with int8 scale sc; q in 0..63 from 4 low
//         bits (ql) and 2 high bits (qh); x = d * sc * (q - 32)
// The exact bit positions are in quantize.cpp's decode functions.
#pragma once

#include <cstdint>

namespace specula {

inline constexpr int kQ8_0BlockSize = 32;
inline constexpr int kQ4_0BlockSize = 32;
inline constexpr int kSuperBlockSize = 256;  // QK_K of the K-quants

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_K {
  uint16_t d;          // scale of the sub-block scales
  uint16_t dmin;       // scale of the sub-block mins
  uint8_t scales[12];  // 8 x (6-bit scale, 6-bit min), packed
  uint8_t qs[128];     // 256 nibbles
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];   // fifth bits
  uint8_t qs[128];  // low nibbles
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[128];  // low 4 bits
  uint8_t qh[64];   // high 2 bits
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Unpacks sub-block j's (scale, min) of a Q4_K/Q5_K block: the first four
// pairs sit in the low 6 bits of bytes 0-3 and 4-7; the last four take
// their low 4 bits from bytes 8-11 and their top 2 bits from the spare top
// bits of bytes 0-7.
inline void unpack_k_scale_min(const uint8_t* scales, int j, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = scales[j] & 63;
    *min = scales[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// The inverse of unpack_k_scale_min for 8 pairs of 6-bit values.
inline void pack_k_scales_mins(const uint8_t* scale, const uint8_t* min, uint8_t* scales) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>((scale[j] & 63) | ((scale[j + 4] >> 4) << 6));
    scales[j + 4] = static_cast<uint8_t>((min[j] & 63) | ((min[j + 4] >> 4) << 6));
    scales[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0xF) | ((min[j + 4] & 0xF) << 4));
  }
}

}  // namespace specula

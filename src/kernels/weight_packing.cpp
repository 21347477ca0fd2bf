#include "kernels/weight_packing.h"

#include <hwy/targets.h>

#include <cstring>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_decode.h"

namespace specula {
namespace {

// Bytes of one whole group (16 blocks of 32 values) of a packable type.
int64_t group_bytes(DType type) {
  switch (type) {
    case DType::kQ8_0:
      return kGroupBlocks * int64_t{sizeof(BlockQ8_0)};
    case DType::kQ4_0:
      return kGroupBlocks * int64_t{sizeof(BlockQ4_0)};
    case DType::kQ4_K:
      return 2 * int64_t{sizeof(BlockQ4_K)};
    case DType::kQ5_K:
      return 2 * int64_t{sizeof(BlockQ5_K)};
    default:  // Q6_K
      return 2 * int64_t{sizeof(BlockQ6_K)};
  }
}

// Byte (l, i) of 64-byte vector v of a packed area: lane l, byte i.
uint8_t& lane_byte(uint8_t* vectors, int v, int l, int i) {
  return vectors[64 * v + 4 * l + i];
}

// Q8_0 and Q4_0, a group of `blocks` blocks (16; fewer for a row's
// partial last group): their scales, then the value bytes moved
// lane-wise into vectors of 4 x blocks bytes (64 for a whole group).
void pack_simple_group(DType type, const uint8_t* group, int blocks, uint8_t* out) {
  const bool q8 = type == DType::kQ8_0;
  const int block_bytes = q8 ? int{sizeof(BlockQ8_0)} : int{sizeof(BlockQ4_0)};
  for (int l = 0; l < blocks; ++l) std::memcpy(out + 2 * l, group + block_bytes * l, 2);
  uint8_t* vectors = out + 2 * blocks;
  const uint8_t flip = q8 ? 0x80 : 0x00;  // Q8_0: u = q + 128 = q ^ 0x80
  for (int v = 0; v < (q8 ? 8 : 4); ++v) {
    for (int l = 0; l < blocks; ++l) {
      for (int i = 0; i < 4; ++i) {
        vectors[4 * blocks * v + 4 * l + i] = group[block_bytes * l + 2 + 4 * v + i] ^ flip;
      }
    }
  }
}

// Decoded values < 16 of vectors c and c + 4, as low and high nibbles.
void pack_nibbles(const DecodedGroup& dec, uint8_t* vectors) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < kGroupBlocks; ++l) {
      for (int i = 0; i < 4; ++i) {
        lane_byte(vectors, c, l, i) =
            static_cast<uint8_t>((dec.q[c][l][i] & 0xF) | (dec.q[c + 4][l][i] & 0xF) << 4);
      }
    }
  }
}

// The two Q4_K / Q5_K super-block heads a, b (d, dmin, 12 bytes of 6-bit
// scales and mins) as 32 bytes that decode with shifts and masks (the
// layout is in weight_packing.h). Lane l < 8: sub-block l of a, else l - 8
// of b.
void pack_k_heads(const uint8_t* a, const uint8_t* b, uint8_t out[32]) {
  uint8_t sc[16], mn[16];
  unpack_k_scales_mins(a + 4, sc, mn);
  unpack_k_scales_mins(b + 4, sc + 8, mn + 8);
  std::memcpy(out, a, 4);  // d_a, dmin_a
  std::memcpy(out + 4, b, 4);
  uint32_t sc_high = 0, mn_high = 0;
  for (int l = 0; l < 16; ++l) {
    out[8 + l] = static_cast<uint8_t>((sc[l] & 15) | (mn[l] & 15) << 4);
    sc_high |= static_cast<uint32_t>(sc[l] >> 4) << (2 * l);
    mn_high |= static_cast<uint32_t>(mn[l] >> 4) << (2 * l);
  }
  std::memcpy(out + 24, &sc_high, 4);
  std::memcpy(out + 28, &mn_high, 4);
}

void pack_k_group(DType type, const uint8_t* row, int64_t n_in, int64_t g, uint8_t* out) {
  DecodedGroup dec;
  decode_group_simd(type, row, n_in, g, &dec);
  const uint8_t* a = row + g * group_bytes(type);
  if (type == DType::kQ4_K || type == DType::kQ5_K) {
    const uint8_t* b = a + group_bytes(type) / 2;
    pack_k_heads(a, b, out);
    pack_nibbles(dec, out + 32);
    if (type == DType::kQ5_K) {  // the fifth bits: bit k of byte (l, i) from q[k][l][i]
      uint8_t* high = out + 32 + 256;
      for (int l = 0; l < kGroupBlocks; ++l) {
        for (int i = 0; i < 4; ++i) {
          int bits = 0;
          for (int k = 0; k < kGroupVectors; ++k) bits |= ((dec.q[k][l][i] >> 4) & 1) << k;
          lane_byte(high, 0, l, i) = static_cast<uint8_t>(bits);
        }
      }
    }
    return;
  }
  const auto* sa = reinterpret_cast<const BlockQ6_K*>(a);
  const BlockQ6_K* sb = sa + 1;
  std::memcpy(out, sa->scales, 16);
  std::memcpy(out + 16, &sa->d, 2);
  std::memcpy(out + 18, sb->scales, 16);
  std::memcpy(out + 34, &sb->d, 2);
  pack_nibbles(dec, out + 36);
  uint8_t* high = out + 36 + 256;
  for (int c = 0; c < 2; ++c) {
    for (int l = 0; l < kGroupBlocks; ++l) {
      for (int i = 0; i < 4; ++i) {
        int bits = 0;
        for (int j = 0; j < 4; ++j) bits |= ((dec.q[c + 2 * j][l][i] >> 4) & 3) << (2 * j);
        lane_byte(high, c, l, i) = static_cast<uint8_t>(bits);
      }
    }
  }
}

// A K-quant row's partial last group, one super-block (g = n_in / 512):
// the whole group's layout for its 8 sub-blocks, vectors of 32 bytes
// (weight_packing.h).
void pack_k_half(DType type, const uint8_t* row, int64_t n_in, int64_t g, uint8_t* out) {
  constexpr int kLanes = kGroupBlocks / 2;
  DecodedGroup dec;
  decode_group_simd(type, row, n_in, g, &dec);
  const uint8_t* block = row + g * group_bytes(type);
  const auto nibbles = [&](uint8_t* vectors) {
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < kLanes; ++l) {
        for (int i = 0; i < 4; ++i) {
          vectors[32 * c + 4 * l + i] =
              static_cast<uint8_t>((dec.q[c][l][i] & 0xF) | (dec.q[c + 4][l][i] & 0xF) << 4);
        }
      }
    }
  };
  if (type == DType::kQ4_K || type == DType::kQ5_K) {
    uint8_t sc[8], mn[8];
    unpack_k_scales_mins(block + 4, sc, mn);
    std::memcpy(out, block, 4);  // d, dmin
    uint16_t sc_high = 0, mn_high = 0;
    for (int l = 0; l < kLanes; ++l) {
      out[4 + l] = static_cast<uint8_t>((sc[l] & 15) | (mn[l] & 15) << 4);
      sc_high = static_cast<uint16_t>(sc_high | (sc[l] >> 4) << (2 * l));
      mn_high = static_cast<uint16_t>(mn_high | (mn[l] >> 4) << (2 * l));
    }
    std::memcpy(out + 12, &sc_high, 2);
    std::memcpy(out + 14, &mn_high, 2);
    nibbles(out + 16);
    if (type == DType::kQ5_K) {  // the fifth bits: bit k of byte (l, i) from q[k][l][i]
      uint8_t* high = out + 16 + 128;
      for (int l = 0; l < kLanes; ++l) {
        for (int i = 0; i < 4; ++i) {
          int bits = 0;
          for (int k = 0; k < kGroupVectors; ++k) bits |= ((dec.q[k][l][i] >> 4) & 1) << k;
          high[4 * l + i] = static_cast<uint8_t>(bits);
        }
      }
    }
    return;
  }
  const auto* sa = reinterpret_cast<const BlockQ6_K*>(block);
  std::memcpy(out, sa->scales, 16);
  std::memcpy(out + 16, &sa->d, 2);
  nibbles(out + 18);
  uint8_t* high = out + 18 + 128;
  for (int c = 0; c < 2; ++c) {
    for (int l = 0; l < kLanes; ++l) {
      for (int i = 0; i < 4; ++i) {
        int bits = 0;
        for (int j = 0; j < 4; ++j) bits |= ((dec.q[c + 2 * j][l][i] >> 4) & 3) << (2 * j);
        high[32 * c + 4 * l + i] = static_cast<uint8_t>(bits);
      }
    }
  }
}

}  // namespace

bool packable_type(DType type) {
  return type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ4_K ||
         type == DType::kQ5_K || type == DType::kQ6_K;
}

bool packed_rows_used() {
  const int64_t target = simd_active_target().bit;
  return target == HWY_AVX3 || target == HWY_AVX3_DL;
}

void pack_row(DType type, int64_t n_in, const uint8_t* row, uint8_t* packed) {
  if (!packable_type(type)) fail("pack_row: weight type ", dtype_name(type), " has no packed form");
  const int64_t bytes = group_bytes(type);
  const int64_t whole = n_in / kGroupValues;
  for (int64_t g = 0; g < whole; ++g) {
    uint8_t* out = packed + g * bytes;
    if (type == DType::kQ8_0 || type == DType::kQ4_0) {
      pack_simple_group(type, row + g * bytes, kGroupBlocks, out);
    } else {
      pack_k_group(type, row, n_in, g, out);
    }
  }
  const int partial_blocks = static_cast<int>(n_in % kGroupValues / 32);
  if (partial_blocks == 0) return;
  if (type == DType::kQ8_0 || type == DType::kQ4_0) {
    pack_simple_group(type, row + whole * bytes, partial_blocks, packed + whole * bytes);
  } else {  // K-quant rows are whole super-blocks: the partial group is one
    pack_k_half(type, row, n_in, whole, packed + whole * bytes);
  }
}

WeightMatrix pack_weight_matrix(const WeightMatrix& w, AlignedBuffer<uint8_t>* storage) {
  if (!packable_type(w.type)) return w;
  const auto bytes = static_cast<size_t>(w.row_bytes * static_cast<uint64_t>(w.n_out));
  if (storage->size() != bytes) storage->resize(bytes);
  const auto* rows = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.n_out; ++r) {
    pack_row(w.type, w.n_in, rows + r * w.row_bytes, storage->data() + r * w.row_bytes);
  }
  WeightMatrix packed = w;
  packed.packed = storage->data();
  return packed;
}

}  // namespace specula

#include "kernels/weight_packing.h"

#include <hwy/targets.h>

#include <algorithm>
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

// The value vectors of a K-quant group with `lanes` lanes (16 for a whole
// group, 8 for a row's last super-block), vectors 4 x lanes bytes apart;
// byte (l, i) of vector v at 4 lanes v + 4 l + i. Returns the end.
//   nibbles: decoded values < 16 of vectors c and c + 4 as low and high
//            nibbles of vector c = 0..3;
//   Q5_K:    then one vector of fifth bits, bit k of byte (l, i) from
//            q[k][l][i];
//   Q6_K:    then two vectors c = 0, 1 of high 2-bit pairs, those of
//            q[c + 2j][l][i] at bits 2j.
uint8_t* pack_k_values(DType type, const DecodedGroup& dec, int lanes, uint8_t* out) {
  // q[k] as 64 bytes, byte 4 l + i: the vectors' bytes in order (loops
  // over them vectorize; per lane and byte they did not, and took 40% of
  // loading a Q4_K_M model).
  const auto q = [&](int k) { return &dec.q[k][0][0]; };
  const int n = 4 * lanes;
  for (int c = 0; c < 4; ++c) {
    for (int b = 0; b < n; ++b) {
      out[n * c + b] = static_cast<uint8_t>((q(c)[b] & 0xF) | (q(c + 4)[b] & 0xF) << 4);
    }
  }
  uint8_t* high = out + 4 * n;
  if (type == DType::kQ5_K) {
    for (int b = 0; b < n; ++b) {
      int bits = 0;
      for (int k = 0; k < kGroupVectors; ++k) bits |= ((q(k)[b] >> 4) & 1) << k;
      high[b] = static_cast<uint8_t>(bits);
    }
    return high + n;
  }
  if (type == DType::kQ6_K) {
    for (int c = 0; c < 2; ++c) {
      for (int b = 0; b < n; ++b) {
        int bits = 0;
        for (int j = 0; j < 4; ++j) bits |= ((q(c + 2 * j)[b] >> 4) & 3) << (2 * j);
        high[n * c + b] = static_cast<uint8_t>(bits);
      }
    }
    return high + 2 * n;
  }
  return high;
}

// The heads of the Q4_K / Q5_K super-blocks at `blocks` (1 or 2) as bytes
// that decode with shifts and masks (weight_packing.h): their f16 d, dmin;
// a byte per sub-block of the 6-bit scale's low 4 bits | the min's << 4;
// the scales' high 2 bits, 2 per sub-block, then the mins' (a uint32
// each for two super-blocks, a uint16 for one). Returns the end.
uint8_t* pack_k_heads(DType type, const uint8_t* blocks, int n, uint8_t* out) {
  const int64_t block_bytes = type == DType::kQ4_K ? sizeof(BlockQ4_K) : sizeof(BlockQ5_K);
  uint8_t sc[16], mn[16];
  for (int b = 0; b < n; ++b) {
    std::memcpy(out + 4 * b, blocks + b * block_bytes, 4);  // d, dmin
    unpack_k_scales_mins(blocks + b * block_bytes + 4, sc + 8 * b, mn + 8 * b);
  }
  uint8_t* bytes = out + 4 * n;
  uint32_t sc_high = 0, mn_high = 0;
  for (int l = 0; l < 8 * n; ++l) {
    bytes[l] = static_cast<uint8_t>((sc[l] & 15) | (mn[l] & 15) << 4);
    sc_high |= static_cast<uint32_t>(sc[l] >> 4) << (2 * l);
    mn_high |= static_cast<uint32_t>(mn[l] >> 4) << (2 * l);
  }
  const size_t high_bytes = n == 2 ? 4 : 2;  // little-endian: the low bytes
  std::memcpy(bytes + 8 * n, &sc_high, high_bytes);
  std::memcpy(bytes + 8 * n + high_bytes, &mn_high, high_bytes);
  return bytes + 8 * n + 2 * high_bytes;
}

// K-quant group g of a row: a whole one (two super-blocks, 16 lanes) or
// the row's last, one super-block (8 lanes), in weight_packing.h's layout.
void pack_k_group(DType type, const uint8_t* row, int64_t n_in, int64_t g, uint8_t* out) {
  DecodedGroup dec;
  decode_group_simd(type, row, n_in, g, &dec);
  const uint8_t* a = row + g * group_bytes(type);
  const int n = (g + 1) * kGroupValues <= n_in ? 2 : 1;  // super-blocks
  if (type == DType::kQ4_K || type == DType::kQ5_K) {
    pack_k_values(type, dec, 8 * n, pack_k_heads(type, a, n, out));
    return;
  }
  for (int b = 0; b < n; ++b) {  // Q6_K: per super-block its scales, then its d
    const auto* block = reinterpret_cast<const BlockQ6_K*>(a) + b;
    std::memcpy(out + 18 * b, block->scales, 16);
    std::memcpy(out + 18 * b + 16, &block->d, 2);
  }
  pack_k_values(type, dec, 8 * n, out + 18 * n);
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
  for (int64_t g = 0; g * kGroupValues < n_in; ++g) {  // the last may be partial
    if (type == DType::kQ8_0 || type == DType::kQ4_0) {
      const auto blocks =
          static_cast<int>(std::min<int64_t>(kGroupBlocks, n_in / 32 - g * kGroupBlocks));
      pack_simple_group(type, row + g * bytes, blocks, packed + g * bytes);
    } else {
      pack_k_group(type, row, n_in, g, packed + g * bytes);
    }
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

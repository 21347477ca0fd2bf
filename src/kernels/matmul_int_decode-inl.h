// Weight decoders of the integer-dot matmul (matmul_int_simd.cpp), compiled
// once per Highway target: included by that file after foreach_target, so
// the guard below toggles per target (Highway's -inl.h convention).
//
// Per weight row, a group of 16 blocks becomes a DecodedGroup (quant_decode.h
// for the layout): block l's unsigned values in 32-bit lane l of each of the
// 8 vectors, plus per-block scales and mins.
//   AVX2, AVX3, AVX3_DL: DecodeGroupGather, any group (gathers).
//   AVX3, AVX3_DL: DecodeWholeRegs / DecodeWholeGroup, whole groups only
//                  (plain loads and permutes, no gathers); DecodePackedRegs
//                  for rows packed at load (weight_packing.h): plain loads,
//                  and a mask and a shift for 4-bit values.
// Other targets decode with the plain decode_group of quant_decode.h.

#if defined(SPECULA_KERNELS_MATMUL_INT_DECODE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef SPECULA_KERNELS_MATMUL_INT_DECODE_INL_H_
#undef SPECULA_KERNELS_MATMUL_INT_DECODE_INL_H_
#else
#define SPECULA_KERNELS_MATMUL_INT_DECODE_INL_H_
#endif

#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "kernels/quant_decode.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {

// Per-lane byte offsets and shifts of the gather decoders, for block
// (lane) l of a group, relative to the group's first block.
struct GatherPlan {
  int32_t low[kGroupBlocks];         // dword holding values 0..3 (Q6_K: ql)
  int32_t low_shift[kGroupBlocks];   // nibble shift
  int32_t high[kGroupBlocks];        // Q5_K / Q6_K: dword of the high bits
  int32_t high_shift[kGroupBlocks];  // their shift
  int32_t scale[kGroupBlocks];       // Q8_0 / Q4_0: the f16 scale
};

inline GatherPlan MakePlan(DType type) {
  GatherPlan p{};
  for (int l = 0; l < kGroupBlocks; ++l) {
    const int j = l % 8;  // sub-block inside a K-quant super-block
    switch (type) {
      case DType::kQ8_0:
        p.scale[l] = 34 * l;
        p.low[l] = 34 * l + 2;
        break;
      case DType::kQ4_0:
        p.scale[l] = 18 * l;
        p.low[l] = 18 * l + 2;
        break;
      case DType::kQ4_K:
        p.low[l] = 144 * (l / 8) + 16 + 32 * (j / 2);
        p.low_shift[l] = 4 * (j % 2);
        break;
      case DType::kQ5_K:
        p.low[l] = 176 * (l / 8) + 48 + 32 * (j / 2);
        p.low_shift[l] = 4 * (j % 2);
        p.high[l] = 176 * (l / 8) + 16;
        p.high_shift[l] = j;
        break;
      default: {  // Q6_K
        const int h = j / 4, s = j % 4;
        p.low[l] = 210 * (l / 8) + 64 * h + 32 * (s & 1);
        p.low_shift[l] = 4 * (s >> 1);
        p.high[l] = 210 * (l / 8) + 128 + 32 * h;
        p.high_shift[l] = 2 * s;
        break;
      }
    }
  }
  return p;
}

// Scales and mins of the K-quants for lanes [l0, l0 + 8) = one super-block.
inline void KScales(DType type, const uint8_t* block, DecodedGroup* out, int l0) {
  if (type == DType::kQ6_K) {
    const auto* b6 = reinterpret_cast<const BlockQ6_K*>(block);
    const float d = f16_scale_to_f32(b6->d);
    for (int j = 0; j < 8; ++j) {
      out->scale[l0 + j] = d * static_cast<float>(b6->scales[2 * j]);
      out->scale_hi[l0 + j] = d * static_cast<float>(b6->scales[2 * j + 1]);
      out->min[l0 + j] = 0.0f;
    }
    return;
  }
  const auto* head = reinterpret_cast<const BlockQ4_K*>(block);
  const float d = f16_scale_to_f32(head->d);
  const float neg_dmin = -f16_scale_to_f32(head->dmin);
  uint8_t sc[8], m[8];
  unpack_k_scales_mins(head->scales, sc, m);
  for (int j = 0; j < 8; ++j) {
    out->scale[l0 + j] = d * static_cast<float>(sc[j]);
    out->min[l0 + j] = neg_dmin * static_cast<float>(m[j]);
  }
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2

// ------------------------------------------------------------ x86 decoding

#if HWY_TARGET == HWY_AVX2
// Eight lanes: a group is two halves.
struct IntVec {
  using I = __m256i;
  static constexpr int kLanes = 8;
  static I Load(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const I*>(p)); }
  static I Set(int32_t v) { return _mm256_set1_epi32(v); }
  static I Add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I And(I a, I b) { return _mm256_and_si256(a, b); }
  static I Or(I a, I b) { return _mm256_or_si256(a, b); }
  static I Xor(I a, I b) { return _mm256_xor_si256(a, b); }
  static I Shr(I a, I s) { return _mm256_srlv_epi32(a, s); }
  static I Shl4(I a) { return _mm256_slli_epi32(a, 4); }
  static I Gather(const uint8_t* base, I offsets, int valid) {
    const I lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const I mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane);
    return _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), reinterpret_cast<const int*>(base),
                                       offsets, mask, 1);
  }
  static void Store(uint8_t* p, I v) { _mm256_store_si256(reinterpret_cast<I*>(p), v); }
  // f16 bit patterns in the low halves of the lanes -> floats.
  static void StoreF16Scales(float* p, I v) {
    const I bits = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1));
    _mm256_store_ps(p, _mm256_cvtph_ps(packed));
  }
};
#else
// Sixteen lanes: a group is one vector.
struct IntVec {
  using I = __m512i;
  static constexpr int kLanes = 16;
  static I Load(const int32_t* p) { return _mm512_loadu_si512(p); }
  static I Set(int32_t v) { return _mm512_set1_epi32(v); }
  static I Add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I And(I a, I b) { return _mm512_and_si512(a, b); }
  static I Or(I a, I b) { return _mm512_or_si512(a, b); }
  static I Xor(I a, I b) { return _mm512_xor_si512(a, b); }
  static I Shr(I a, I s) { return _mm512_srlv_epi32(a, s); }
  static I Shl4(I a) { return _mm512_slli_epi32(a, 4); }
  static I Gather(const uint8_t* base, I offsets, int valid) {
    const __mmask16 mask = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, offsets, base, 1);
  }
  static void Store(uint8_t* p, I v) { _mm512_store_si512(p, v); }
  static void StoreF16Scales(float* p, I v) {
    _mm512_store_ps(p, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
  }
};
#endif

// decode_group with gathers: the same output for whole or partial groups.
void DecodeGroupGather(DType type, const GatherPlan& plan, const uint8_t* row, int64_t n_in,
                       int64_t g, DecodedGroup* out) {
  using V = IntVec;
  const int64_t first = g * kGroupBlocks;
  const int n_blocks = static_cast<int>(std::min<int64_t>(kGroupBlocks, n_in / 32 - first));
  const bool k_quant = type == DType::kQ4_K || type == DType::kQ5_K || type == DType::kQ6_K;
  const uint8_t* base;
  if (k_quant) {
    const int64_t block_bytes = type == DType::kQ4_K   ? sizeof(BlockQ4_K)
                                : type == DType::kQ5_K ? sizeof(BlockQ5_K)
                                                       : sizeof(BlockQ6_K);
    base = row + first / 8 * block_bytes;
    for (int l0 = 0; l0 < kGroupBlocks; l0 += 8) {
      if (l0 < n_blocks) {
        KScales(type, base + l0 / 8 * block_bytes, out, l0);
      } else {
        std::fill(out->scale + l0, out->scale + l0 + 8, 0.0f);
        std::fill(out->scale_hi + l0, out->scale_hi + l0 + 8, 0.0f);
        std::fill(out->min + l0, out->min + l0 + 8, 0.0f);
      }
    }
  } else {
    base = row + first * (type == DType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0));
    std::fill(out->min, out->min + kGroupBlocks, 0.0f);
  }
  const auto nibble = V::Set(0x0F0F0F0F);
  for (int l0 = 0; l0 < kGroupBlocks; l0 += V::kLanes) {
    const int valid = std::clamp(n_blocks - l0, 0, V::kLanes);
    const auto low = V::Load(plan.low + l0);
    auto store = [&](int k, typename V::I v) { V::Store(&out->q[k][l0][0], v); };
    // Dword k of every lane's block, from per-lane byte offsets.
    auto gather = [&](typename V::I offsets, int k) {
      return V::Gather(base, V::Add(offsets, V::Set(4 * k)), valid);
    };
    switch (type) {
      case DType::kQ8_0: {
        // u = q + 128 = q ^ 0x80 per byte. Lanes past the row end decode
        // as 128, not 0, but their scale and activations are 0.
        V::StoreF16Scales(out->scale + l0, V::Gather(base, V::Load(plan.scale + l0), valid));
        const auto flip = V::Set(static_cast<int32_t>(0x80808080u));
        for (int k = 0; k < 8; ++k) store(k, V::Xor(gather(low, k), flip));
        break;
      }
      case DType::kQ4_0: {
        V::StoreF16Scales(out->scale + l0, V::Gather(base, V::Load(plan.scale + l0), valid));
        for (int k = 0; k < 4; ++k) {
          const auto bytes = gather(low, k);
          store(k, V::And(bytes, nibble));
          store(k + 4, V::And(V::Shr(bytes, V::Set(4)), nibble));
        }
        break;
      }
      case DType::kQ4_K: {
        const auto shift = V::Load(plan.low_shift + l0);
        for (int k = 0; k < 8; ++k) store(k, V::And(V::Shr(gather(low, k), shift), nibble));
        break;
      }
      default: {  // Q5_K (one high bit per value) or Q6_K (two)
        const auto shift = V::Load(plan.low_shift + l0);
        const auto high = V::Load(plan.high + l0);
        const auto high_shift = V::Load(plan.high_shift + l0);
        const auto high_mask = V::Set(type == DType::kQ5_K ? 0x01010101 : 0x03030303);
        for (int k = 0; k < 8; ++k) {
          store(k, V::Or(V::And(V::Shr(gather(low, k), shift), nibble),
                         V::Shl4(V::And(V::Shr(gather(high, k), high_shift), high_mask))));
        }
        break;
      }
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
// Whole groups on AVX-512 without gathers: plain loads, then permutes put
// block l's dwords in lane l (a gather costs about one load per lane).

inline __m512i LaneIndex(int (*f)(int)) {
  alignas(64) int32_t idx[16];
  for (int q = 0; q < 16; ++q) idx[q] = f(q);
  return _mm512_load_si512(idx);
}

// In: v[r] lane 4b + d = dword d of block 4r + b. Out: t[d] lane l = dword
// d of block l.
inline void TransposeBlocksOf4(const __m512i v[4], __m512i t[4]) {
  static const __m512i idx01 =
      LaneIndex([](int q) { return (q % 8 / 4) * 16 + (q % 4) * 4 + q / 8; });
  static const __m512i idx23 =
      LaneIndex([](int q) { return (q % 8 / 4) * 16 + (q % 4) * 4 + 2 + q / 8; });
  const __m512i p0 = _mm512_permutex2var_epi32(v[0], idx01, v[1]);
  const __m512i p1 = _mm512_permutex2var_epi32(v[2], idx01, v[3]);
  const __m512i q0 = _mm512_permutex2var_epi32(v[0], idx23, v[1]);
  const __m512i q1 = _mm512_permutex2var_epi32(v[2], idx23, v[3]);
  t[0] = _mm512_shuffle_i64x2(p0, p1, 0x44);
  t[1] = _mm512_shuffle_i64x2(p0, p1, 0xEE);
  t[2] = _mm512_shuffle_i64x2(q0, q1, 0x44);
  t[3] = _mm512_shuffle_i64x2(q0, q1, 0xEE);
}

inline __m512i Load4x128(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2,
                         const uint8_t* p3) {
  __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0)));
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)), 1);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p2)), 2);
  return _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p3)), 3);
}

// The f16 at byte offset `at` of super-blocks a and b as floats: lanes
// 0-7 from a, 8-15 from b. Hardware conversion: exact for every f16.
inline __m512 SuperBlockF16(const uint8_t* a, const uint8_t* b, int at) {
  uint16_t ha, hb;
  std::memcpy(&ha, a + at, 2);
  std::memcpy(&hb, b + at, 2);
  const __m128 f = _mm_cvtph_ps(
      _mm_setr_epi16(static_cast<int16_t>(ha), static_cast<int16_t>(hb), 0, 0, 0, 0, 0, 0));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(f));
}

// KScales for the two Q4_K/Q5_K super-blocks a, b of a whole group, in
// vectors: the same floats (exact int conversions, one multiply each).
inline void KScalesMinsWhole(const uint8_t* a, const uint8_t* b, __m512* scale, __m512* min) {
  // The 12 packed bytes (offset 4) zero-extended to dwords: a in 0..15,
  // b in 16..31 of the two-table permutes (bytes 12..15 are qs, unused).
  const __m512i ta = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 4)));
  const __m512i tb = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 4)));
  // Sub-block j < 4: scale = s[j] & 63, min = s[j + 4] & 63. j >= 4:
  // scale = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, min = (s[j + 4] >> 4) |
  // (s[j] >> 6) << 4 (unpack_k_scale_min).
  const __m512i p_idx = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i q_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 16, 17, 18, 19);
  const __m512i p2_idx =
      _mm512_setr_epi32(4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 23, 24, 25, 26, 27);
  const __m512i q2_idx = _mm512_setr_epi32(0, 0, 0, 0, 4, 5, 6, 7, 0, 0, 0, 0, 20, 21, 22, 23);
  const __m512i low_mask =
      _mm512_setr_epi32(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
  const __m512i top_mask =
      _mm512_setr_epi32(0, 0, 0, 0, 48, 48, 48, 48, 0, 0, 0, 0, 48, 48, 48, 48);
  const __m512i min_shift = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4);
  const __m512i p = _mm512_permutex2var_epi32(ta, p_idx, tb);
  const __m512i q = _mm512_permutex2var_epi32(ta, q_idx, tb);
  const __m512i p2 = _mm512_permutex2var_epi32(ta, p2_idx, tb);
  const __m512i q2 = _mm512_permutex2var_epi32(ta, q2_idx, tb);
  const __m512i sc = _mm512_or_si512(_mm512_and_si512(p, low_mask),
                                     _mm512_and_si512(_mm512_srli_epi32(q, 2), top_mask));
  const __m512i mn = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(p2, min_shift), low_mask),
                                     _mm512_and_si512(_mm512_srli_epi32(q2, 2), top_mask));
  const __m512 d = SuperBlockF16(a, b, 0);
  const __m512 neg_dmin = _mm512_xor_ps(SuperBlockF16(a, b, 2), _mm512_set1_ps(-0.0f));
  *scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
  *min = _mm512_mul_ps(neg_dmin, _mm512_cvtepi32_ps(mn));
}

// KScalesMinsWhole for a packed group's heads (weight_packing.h): the same
// floats, from one byte per lane and two words of high bits instead of
// GGUF's 12-byte packing (its permutes and the two scalar f16 loads took
// ~40% of a Q4_K decode in cache). kHalf: a row's partial group (one
// super-block, 16 bytes of heads); lanes 8..15 read zero bytes and get
// what a zero-padded GGUF copy decodes to (scale +0, min -0).
template <bool kHalf = false>
inline void KScalesMinsPacked(const uint8_t* heads, __m512* scale, __m512* min) {
  __m512i t;
  uint32_t sc_high = 0, mn_high = 0;
  __m128i halves;  // f16 d_a, dmin_a, d_b, dmin_b
  if constexpr (kHalf) {
    t = _mm512_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(heads + 4)));
    uint16_t sc16, mn16;
    std::memcpy(&sc16, heads + 12, 2);
    std::memcpy(&mn16, heads + 14, 2);
    sc_high = sc16;
    mn_high = mn16;
    int32_t d_dmin;
    std::memcpy(&d_dmin, heads, 4);
    halves = _mm_cvtsi32_si128(d_dmin);
  } else {
    t = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(heads + 8)));
    std::memcpy(&sc_high, heads + 24, 4);
    std::memcpy(&mn_high, heads + 28, 4);
    halves = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(heads));
  }
  const __m512i two_l =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i three = _mm512_set1_epi32(3);
  const auto high = [&](uint32_t bits) {
    return _mm512_slli_epi32(
        _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int32_t>(bits)), two_l),
                         three),
        4);
  };
  const __m512i sc = _mm512_or_si512(_mm512_and_si512(t, _mm512_set1_epi32(15)), high(sc_high));
  const __m512i mn = _mm512_or_si512(_mm512_srli_epi32(t, 4), high(mn_high));
  // d_a, dmin_a, d_b, dmin_b: d to lanes 0-7 (a) and 8-15 (b), dmin too.
  const __m512 f = _mm512_castps128_ps512(_mm_cvtph_ps(halves));
  const __m512 d =
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2), f);
  const __m512 dmin =
      _mm512_permutexvar_ps(_mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3), f);
  const __m512 neg_dmin = _mm512_xor_ps(dmin, _mm512_set1_ps(-0.0f));
  *scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
  *min = _mm512_mul_ps(neg_dmin, _mm512_cvtepi32_ps(mn));
}

// KScales for two Q6_K super-blocks, in vectors: their int8 scales at sa,
// sb (16 each) and their f16 d at da, db (GGUF: a + 192, a + 208).
inline void Q6KScalesWhole(const uint8_t* sa, const uint8_t* sb, const uint8_t* da,
                           const uint8_t* db, __m512* scale, __m512* scale_hi) {
  const __m512i ta = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sa)));
  const __m512i tb = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb)));
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 d = SuperBlockF16(da, db, 0);
  *scale = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_permutex2var_epi32(ta, even, tb)));
  *scale_hi = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_permutex2var_epi32(ta, odd, tb)));
}

// One whole group decoded into registers: what DecodedGroup holds (q,
// scale, scale_hi for Q6_K, min for Q4_K/Q5_K; the others stay zero).
struct GroupRegs {
  __m512i q[kGroupVectors];
  __m512 scale, scale_hi, min;
};

template <DType kType>
HWY_INLINE void DecodeWholeRegs(const uint8_t* row, int64_t g, GroupRegs* out) {
  const __m512i nibble = _mm512_set1_epi32(0x0F0F0F0F);
  out->scale_hi = _mm512_setzero_ps();
  out->min = _mm512_setzero_ps();
  if constexpr (kType == DType::kQ8_0 || kType == DType::kQ4_0) {
    constexpr bool q8 = kType == DType::kQ8_0;
    constexpr int64_t bytes = q8 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
    const uint8_t* base = row + g * kGroupBlocks * bytes;
    // Plain 16-bit loads, not vpgatherdd: perf showed the gather taking
    // ~2/3 of the decoder's samples at M = 1 (it stalls on the group's
    // first DRAM miss without overlapping it with the following loads).
    alignas(32) uint16_t d[kGroupBlocks];
    for (int l = 0; l < kGroupBlocks; ++l) std::memcpy(&d[l], base + l * bytes, 2);
    out->scale = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d)));
    auto qs = [&](int l, int part) { return base + l * bytes + 2 + 16 * part; };
    for (int part = 0; part < (q8 ? 2 : 1); ++part) {
      __m512i v[4], t[4];
      for (int r = 0; r < 4; ++r)
        v[r] = Load4x128(qs(4 * r, part), qs(4 * r + 1, part), qs(4 * r + 2, part),
                         qs(4 * r + 3, part));
      TransposeBlocksOf4(v, t);
      for (int c = 0; c < 4; ++c) {
        if (q8) {
          out->q[4 * part + c] = _mm512_xor_si512(t[c], _mm512_set1_epi32(int32_t(0x80808080u)));
        } else {
          out->q[c] = _mm512_and_si512(t[c], nibble);
          out->q[c + 4] = _mm512_and_si512(_mm512_srli_epi32(t[c], 4), nibble);
        }
      }
    }
  } else if constexpr (kType == DType::kQ4_K || kType == DType::kQ5_K) {
    constexpr bool five = kType == DType::kQ5_K;
    constexpr int64_t bytes = five ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
    const uint8_t* a = row + g * 2 * bytes;
    const uint8_t* b = a + bytes;
    KScalesMinsWhole(a, b, &out->scale, &out->min);
    // Lane j of super-block a (j = 0..7; b: lanes 8..15), vector k: qs
    // dword 8 (j / 2) + k, nibble j % 2. The 128-bit loads put the dwords
    // of half k / 4 of the four 32-byte rows side by side, so one
    // two-table permute per k picks every lane.
    const uint8_t* qa = a + (five ? 48 : 16);
    const uint8_t* qb = b + (five ? 48 : 16);
    const __m512i shift = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    const __m512i base_idx =
        _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    __m512i qh = _mm512_setzero_si512();
    if constexpr (five) {
      qh = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 16))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)), 1);
    }
    for (int half = 0; half < 2; ++half) {
      const int at = 16 * half;
      const __m512i ta = Load4x128(qa + at, qa + 32 + at, qa + 64 + at, qa + 96 + at);
      const __m512i tb = Load4x128(qb + at, qb + 32 + at, qb + 64 + at, qb + 96 + at);
      for (int c = 0; c < 4; ++c) {
        const int k = 4 * half + c;
        __m512i v = _mm512_and_si512(
            _mm512_srlv_epi32(
                _mm512_permutex2var_epi32(ta, _mm512_add_epi32(base_idx, _mm512_set1_epi32(c)), tb),
                shift),
            nibble);
        if constexpr (five) {
          // The fifth bit of lane j: bit j of qh dword k (a) or 8 + k (b).
          const __m512i high_idx =
              _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8);
          const __m512i high_shift =
              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
          const __m512i bits =
              _mm512_permutexvar_epi32(_mm512_add_epi32(high_idx, _mm512_set1_epi32(k)), qh);
          v = _mm512_or_si512(
              v, _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(bits, high_shift),
                                                    _mm512_set1_epi32(0x01010101)),
                                   4));
        }
        out->q[k] = v;
      }
    }
  } else {  // Q6_K
    const uint8_t* a = row + g * 2 * sizeof(BlockQ6_K);
    const uint8_t* b = a + sizeof(BlockQ6_K);
    Q6KScalesWhole(a + 192, b + 192, a + 208, b + 208, &out->scale, &out->scale_hi);
    // Lane j (h = j / 4, s = j % 4), vector k: ql dword 8 (2 h + s % 2) + k
    // (row 2 h + s % 2 of 32 bytes), nibble s / 2; qh dword 8 h + k, bits
    // 2 s. Per half k / 4, 128-bit loads gather the four ql rows of a and
    // of b into two tables and the two qh rows of a and b into one.
    const __m512i shift = _mm512_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4);
    const __m512i high_shift = _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6);
    const __m512i low_idx =
        _mm512_setr_epi32(0, 4, 0, 4, 8, 12, 8, 12, 16, 20, 16, 20, 24, 28, 24, 28);
    const __m512i high_idx = _mm512_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
    const __m512i two = _mm512_set1_epi32(0x03030303);
    for (int half = 0; half < 2; ++half) {
      const int at = 16 * half;
      const __m512i ta = Load4x128(a + at, a + 32 + at, a + 64 + at, a + 96 + at);
      const __m512i tb = Load4x128(b + at, b + 32 + at, b + 64 + at, b + 96 + at);
      const __m512i th = Load4x128(a + 128 + at, a + 160 + at, b + 128 + at, b + 160 + at);
      for (int c = 0; c < 4; ++c) {
        const __m512i cc = _mm512_set1_epi32(c);
        const __m512i low = _mm512_and_si512(
            _mm512_srlv_epi32(_mm512_permutex2var_epi32(ta, _mm512_add_epi32(low_idx, cc), tb),
                              shift),
            nibble);
        const __m512i bits = _mm512_and_si512(
            _mm512_srlv_epi32(_mm512_permutexvar_epi32(_mm512_add_epi32(high_idx, cc), th),
                              high_shift),
            two);
        out->q[4 * half + c] = _mm512_or_si512(low, _mm512_slli_epi32(bits, 4));
      }
    }
  }
}

// Bytes of one whole group of kType (16 blocks of 32 values; for K-quants
// two super-blocks of 256).
template <DType kType>
constexpr int64_t GroupBytes() {
  if constexpr (kType == DType::kQ8_0) return kGroupBlocks * int64_t{sizeof(BlockQ8_0)};
  if constexpr (kType == DType::kQ4_0) return kGroupBlocks * int64_t{sizeof(BlockQ4_0)};
  if constexpr (kType == DType::kQ4_K) return 2 * int64_t{sizeof(BlockQ4_K)};
  if constexpr (kType == DType::kQ5_K) return 2 * int64_t{sizeof(BlockQ5_K)};
  return 2 * int64_t{sizeof(BlockQ6_K)};
}

// A whole group of a packed row (weight_packing.h for the layouts): the
// same registers as DecodeWholeRegs on the GGUF bytes, from plain loads.
// kHalf: a K-quant row's partial group, one super-block (8 lanes, vectors
// 32 bytes apart), loaded with a lane mask: lanes 8..15 get zero bytes and
// the scales and mins a zero-padded GGUF copy decodes to, so the
// registers equal DecodeAnyRegs's on the GGUF row.
template <DType kType, bool kHalf = false>
HWY_INLINE void DecodePackedRegs(const uint8_t* group, GroupRegs* out) {
  static_assert(!kHalf || kType == DType::kQ4_K || kType == DType::kQ5_K || kType == DType::kQ6_K);
  constexpr int64_t kStride = kHalf ? 32 : 64;  // bytes between vectors
  const __m512i nibble = _mm512_set1_epi32(0x0F0F0F0F);
  auto load = [](const uint8_t* p) {
    if constexpr (kHalf) {
      return _mm512_maskz_loadu_epi32(0x00FF, p);
    } else {
      return _mm512_loadu_si512(p);
    }
  };
  auto nibbles = [&](const uint8_t* vectors) {
    for (int c = 0; c < 4; ++c) {
      const __m512i t = load(vectors + kStride * c);
      out->q[c] = _mm512_and_si512(t, nibble);
      out->q[c + 4] = _mm512_and_si512(_mm512_srli_epi32(t, 4), nibble);
    }
  };
  out->scale_hi = _mm512_setzero_ps();
  out->min = _mm512_setzero_ps();
  if constexpr (kType == DType::kQ8_0 || kType == DType::kQ4_0) {
    out->scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(group)));
    if constexpr (kType == DType::kQ8_0) {
      for (int k = 0; k < kGroupVectors; ++k) out->q[k] = load(group + 32 + 64 * k);
    } else {
      nibbles(group + 32);
    }
  } else if constexpr (kType == DType::kQ4_K || kType == DType::kQ5_K) {
    constexpr int64_t kHeads = kHalf ? 16 : 32;
    KScalesMinsPacked<kHalf>(group, &out->scale, &out->min);
    nibbles(group + kHeads);
    if constexpr (kType == DType::kQ5_K) {
      const __m512i fifth = load(group + kHeads + 4 * kStride);
      const __m512i bit = _mm512_set1_epi32(0x01010101);
      for (int k = 0; k < kGroupVectors; ++k) {
        const __m512i bits = _mm512_and_si512(_mm512_srli_epi32(fifth, k), bit);
        out->q[k] = _mm512_or_si512(out->q[k], _mm512_slli_epi32(bits, 4));
      }
    }
  } else {
    static_assert(kType == DType::kQ6_K);
    constexpr int64_t kHeads = kHalf ? 18 : 36;
    if constexpr (kHalf) {
      alignas(16) static constexpr uint8_t kZeros[18] = {};  // the absent super-block's scales, d
      Q6KScalesWhole(group, kZeros, group + 16, kZeros + 16, &out->scale, &out->scale_hi);
    } else {
      Q6KScalesWhole(group, group + 18, group + 16, group + 34, &out->scale, &out->scale_hi);
    }
    nibbles(group + kHeads);
    const __m512i two = _mm512_set1_epi32(0x03030303);
    for (int c = 0; c < 2; ++c) {
      const __m512i h = load(group + kHeads + 4 * kStride + kStride * c);
      for (int j = 0; j < 4; ++j) {
        const __m512i bits = _mm512_and_si512(_mm512_srli_epi32(h, 2 * j), two);
        out->q[c + 2 * j] = _mm512_or_si512(out->q[c + 2 * j], _mm512_slli_epi32(bits, 4));
      }
    }
  }
}

// A packed Q8_0 / Q4_0 group of `blocks` blocks (weight_packing.h: a
// partial group has `blocks` lanes, its vectors 4 x blocks bytes apart):
// lanes from `blocks` on get zero bytes and a zero scale. Their sums are
// then zero, as with DecodeAnyRegs's zero-padded copy (the activations
// past the row end are zero), so every output keeps its bits.
template <DType kType>
HWY_INLINE void DecodePackedSimpleRegs(const uint8_t* group, int blocks, GroupRegs* out) {
  static_assert(kType == DType::kQ8_0 || kType == DType::kQ4_0);
  const auto lanes = static_cast<__mmask16>((1u << blocks) - 1);
  const int64_t stride = 4 * blocks;
  const uint8_t* vectors = group + 2 * blocks;
  out->scale = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, group));
  out->scale_hi = _mm512_setzero_ps();
  out->min = _mm512_setzero_ps();
  if constexpr (kType == DType::kQ8_0) {
    for (int k = 0; k < kGroupVectors; ++k) {
      out->q[k] = _mm512_maskz_loadu_epi32(lanes, vectors + stride * k);
    }
  } else {
    const __m512i nibble = _mm512_set1_epi32(0x0F0F0F0F);
    for (int c = 0; c < 4; ++c) {
      const __m512i t = _mm512_maskz_loadu_epi32(lanes, vectors + stride * c);
      out->q[c] = _mm512_and_si512(t, nibble);
      out->q[c + 4] = _mm512_and_si512(_mm512_srli_epi32(t, 4), nibble);
    }
  }
}

// Whole group g of a GGUF row or, when `packed`, of a packed one.
template <DType kType>
HWY_INLINE void DecodeWholeRegsOf(const uint8_t* row, bool packed, int64_t g, GroupRegs* out) {
  if (packed) return DecodePackedRegs<kType>(row + g * GroupBytes<kType>(), out);
  DecodeWholeRegs<kType>(row, g, out);
}

// Group g of a row of n_in values, whole or partial (the row's last when
// n_in is not a multiple of kGroupValues), of a GGUF row or, when
// `packed`, of a packed one (weight_packing.h). A packed partial group
// is read with lane masks (DecodePackedSimpleRegs; DecodePackedRegs with
// kHalf for K-quants); a GGUF one is decoded from a zero-padded copy:
// zero bytes decode to a scale of 0 (and the values the gather
// decoder gives lanes past the row end), so the registers are the same as
// DecodeGroupGather's, without its gathers. A model 384 wide has only
// partial groups: perf showed 70% of its decode pass in the gathers.
template <DType kType>
HWY_INLINE void DecodeAnyRegs(const uint8_t* row, bool packed, int64_t n_in, int64_t g,
                              GroupRegs* out) {
  constexpr int64_t kBytes = GroupBytes<kType>();
  if ((g + 1) * kGroupValues <= n_in) return DecodeWholeRegsOf<kType>(row, packed, g, out);
  // The group's values present in the row are whole blocks (K-quants:
  // whole super-blocks of 256), so their bytes are that share of a group's.
  const int64_t present = n_in - g * kGroupValues;
  if (packed) {
    if constexpr (kType == DType::kQ8_0 || kType == DType::kQ4_0) {
      return DecodePackedSimpleRegs<kType>(row + g * kBytes, static_cast<int>(present / 32), out);
    } else {
      return DecodePackedRegs<kType, true>(row + g * kBytes, out);
    }
  }
  const int64_t bytes = kBytes * present / kGroupValues;
  alignas(64) uint8_t padded[kBytes];
  std::memcpy(padded, row + g * kBytes, static_cast<size_t>(bytes));
  std::memset(padded + bytes, 0, static_cast<size_t>(kBytes - bytes));
  DecodeWholeRegs<kType>(padded, 0, out);
}

// Always true on these targets (partial groups through DecodeAnyRegs); the
// bool keeps the callers' fallback for the others.
template <DType kType>
HWY_INLINE bool DecodeWholeGroup(const uint8_t* row, bool packed, int64_t n_in, int64_t g,
                                 DecodedGroup* out) {
  GroupRegs w;
  DecodeAnyRegs<kType>(row, packed, n_in, g, &w);
  for (int k = 0; k < kGroupVectors; ++k) _mm512_store_si512(out->q[k], w.q[k]);
  _mm512_store_ps(out->scale, w.scale);
  _mm512_store_ps(out->scale_hi, w.scale_hi);
  _mm512_store_ps(out->min, w.min);
  return true;
}

// A group decoded into memory (a partial one) back into registers.
HWY_INLINE void LoadGroupRegs(const DecodedGroup& in, GroupRegs* out) {
  for (int k = 0; k < kGroupVectors; ++k) out->q[k] = _mm512_load_si512(in.q[k]);
  out->scale = _mm512_load_ps(in.scale);
  out->scale_hi = _mm512_load_ps(in.scale_hi);
  out->min = _mm512_load_ps(in.min);
}
#endif  // AVX3 or AVX3_DL: whole groups

#endif  // x86: AVX2, AVX3, AVX3_DL

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#endif  // SPECULA_KERNELS_MATMUL_INT_DECODE_INL_H_ toggle

// Integer-dot matmul kernels (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), compiled once
// per instruction set by Highway's foreach_target and chosen at run time.
//
// Data layout and arithmetic: quant_decode.h. Per weight row, every group
// of 16 blocks is decoded once (gathers put block l's bytes in 32-bit lane
// l) into a per-thread scratch row in L1; then tiles of up to 8 activation
// rows run over the decoded row:
//   AVX3_DL: vpdpbusd (AVX-512 VNNI): 8 instructions per 512 values per
//            activation row, then one multiply + one FMA for 16 blocks.
//   AVX3, AVX2: the same with pmaddubsw + pmaddwd on 256-bit halves.
//   others (SSE4, SSSE3, NEON, scalar): the plain code of quant_decode.h.
//
// hot: DotRows* are where quantized decoding spends its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_int_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <hwy/cache_control.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ------------------------------------------------------------ activations

// prepare_activation_row, vectorized; writes the same bytes.
void PrepareActivationRow(const float* x, int64_t n, int8_t* values, float* scales,
                          int32_t* neg_sums, int32_t* neg_sums_lo, float* scaled_sums) {
  const hn::CappedTag<float, 16> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int nf = static_cast<int>(hn::Lanes(df));
  const int64_t n_groups = groups_for(n);
  std::fill(values, values + n_groups * kGroupValues, int8_t{0});
  for (int64_t b = 0; b < n_groups * kGroupBlocks; ++b) {
    if (32 * b >= n) {
      scales[b] = scaled_sums[b] = 0.0f;
      neg_sums[b] = neg_sums_lo[b] = 0;
      continue;
    }
    const float* xb = x + 32 * b;
    auto vmax = hn::Zero(df);
    for (int t = 0; t < 32; t += nf) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + t)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float scale = amax / 127.0f;
    const auto inverse = hn::Set(df, scale > 0.0f ? 127.0f / amax : 0.0f);
    alignas(64) int8_t bytes[32];
    int32_t sum_lo = 0, sum = 0;
    for (int t = 0; t < 32; t += nf) {
      const auto v = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + t), inverse));
      hn::StoreU(hn::DemoteTo(d8, v), d8, bytes + t);
      if (t < 16) {  // nf <= 16: a chunk never straddles the halves
        sum_lo += static_cast<int32_t>(hn::GetLane(hn::SumOfLanes(di, v)));
      } else {
        sum += static_cast<int32_t>(hn::GetLane(hn::SumOfLanes(di, v)));
      }
    }
    sum += sum_lo;
    int8_t* group = values + (b / kGroupBlocks) * kGroupValues;
    const int l = static_cast<int>(b % kGroupBlocks);
    for (int k = 0; k < kGroupVectors; ++k)
      std::memcpy(group + group_byte(l, 4 * k), bytes + 4 * k, 4);
    scales[b] = scale;
    neg_sums[b] = -sum;
    neg_sums_lo[b] = -sum_lo;
    scaled_sums[b] = scale * static_cast<float>(sum);
  }
}

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
    switch (type) {
      case DType::kQ8_0: {
        // u = q + 128 = q ^ 0x80 per byte. Lanes past the row end decode
        // as 128, not 0, but their scale and activations are 0.
        V::StoreF16Scales(out->scale + l0, V::Gather(base, V::Load(plan.scale + l0), valid));
        const auto flip = V::Set(static_cast<int32_t>(0x80808080u));
        for (int k = 0; k < 8; ++k)
          store(k, V::Xor(V::Gather(base, V::Add(low, V::Set(4 * k)), valid), flip));
        break;
      }
      case DType::kQ4_0: {
        V::StoreF16Scales(out->scale + l0, V::Gather(base, V::Load(plan.scale + l0), valid));
        for (int k = 0; k < 4; ++k) {
          const auto bytes = V::Gather(base, V::Add(low, V::Set(4 * k)), valid);
          store(k, V::And(bytes, nibble));
          store(k + 4, V::And(V::Shr(bytes, V::Set(4)), nibble));
        }
        break;
      }
      case DType::kQ4_K: {
        const auto shift = V::Load(plan.low_shift + l0);
        for (int k = 0; k < 8; ++k) {
          const auto bytes = V::Gather(base, V::Add(low, V::Set(4 * k)), valid);
          store(k, V::And(V::Shr(bytes, shift), nibble));
        }
        break;
      }
      case DType::kQ5_K: {
        const auto shift = V::Load(plan.low_shift + l0);
        const auto high = V::Load(plan.high + l0);
        const auto high_shift = V::Load(plan.high_shift + l0);
        const auto one = V::Set(0x01010101);
        for (int k = 0; k < 8; ++k) {
          const auto bytes = V::Gather(base, V::Add(low, V::Set(4 * k)), valid);
          const auto bits = V::Gather(base, V::Add(high, V::Set(4 * k)), valid);
          store(k, V::Or(V::And(V::Shr(bytes, shift), nibble),
                         V::Shl4(V::And(V::Shr(bits, high_shift), one))));
        }
        break;
      }
      default: {  // Q6_K
        const auto shift = V::Load(plan.low_shift + l0);
        const auto high = V::Load(plan.high + l0);
        const auto high_shift = V::Load(plan.high_shift + l0);
        const auto two = V::Set(0x03030303);
        for (int k = 0; k < 8; ++k) {
          const auto bytes = V::Gather(base, V::Add(low, V::Set(4 * k)), valid);
          const auto bits = V::Gather(base, V::Add(high, V::Set(4 * k)), valid);
          store(k, V::Or(V::And(V::Shr(bytes, shift), nibble),
                         V::Shl4(V::And(V::Shr(bits, high_shift), two))));
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

// KScales for the two Q6_K super-blocks a, b of a whole group, in vectors.
inline void Q6KScalesWhole(const uint8_t* a, const uint8_t* b, __m512* scale, __m512* scale_hi) {
  const __m512i ta =
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 192)));
  const __m512i tb =
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 d = SuperBlockF16(a, b, 208);
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
    Q6KScalesWhole(a, b, &out->scale, &out->scale_hi);
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

template <DType kType>
void StoreWholeGroup(const uint8_t* row, int64_t g, DecodedGroup* out) {
  GroupRegs w;
  DecodeWholeRegs<kType>(row, g, &w);
  for (int k = 0; k < kGroupVectors; ++k) _mm512_store_si512(out->q[k], w.q[k]);
  _mm512_store_ps(out->scale, w.scale);
  _mm512_store_ps(out->scale_hi, w.scale_hi);
  _mm512_store_ps(out->min, w.min);
}

// Returns false (nothing written) for a partial group.
bool DecodeWholeGroup(DType type, const uint8_t* row, int64_t n_in, int64_t g, DecodedGroup* out) {
  if ((g + 1) * kGroupBlocks * 32 > n_in) return false;
  switch (type) {
    case DType::kQ8_0:
      StoreWholeGroup<DType::kQ8_0>(row, g, out);
      break;
    case DType::kQ4_0:
      StoreWholeGroup<DType::kQ4_0>(row, g, out);
      break;
    case DType::kQ4_K:
      StoreWholeGroup<DType::kQ4_K>(row, g, out);
      break;
    case DType::kQ5_K:
      StoreWholeGroup<DType::kQ5_K>(row, g, out);
      break;
    default:
      StoreWholeGroup<DType::kQ6_K>(row, g, out);
      break;
  }
  return true;
}
#endif

// ------------------------------------------------------------ x86 dots

// The template parameters pick the per-type arithmetic of quant_decode.h:
// kBiasShift = log2(bias) or -1 for none; kHalves: Q6_K's two scales per
// block; kMin: the Q4_K/Q5_K mins; kSigned: Q8_0 without VNNI, where the
// weights go back to int8 for the sign trick of pmaddubsw.

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd needs AVX512_VNNI, which Highway's AVX3_DL target requires at
// run time but does not name among its compile flags.
#pragma GCC push_options
#pragma GCC target("avx512vnni")

// One group for MT activation rows from m0: adds block l's scaled dot to
// lane l of acc[i]. The same arithmetic, in the same order, for a group
// decoded into scratch (DotRows) or straight into registers (FusedRows),
// so a row's result does not depend on which path or tile ran it.
template <int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_INLINE void DotGroup(const __m512i w[8], __m512 ws, __m512 ws_hi, __m512 wmin,
                         const ActivationRows& a, int64_t m0, int64_t g, __m512 acc[MT]) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  // One chain of 8 dependent vpdpbusd per group is latency-bound when few
  // rows run side by side: split it in two then (exact integer sums).
  constexpr bool kSplit = MT <= 4;
  for (int i = 0; i < MT; ++i) {
    const int64_t at = (m0 + i) * per_row + g * kGroupBlocks;
    const int8_t* x = a.values + at * 32;
    const __m512 dx = _mm512_load_ps(a.scales + at);
    if constexpr (kHalves) {
      const __m512i neg = _mm512_load_si512(a.neg_sums + at);
      const __m512i neg_lo = _mm512_load_si512(a.neg_sums_lo + at);
      __m512i lo = _mm512_slli_epi32(neg_lo, kBiasShift);
      __m512i hi = _mm512_slli_epi32(_mm512_sub_epi32(neg, neg_lo), kBiasShift);
      for (int k = 0; k < 4; ++k) {
        lo = _mm512_dpbusd_epi32(lo, w[k], _mm512_load_si512(x + 64 * k));
        hi = _mm512_dpbusd_epi32(hi, w[k + 4], _mm512_load_si512(x + 64 * (k + 4)));
      }
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), _mm512_mul_ps(ws, dx), acc[i]);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), _mm512_mul_ps(ws_hi, dx), acc[i]);
    } else {
      __m512i s0 = kBiasShift >= 0 ? _mm512_slli_epi32(_mm512_load_si512(a.neg_sums + at),
                                                       kBiasShift >= 0 ? kBiasShift : 0)
                                   : _mm512_setzero_si512();
      __m512i s1 = _mm512_setzero_si512();
      for (int k = 0; k < 8; k += 2) {
        s0 = _mm512_dpbusd_epi32(s0, w[k], _mm512_load_si512(x + 64 * k));
        if constexpr (kSplit) {
          s1 = _mm512_dpbusd_epi32(s1, w[k + 1], _mm512_load_si512(x + 64 * (k + 1)));
        } else {
          s0 = _mm512_dpbusd_epi32(s0, w[k + 1], _mm512_load_si512(x + 64 * (k + 1)));
        }
      }
      if constexpr (kSplit) s0 = _mm512_add_epi32(s0, s1);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(ws, dx), acc[i]);
      if constexpr (kMin) {
        acc[i] = _mm512_fmadd_ps(wmin, _mm512_load_ps(a.scaled_sums + at), acc[i]);
      }
    }
  }
}

template <int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_NOINLINE void DotRows(const DecodedGroup* dec, const ActivationRows& a, int64_t m0,
                          float* out) {
  __m512 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const DecodedGroup& d = dec[g];
    __m512i w[8];
    for (int k = 0; k < 8; ++k) w[k] = _mm512_load_si512(d.q[k]);
    const __m512 ws_hi = kHalves ? _mm512_load_ps(d.scale_hi) : _mm512_setzero_ps();
    const __m512 wmin = kMin ? _mm512_load_ps(d.min) : _mm512_setzero_ps();
    DotGroup<MT, kBiasShift, kHalves, kMin>(w, _mm512_load_ps(d.scale), ws_hi, wmin, a, m0, g, acc);
  }
  for (int i = 0; i < MT; ++i) out[i] = _mm512_reduce_add_ps(acc[i]);
}

// Decode (m = 1) and m = 2: each whole group goes from memory straight into
// registers and into the dot, with no decoded row written and re-read;
// partial groups take the gather decoder through a stack scratch.
template <DType kType, int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_NOINLINE void FusedRows(const MatmulJob& job, const GatherPlan& plan, int64_t row_begin,
                            int64_t row_end) {
  const int64_t n_groups = job.acts.n_groups;
  const int64_t whole = job.n_in / kGroupValues;
  // Bytes of the next row to prefetch per group (rows are short, 1-4 KB,
  // so the hardware streamer, which stops at 4 KB pages, starts late).
  const int64_t prefetch_step = static_cast<int64_t>(
      (job.row_bytes + static_cast<uint64_t>(n_groups) - 1) / static_cast<uint64_t>(n_groups));
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = job.weights + r * row_bytes;
    const uint8_t* next = row + row_bytes;
    const bool prefetch = r + 1 < row_end;
    __m512 acc[MT];
    for (int i = 0; i < MT; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t g = 0; g < n_groups; ++g) {
      if (prefetch) {
        const int64_t to = std::min(row_bytes, (g + 1) * prefetch_step);
        for (int64_t at = g * prefetch_step; at < to; at += 64) hwy::Prefetch(next + at);
      }
      GroupRegs w;
      if (g < whole) {
        DecodeWholeRegs<kType>(row, g, &w);
      } else {
        DecodedGroup part{};
        DecodeGroupGather(kType, plan, row, job.n_in, g, &part);
        for (int k = 0; k < 8; ++k) w.q[k] = _mm512_load_si512(part.q[k]);
        w.scale = _mm512_load_ps(part.scale);
        w.scale_hi = _mm512_load_ps(part.scale_hi);
        w.min = _mm512_load_ps(part.min);
      }
      DotGroup<MT, kBiasShift, kHalves, kMin>(w.q, w.scale, w.scale_hi, w.min, job.acts, 0, g, acc);
    }
    for (int i = 0; i < MT; ++i) job.y[i * job.n_out + r] = _mm512_reduce_add_ps(acc[i]);
  }
}

#pragma GCC pop_options
constexpr int kTileM = 8;

#else  // AVX3 or AVX2: pmaddubsw + pmaddwd on 256-bit halves of a group

template <int MT, int kBiasShift, bool kHalves, bool kMin, bool kSigned>
HWY_NOINLINE void DotRows(const DecodedGroup* dec, const ActivationRows& a, int64_t m0,
                          float* out) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g = 0; g < a.n_groups; ++g) {
    const DecodedGroup& d = dec[g];
    for (int half = 0; half < 2; ++half) {
      const int l0 = 8 * half;
      __m256i w[8];
      for (int k = 0; k < 8; ++k) {
        w[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(&d.q[k][l0][0]));
        // Q8_0: back to int8; pmaddubsw then takes |w| and x with w's sign
        // (u8 128 + 127 would saturate its int16 pair sums).
        if constexpr (kSigned) w[k] = _mm256_xor_si256(w[k], flip);
      }
      const __m256 ws = _mm256_load_ps(d.scale + l0);
      for (int i = 0; i < MT; ++i) {
        const int64_t at = (m0 + i) * per_row + g * kGroupBlocks + l0;
        const int8_t* x = a.values + (at - l0) * 32 + 4 * l0;
        const __m256 dx = _mm256_load_ps(a.scales + at);
        auto dot = [&](int k) {
          const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 64 * k));
          const __m256i p = kSigned ? _mm256_maddubs_epi16(_mm256_sign_epi8(w[k], w[k]),
                                                           _mm256_sign_epi8(xv, w[k]))
                                    : _mm256_maddubs_epi16(w[k], xv);
          return _mm256_madd_epi16(p, ones);
        };
        if constexpr (kHalves) {
          const __m256i neg = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums + at));
          const __m256i neg_lo =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums_lo + at));
          __m256i lo = _mm256_slli_epi32(neg_lo, kBiasShift);
          __m256i hi = _mm256_slli_epi32(_mm256_sub_epi32(neg, neg_lo), kBiasShift);
          for (int k = 0; k < 4; ++k) {
            lo = _mm256_add_epi32(lo, dot(k));
            hi = _mm256_add_epi32(hi, dot(k + 4));
          }
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_mul_ps(ws, dx), acc[i]);
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi),
                                   _mm256_mul_ps(_mm256_load_ps(d.scale_hi + l0), dx), acc[i]);
        } else {
          __m256i s =
              kBiasShift >= 0
                  ? _mm256_slli_epi32(
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(a.neg_sums + at)),
                        kBiasShift >= 0 ? kBiasShift : 0)
                  : _mm256_setzero_si256();
          for (int k = 0; k < 8; ++k) s = _mm256_add_epi32(s, dot(k));
          acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, dx), acc[i]);
          if constexpr (kMin) {
            acc[i] = _mm256_fmadd_ps(_mm256_load_ps(d.min + l0), _mm256_load_ps(a.scaled_sums + at),
                                     acc[i]);
          }
        }
      }
    }
  }
  for (int i = 0; i < MT; ++i) {
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
    const __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
    out[i] = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
  }
}

constexpr int kTileM = 4;  // 16 ymm registers: 8 weights + 4 accumulators + temporaries
#endif

// Runs tiles of up to kTileM activation rows over one decoded weight row.
template <int kBiasShift, bool kHalves, bool kMin, bool kSigned>
void DotAllRows(const MatmulJob& job, const DecodedGroup* dec, int64_t r) {
  float out[kTileM];
  for (int64_t m0 = 0; m0 < job.m; m0 += kTileM) {
    const int mt = static_cast<int>(std::min<int64_t>(kTileM, job.m - m0));
#if HWY_TARGET == HWY_AVX3_DL
#define SPECULA_DOT(n) DotRows<n, kBiasShift, kHalves, kMin>(dec, job.acts, m0, out)
#else
#define SPECULA_DOT(n) DotRows<n, kBiasShift, kHalves, kMin, kSigned>(dec, job.acts, m0, out)
#endif
    switch (mt) {
      case 1:
        SPECULA_DOT(1);
        break;
      case 2:
        SPECULA_DOT(2);
        break;
      case 3:
        SPECULA_DOT(3);
        break;
#if HWY_TARGET == HWY_AVX3_DL
      case 4:
        SPECULA_DOT(4);
        break;
      case 5:
        SPECULA_DOT(5);
        break;
      case 6:
        SPECULA_DOT(6);
        break;
      case 7:
        SPECULA_DOT(7);
        break;
      default:
        SPECULA_DOT(8);
        break;
#else
      default:
        SPECULA_DOT(4);
        break;
#endif
    }
#undef SPECULA_DOT
    for (int i = 0; i < mt; ++i) job.y[(m0 + i) * job.n_out + r] = out[i];
  }
}

template <DType kType, int kBiasShift, bool kHalves, bool kMin, bool kSigned>
void IntRowsOf(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  static const GatherPlan plan = MakePlan(kType);
#if HWY_TARGET == HWY_AVX3_DL
  switch (job.m) {
    case 1:
      return FusedRows<kType, 1, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 2:
      return FusedRows<kType, 2, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 3:
      return FusedRows<kType, 3, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 4:
      return FusedRows<kType, 4, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 5:
      return FusedRows<kType, 5, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 6:
      return FusedRows<kType, 6, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 7:
      return FusedRows<kType, 7, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    case 8:
      return FusedRows<kType, 8, kBiasShift, kHalves, kMin>(job, plan, row_begin, row_end);
    default:
      break;
  }
#endif
  DecodedGroup* dec = thread_decoded_row(job.acts.n_groups);
  const int64_t n_groups = job.acts.n_groups;
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
  const int64_t prefetch_step = (row_bytes + n_groups - 1) / n_groups;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = job.weights + r * row_bytes;
    // The next row, one row ahead: rows are short (1-4 KB), so the hardware
    // streamer, which stops at 4 KB pages, often starts too late.
    const uint8_t* next = row + row_bytes;
    const bool prefetch = r + 1 < row_end;
    for (int64_t g = 0; g < n_groups; ++g) {
      if (prefetch) {
        const int64_t to = std::min(row_bytes, (g + 1) * prefetch_step);
        for (int64_t at = g * prefetch_step; at < to; at += 64) hwy::Prefetch(next + at);
      }
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
      if (DecodeWholeGroup(kType, row, job.n_in, g, dec + g)) continue;
#endif
      DecodeGroupGather(kType, plan, row, job.n_in, g, dec + g);
    }
    DotAllRows<kBiasShift, kHalves, kMin, kSigned>(job, dec, r);
  }
}

void IntRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  switch (job.type) {
    case DType::kQ8_0:
#if HWY_TARGET == HWY_AVX3_DL
      return IntRowsOf<DType::kQ8_0, 7, false, false, false>(job, row_begin, row_end);
#else
      return IntRowsOf<DType::kQ8_0, -1, false, false, true>(job, row_begin, row_end);
#endif
    case DType::kQ4_0:
      return IntRowsOf<DType::kQ4_0, 3, false, false, false>(job, row_begin, row_end);
    case DType::kQ4_K:
      return IntRowsOf<DType::kQ4_K, -1, false, true, false>(job, row_begin, row_end);
    case DType::kQ5_K:
      return IntRowsOf<DType::kQ5_K, -1, false, true, false>(job, row_begin, row_end);
    default:  // Q6_K
      return IntRowsOf<DType::kQ6_K, 5, true, false, false>(job, row_begin, row_end);
  }
}

#else  // no x86 kernels for this target: the plain code

void IntRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  const ActivationRows& a = job.acts;
  const int64_t per_row = a.n_groups * kGroupBlocks;
  DecodedGroup* dec = thread_decoded_row(a.n_groups);
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = job.weights + r * job.row_bytes;
    for (int64_t g = 0; g < a.n_groups; ++g) decode_group(job.type, row, job.n_in, g, dec + g);
    for (int64_t i = 0; i < job.m; ++i) {
      float sum = 0.0f;
      for (int64_t g = 0; g < a.n_groups; ++g) {
        const int64_t at = i * per_row + g * kGroupBlocks;
        sum += dot_group(job.type, dec[g], a.values + at * 32, a.scales + at, a.neg_sums + at,
                         a.neg_sums_lo + at, a.scaled_sums + at);
      }
      job.y[i * job.n_out + r] = sum;
    }
  }
}

#endif  // x86 with AVX2

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(IntRows);
HWY_EXPORT(PrepareActivationRow);

void matmul_int_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(IntRows)(job, row_begin, row_end);
}

void prepare_activation_row_simd(const float* x, int64_t n, int8_t* values, float* scales,
                                 int32_t* neg_sums, int32_t* neg_sums_lo, float* scaled_sums) {
  HWY_DYNAMIC_DISPATCH(PrepareActivationRow)
  (x, n, values, scales, neg_sums, neg_sums_lo, scaled_sums);
}

}  // namespace specula
#endif  // HWY_ONCE

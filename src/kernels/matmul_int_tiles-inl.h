// Register-blocked integer dots for 4 or more activation rows (Q6_K: 5),
// AVX3_DL (vpdpbusd): the verification and prefill kernel of
// matmul_int_simd.cpp, for every integer type.
// Included by that file once per target, inside its namespace and inside
// its AVX-512 VNNI attribute region, after DotGroup and FusedRows (whose
// helpers it uses); it has no include guard for that reason.
//
// FusedRows and DotRows run one weight row at a time: every vpdpbusd reads
// its activation vector from memory (Zen 4 here sustains about as many
// 512-bit loads as vpdpbusd per second, from L1), and FusedRows spills its
// accumulators past 4 rows. Here kTileRows weight rows are decoded group by
// group into an L1 scratch, and tiles of kTileRows x MT (weight row,
// activation row) pairs keep their integer sums in registers: per vector
// k of a group, kTileRows weight loads and MT activation loads feed
// kTileRows x MT vpdpbusd. The float running sums live in a per-thread
// array between groups.
//
// Every pair sees exactly the arithmetic of DotGroup: the same exact
// integer sum per block, then acc = fma(float(s), ws * dx, acc) (and the
// min term), group after group, and the same final reduce_add; so a row's
// outputs are bit-identical to m = 1 and to every other tile.

constexpr int kTileRows = 4;  // weight rows per block
constexpr int kTileActs = 4;  // activation rows per tile: 16 sums + 4 weights in registers

// The integer sums' starting values for tile (r, i) of group g: the bias
// correction of the activation row (kHalves, Q6_K: of vectors 0..3 for
// part 0, 4..7 for part 1), the same for every weight row.
template <int R, int MT, int kBiasShift, bool kHalves>
HWY_INLINE void TileSumsInit(const ActivationRows& a, int64_t m0, int64_t g, int part,
                             __m512i (&s)[R][MT]) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  for (int i = 0; i < MT; ++i) {
    const int64_t at = (m0 + i) * per_row + g * kGroupBlocks;
    __m512i init = _mm512_setzero_si512();
    if constexpr (kHalves) {
      const __m512i neg_lo = _mm512_load_si512(a.neg_sums_lo + at);
      const __m512i neg =
          part == 0 ? neg_lo : _mm512_sub_epi32(_mm512_load_si512(a.neg_sums + at), neg_lo);
      init = _mm512_slli_epi32(neg, kBiasShift);
    } else if constexpr (kBiasShift >= 0) {
      init = _mm512_slli_epi32(_mm512_load_si512(a.neg_sums + at), kBiasShift);
    }
    for (int r = 0; r < R; ++r) s[r][i] = init;
  }
}

// Adds the tile's scaled sums to the running float sums (DotGroup's
// arithmetic): acc + (r m + i) 16 = fma(float(s), ws[r] * dx, acc) (and
// the min term). first: the row's first sums (group 0, Q6_K's part 0),
// added to +0 rather than to acc, which then needs no zeroing (a 16 KB
// memset per block of rows at m = 64, ~2.7% of a Q4_K_M prefill).
template <int R, int MT, bool kMin>
HWY_INLINE void TileSumsAdd(const __m512i (&s)[R][MT], const __m512* ws, const __m512* wmin,
                            const ActivationRows& a, int64_t m, int64_t m0, int64_t g, bool first,
                            float* HWY_RESTRICT acc) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  for (int i = 0; i < MT; ++i) {
    const int64_t at = (m0 + i) * per_row + g * kGroupBlocks;
    const __m512 dx = _mm512_load_ps(a.scales + at);
    for (int r = 0; r < R; ++r) {
      float* p = acc + (r * m + m0 + i) * 16;
      const __m512 before = first ? _mm512_setzero_ps() : _mm512_load_ps(p);
      __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][i]), _mm512_mul_ps(ws[r], dx), before);
      if constexpr (kMin) v = _mm512_fmadd_ps(wmin[r], _mm512_load_ps(a.scaled_sums + at), v);
      _mm512_store_ps(p, v);
    }
  }
}

// Group g for weight rows dec[0..R) and activation rows [m0, m0 + MT):
// acc + (r m + i) 16 holds pair (r, i)'s running float sums. kHalves
// (Q6_K): vectors 0..3 and 4..7 have scales of their own, so their sums
// are scaled and added one after the other, as DotGroup does.
template <int R, int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_INLINE void TileGroup(const DecodedGroup* dec, const ActivationRows& a, int64_t m, int64_t m0,
                          int64_t g, float* HWY_RESTRICT acc) {
  static_assert(!(kHalves && kMin));
  constexpr int kParts = kHalves ? 2 : 1;
  constexpr int kPartVectors = kGroupVectors / kParts;
  const int64_t per_row = a.n_groups * kGroupBlocks;
  const int8_t* x[MT];
  for (int i = 0; i < MT; ++i) x[i] = a.values + ((m0 + i) * per_row + g * kGroupBlocks) * 32;
  for (int part = 0; part < kParts; ++part) {
    __m512i s[R][MT];
    TileSumsInit<R, MT, kBiasShift, kHalves>(a, m0, g, part, s);
    for (int k = part * kPartVectors; k < (part + 1) * kPartVectors; ++k) {
      __m512i w[R];
      for (int r = 0; r < R; ++r) w[r] = _mm512_load_si512(dec[r].q[k]);
      for (int i = 0; i < MT; ++i) {
        const __m512i xv = _mm512_load_si512(x[i] + 64 * k);
        for (int r = 0; r < R; ++r) s[r][i] = _mm512_dpbusd_epi32(s[r][i], w[r], xv);
      }
    }
    __m512 ws[R], wmin[R];
    for (int r = 0; r < R; ++r) {
      ws[r] = _mm512_load_ps(part == 0 ? dec[r].scale : dec[r].scale_hi);
      wmin[r] = kMin ? _mm512_load_ps(dec[r].min) : _mm512_setzero_ps();
    }
    TileSumsAdd<R, MT, kMin>(s, ws, wmin, a, m, m0, g, g == 0 && part == 0, acc);
  }
}

// Each byte's high nibble (x >> 4) in one GF2P8AFFINEQB: the qword holds
// the bit matrix, one byte per result bit, most significant byte first
// (result bit i = input bit i + 4 for i < 4, 0 above). Inline assembly,
// so that the code around it stays free of GFNI instructions on CPUs
// without it (simd_gfni() picks this path at run time).
HWY_INLINE __m512i HighNibblesGfni(__m512i bytes) {
  const __m512i shift4 = _mm512_set1_epi64(0x1020408000000000LL);
  __m512i out;
  asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(bytes), "v"(shift4));
  return out;
}

// Group g of R packed Q8_0, Q4_0 or Q4_K rows (weight_packing.h) for
// activation rows [m0, m0 + MT): TileGroup's arithmetic with the weights
// decoded in registers, vector by vector, for every tile of activation
// rows: Q8_0's packed bytes are the dot's operands as they are, 4-bit
// values need a mask (and a shift for the high nibbles). Writing the
// decoded group to an L1 scratch and reading it back per tile took ~25%
// of a Q4_0 / Q8_0 tile at m = 8 (kernels_bench, in cache).
// group[r]: row r's packed group; ws[r], wmin[r]: its scales and mins.
// kGfni: high nibbles through HighNibblesGfni (simd_gfni). kPartial: a
// row's partial last group of `blocks` blocks (Q4_K: 8, one super-block),
// whose vectors are 4 x blocks bytes apart, loaded with a lane mask
// (lanes from `blocks` on read as zero: DecodePackedSimpleRegs,
// DecodePackedRegs<kType, true>).
template <DType kType, int R, int MT, int kBiasShift, bool kMin, bool kGfni, bool kPartial = false>
HWY_INLINE void TilePackedGroup(const uint8_t* const* group, const __m512* ws, const __m512* wmin,
                                const ActivationRows& a, int64_t m, int64_t m0, int64_t g,
                                float* HWY_RESTRICT acc, int blocks = kGroupBlocks) {
  // The heads' bytes: Q8_0 / Q4_0 2 per block, Q4_K 32 (a partial group's 16).
  const int64_t first = !kPartial ? 32 : kType == DType::kQ4_K ? 16 : 2 * blocks;
  const int64_t stride = kPartial ? 4 * blocks : 64;
  const auto lanes = static_cast<__mmask16>(kPartial ? (1u << blocks) - 1 : 0xFFFFu);
  const auto load = [&](const uint8_t* p) {
    return kPartial ? _mm512_maskz_loadu_epi32(lanes, p) : _mm512_loadu_si512(p);
  };
  const int64_t per_row = a.n_groups * kGroupBlocks;
  const int8_t* x[MT];
  for (int i = 0; i < MT; ++i) x[i] = a.values + ((m0 + i) * per_row + g * kGroupBlocks) * 32;
  __m512i s[R][MT];
  TileSumsInit<R, MT, kBiasShift, false>(a, m0, g, 0, s);
  // Vector k of every row: w[r]; then MT x R dots.
  const auto dots = [&](const __m512i* w, int k) {
    for (int i = 0; i < MT; ++i) {
      const __m512i xv = _mm512_load_si512(x[i] + 64 * k);
      for (int r = 0; r < R; ++r) s[r][i] = _mm512_dpbusd_epi32(s[r][i], w[r], xv);
    }
  };
  if constexpr (kType == DType::kQ8_0) {
    for (int k = 0; k < kGroupVectors; ++k) {
      __m512i w[R];
      for (int r = 0; r < R; ++r) w[r] = load(group[r] + first + stride * k);
      dots(w, k);
    }
  } else {
    static_assert(kType == DType::kQ4_0 || kType == DType::kQ4_K);
    const __m512i nibble = _mm512_set1_epi32(0x0F0F0F0F);
    for (int c = 0; c < 4; ++c) {
      __m512i t[R], w[R];
      for (int r = 0; r < R; ++r) {
        t[r] = load(group[r] + first + stride * c);
        w[r] = _mm512_and_si512(t[r], nibble);
      }
      dots(w, c);
      for (int r = 0; r < R; ++r) {
        w[r] = kGfni ? HighNibblesGfni(t[r]) : _mm512_and_si512(_mm512_srli_epi32(t[r], 4), nibble);
      }
      dots(w, c + 4);
    }
  }
  TileSumsAdd<R, MT, kMin>(s, ws, wmin, a, m, m0, g, g == 0, acc);
}

// Every tile of activation rows over packed group g of R weight rows,
// from registers (TilePackedGroup; kPartial: the rows' partial last group
// of `blocks` blocks).
template <DType kType, int R, int kBiasShift, bool kMin, bool kGfni, bool kPartial>
HWY_INLINE void PackedGroupTiles(const uint8_t* const* group, const __m512* ws, const __m512* wmin,
                                 const ActivationRows& a, int64_t m, int64_t g,
                                 float* HWY_RESTRICT acc, int blocks = kGroupBlocks) {
  for (int64_t m0 = 0; m0 < m; m0 += kTileActs) {
    const int mt = static_cast<int>(std::min<int64_t>(kTileActs, m - m0));
    WithCount<kTileActs>(mt, [&](auto acts) {
      TilePackedGroup<kType, R, decltype(acts)::value, kBiasShift, kMin, kGfni, kPartial>(
          group, ws, wmin, a, m, m0, g, acc, blocks);
    });
  }
}

// The partial last group of packed rows [r0, r0 + R) (rows 384, 896 or,
// Q4_K, 2304 wide): masked loads rather than a decode through the
// scratch. Not inlined into TileRowBlock: with it inlined there, GCC
// allocated the whole-group tiles' registers differently (activation
// loads folded into every vpdpbusd, spills), 1.1-1.6x the time.
template <DType kType, int R, int kBiasShift, bool kMin, bool kGfni>
HWY_NOINLINE void PackedPartialGroupTiles(const MatmulJob& job, int64_t r0,
                                          float* HWY_RESTRICT acc) {
  const int64_t g = job.n_in / kGroupValues;
  const int blocks = static_cast<int>(job.n_in % kGroupValues / 32);
  const auto lanes = static_cast<__mmask16>((1u << blocks) - 1);
  const uint8_t* group[R];
  __m512 ws[R], wmin[R];
  for (int r = 0; r < R; ++r) {
    group[r] =
        job.packed + (r0 + r) * static_cast<int64_t>(job.row_bytes) + g * GroupBytes<kType>();
    if constexpr (kType == DType::kQ4_K) {
      KScalesMinsPacked<true>(group[r], ws + r, wmin + r);
    } else {
      ws[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, group[r]));
      wmin[r] = _mm512_setzero_ps();
    }
  }
  PackedGroupTiles<kType, R, kBiasShift, kMin, kGfni, true>(group, ws, wmin, job.acts, job.m, g,
                                                            acc, blocks);
}

#include "kernels/reduce_add16-inl.h"

// Writes pair (r, i)'s sum at job.y[i n_out + r0 + r] for every pair of
// the block: 4 x 4 pairs at a time through ReduceAdd16 (row i's four sums
// are contiguous), the rest one by one.
template <int R>
HWY_INLINE void StoreTileSums(const MatmulJob& job, int64_t r0, const float* HWY_RESTRICT acc) {
  const int64_t m = job.m;
  int64_t i0 = 0;
  if constexpr (R == 4) {
    for (; i0 + 4 <= m; i0 += 4) {
      __m512 v[16];  // v[4 r + e] = pair (r, i0 + e): lane 4e + r of the sums
      for (int r = 0; r < 4; ++r) {
        for (int e = 0; e < 4; ++e) v[4 * r + e] = _mm512_load_ps(acc + (r * m + i0 + e) * 16);
      }
      const __m512 sums = ReduceAdd16(v);
      _mm_storeu_ps(job.y + (i0 + 0) * job.n_out + r0, _mm512_extractf32x4_ps(sums, 0));
      _mm_storeu_ps(job.y + (i0 + 1) * job.n_out + r0, _mm512_extractf32x4_ps(sums, 1));
      _mm_storeu_ps(job.y + (i0 + 2) * job.n_out + r0, _mm512_extractf32x4_ps(sums, 2));
      _mm_storeu_ps(job.y + (i0 + 3) * job.n_out + r0, _mm512_extractf32x4_ps(sums, 3));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int64_t i = i0; i < m; ++i) {
      job.y[i * job.n_out + r0 + r] = _mm512_reduce_add_ps(_mm512_load_ps(acc + (r * m + i) * 16));
    }
  }
}

// Weight rows [r0, r0 + R) for all job.m activation rows.
template <DType kType, int R, int kBiasShift, bool kHalves, bool kMin, bool kGfni>
HWY_NOINLINE void TileRowBlock(const MatmulJob& job, const GatherPlan& plan, int64_t r0,
                               int64_t row_end, float* HWY_RESTRICT acc) {
  const int64_t m = job.m;
  const int64_t share = NextRowShare(job);
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
  // The next block's rows, prefetched group by group into L2.
  const int64_t n_next = std::min<int64_t>(kTileRows, row_end - (r0 + R));
  const bool packed = job.packed != nullptr;
  const uint8_t* weights = packed ? job.packed : job.weights;
  DecodedGroup dec[R];
  // 4-bit values are decoded again for every tile of activation rows:
  // from m = 17 (5+ tiles) decoding once into the scratch costs less
  // (kernels_bench in cache, Q4_0 FFN shapes: m = 8 0.75x the time, 16
  // 0.85x, 64 1.05-1.1x). Q8_0 has nothing to decode.
  constexpr bool kInRegisters =
      kType == DType::kQ8_0 || kType == DType::kQ4_0 || kType == DType::kQ4_K;
  constexpr int64_t kInRegistersMaxM = kType == DType::kQ8_0 ? INT64_MAX : 16;
  const int64_t whole = job.m <= kInRegistersMaxM ? job.n_in / kGroupValues : 0;
  for (int64_t g = 0; g < job.acts.n_groups; ++g) {
    for (int64_t r = 0; r < n_next; ++r) {
      PrefetchNextRowShare(weights + (r0 + R + r) * row_bytes, row_bytes, share, g, true);
    }
    if constexpr (kInRegisters) {
      if (packed && g < whole) {
        const uint8_t* group[R];
        __m512 ws[R], wmin[R];
        for (int r = 0; r < R; ++r) {
          group[r] = weights + (r0 + r) * row_bytes + g * GroupBytes<kType>();
          if constexpr (kType == DType::kQ4_K) {
            KScalesMinsPacked(group[r], ws + r, wmin + r);
          } else {
            ws[r] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(group[r])));
            wmin[r] = _mm512_setzero_ps();
          }
        }
        PackedGroupTiles<kType, R, kBiasShift, kMin, kGfni, false>(group, ws, wmin, job.acts, m, g,
                                                                   acc);
        continue;
      }
    }
    if constexpr (kInRegisters) {
      if (packed && g == job.n_in / kGroupValues && job.m <= kInRegistersMaxM) {
        PackedPartialGroupTiles<kType, R, kBiasShift, kMin, kGfni>(job, r0, acc);
        continue;
      }
    }
    for (int r = 0; r < R; ++r) {
      const uint8_t* row = weights + (r0 + r) * row_bytes;
      if (!DecodeWholeGroup<kType>(row, packed, job.n_in, g, dec + r)) {
        DecodeGroupGather(kType, plan, row, job.n_in, g, dec + r);
      }
    }
    for (int64_t m0 = 0; m0 < m; m0 += kTileActs) {
      const int mt = static_cast<int>(std::min<int64_t>(kTileActs, m - m0));
      WithCount<kTileActs>(mt, [&](auto acts) {
        TileGroup<R, decltype(acts)::value, kBiasShift, kHalves, kMin>(dec, job.acts, m, m0, g,
                                                                       acc);
      });
    }
  }
  StoreTileSums<R>(job, r0, acc);
}

// Weight rows [row_begin, row_end) in blocks of kTileRows (the last block
// may be shorter), for all job.m activation rows.
template <DType kType, int kBiasShift, bool kHalves, bool kMin, bool kGfni>
void TileRows(const MatmulJob& job, const GatherPlan& plan, int64_t row_begin, int64_t row_end) {
  thread_local AlignedBuffer<float> acc;
  const auto need = static_cast<size_t>(kTileRows * job.m * 16);
  if (acc.size() < need) acc.resize(need);
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kTileRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTileRows, row_end - r0));
    WithCount<kTileRows>(rows, [&](auto block) {
      TileRowBlock<kType, decltype(block)::value, kBiasShift, kHalves, kMin, kGfni>(
          job, plan, r0, row_end, acc.data());
    });
  }
}

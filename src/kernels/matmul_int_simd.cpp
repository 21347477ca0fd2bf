// Integer-dot matmul kernels (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), compiled once
// per instruction set by Highway's foreach_target and chosen at run time.
//
// Data layout and arithmetic: quant_decode.h; the weight decoders:
// matmul_int_decode-inl.h (on AVX-512 they read the packed copy of the rows
// when the matrix has one, weight_packing.h; decode of packed Q4_0/Q4_K
// dots the nibbles in place, DotPackedNibbles). Per weight row, every
// group of 16 blocks is decoded once (block l's bytes in 32-bit lane l) into a per-thread scratch
// row in L1; then tiles of up to 8 activation rows run over the decoded row
// (AVX3_DL: m <= 4 decode into registers instead, FusedRows; more rows
// run register-blocked tiles of 4 weight rows x 4 activation rows,
// matmul_int_tiles-inl.h):
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
#include <type_traits>

#include "core/aligned_buffer.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"
#include "kernels/target_extension.h"

// The weight decoders, once per target (foreach_target re-includes it).
#include "kernels/matmul_int_decode-inl.h"

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
    // The largest |x| as bits (activation_block_scale): an integer max,
    // which keeps NaNs, unlike a float max.
    const hn::RebindToUnsigned<decltype(df)> du;
    auto vmax = hn::Zero(du);
    for (int t = 0; t < 32; t += nf) {
      vmax =
          hn::Max(vmax, hn::And(hn::BitCast(du, hn::LoadU(df, xb + t)), hn::Set(du, 0x7fffffffu)));
    }
    const ActivationBlockScale block =
        activation_block_scale(static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(du, vmax))));
    const float scale = block.scale;
    alignas(64) int8_t bytes[32] = {};
    int32_t sum_lo = 0, sum = 0;
    if (!block.non_finite) {
      const auto inverse = hn::Set(df, block.inverse);
      for (int t = 0; t < 32; t += nf) {
        const auto v = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + t), inverse));
        hn::StoreU(hn::DemoteTo(d8, v), d8, bytes + t);
        if (t < 16) {  // nf <= 16: a chunk never straddles the halves
          sum_lo += static_cast<int32_t>(hn::GetLane(hn::SumOfLanes(di, v)));
        } else {
          sum += static_cast<int32_t>(hn::GetLane(hn::SumOfLanes(di, v)));
        }
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

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2

// ------------------------------------------------------------ x86 dots

// Weight rows are short (1-4 KB), so the hardware streamer, which stops at
// 4 KB pages, often starts too late on the next row: while on group g of
// a row, prefetch group g's share of the next one. Bytes per group:
HWY_INLINE int64_t NextRowShare(const MatmulJob& job) {
  const auto n_groups = static_cast<int64_t>(job.acts.n_groups);
  return (static_cast<int64_t>(job.row_bytes) + n_groups - 1) / n_groups;
}

// m > 1 (l2 = true) spends long enough on a row for the next one to come
// from L2 in time, and prefetches into L1 there often stalled the
// multi-row kernel (perf: ~10-20% of its samples on the prefetch loop; to
// L2, kernels_bench Q8_0 m = 4..8 took 5-25% less time).
HWY_INLINE void PrefetchNextRowShare(const uint8_t* next, int64_t row_bytes, int64_t share,
                                     int64_t g, bool l2) {
  const int64_t to = std::min(row_bytes, (g + 1) * share);
  const auto* p = reinterpret_cast<const char*>(next);
  if (l2) {
    for (int64_t at = g * share; at < to; at += 64) _mm_prefetch(p + at, _MM_HINT_T1);
  } else {
    for (int64_t at = g * share; at < to; at += 64) _mm_prefetch(p + at, _MM_HINT_T0);
  }
}

#include "kernels/with_count-inl.h"

// The template parameters pick the per-type arithmetic of quant_decode.h:
// kBiasShift = log2(bias) or -1 for none; kHalves: Q6_K's two scales per
// block; kMin: the Q4_K/Q5_K mins; kSigned: Q8_0 without VNNI, where the
// weights go back to int8 for the sign trick of pmaddubsw.

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd needs AVX512_VNNI, which Highway's AVX3_DL target requires at
// run time but does not name among its compile flags.
SPECULA_BEGIN_EXTENSION("avx512vnni")

// One group for MT activation rows from m0: adds block l's scaled dot to
// lane l of acc[i]. The same arithmetic, in the same order, for a group
// decoded into scratch (DotRows) or straight into registers (FusedRows),
// so a row's result does not depend on which path or tile ran it.
template <int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_INLINE void DotGroup(const __m512i w[8], __m512 ws, __m512 ws_hi, __m512 wmin,
                         const ActivationRows& a, int64_t m0, int64_t g, __m512 acc[MT]) {
  const int64_t per_row = a.n_groups * kGroupBlocks;
  // One chain of 8 dependent vpdpbusd per group is latency-bound: split it
  // in two for one row, interleave the rows' chains for more (below; exact
  // integer sums either way).
  constexpr bool kSplit = MT == 1;
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
    } else if constexpr (kSplit) {
      __m512i s0 = kBiasShift >= 0 ? _mm512_slli_epi32(_mm512_load_si512(a.neg_sums + at),
                                                       kBiasShift >= 0 ? kBiasShift : 0)
                                   : _mm512_setzero_si512();
      __m512i s1 = _mm512_setzero_si512();
      for (int k = 0; k < 8; k += 2) {
        s0 = _mm512_dpbusd_epi32(s0, w[k], _mm512_load_si512(x + 64 * k));
        s1 = _mm512_dpbusd_epi32(s1, w[k + 1], _mm512_load_si512(x + 64 * (k + 1)));
      }
      s0 = _mm512_add_epi32(s0, s1);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(ws, dx), acc[i]);
      if constexpr (kMin) {
        acc[i] = _mm512_fmadd_ps(wmin, _mm512_load_ps(a.scaled_sums + at), acc[i]);
      }
    }
  }
  if constexpr (!kHalves && !kSplit) {
    // Several rows: the integer dots vector by vector across the rows, so
    // that MT independent vpdpbusd follow each other instead of one chain
    // of 8 per row (the scheduler then holds only a few rows' chains and
    // waits on their latency; kernels_bench Q8_0 m = 8: ~10% less time).
    // Integer sums: the same result in any order.
    __m512i s[MT];
    for (int i = 0; i < MT; ++i) {
      const int64_t at = (m0 + i) * per_row + g * kGroupBlocks;
      s[i] = kBiasShift >= 0 ? _mm512_slli_epi32(_mm512_load_si512(a.neg_sums + at),
                                                 kBiasShift >= 0 ? kBiasShift : 0)
                             : _mm512_setzero_si512();
    }
    for (int k = 0; k < 8; ++k) {
      for (int i = 0; i < MT; ++i) {
        const int8_t* x = a.values + ((m0 + i) * per_row + g * kGroupBlocks) * 32;
        s[i] = _mm512_dpbusd_epi32(s[i], w[k], _mm512_load_si512(x + 64 * k));
      }
    }
    for (int i = 0; i < MT; ++i) {
      const int64_t at = (m0 + i) * per_row + g * kGroupBlocks;
      const __m512 dx = _mm512_load_ps(a.scales + at);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(ws, dx), acc[i]);
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

// Decode (m = 1) of a whole packed Q4_0 / Q4_K group (weight_packing.h):
// DotGroup's arithmetic with the nibbles left where they are. A packed
// byte holds value c in its low nibble and value c + 4 in its high one;
// the high ones are dotted as 16 * value (a mask, no shift) into a second
// sum, which is then exactly divisible by 16: s = lo + (hi >> 4) is the
// same integer as DotGroup's, without the 4 shifts per group (and with
// |hi| <= 16 * 240 * 127, far from overflow).
template <DType kType, int kBiasShift, bool kMin>
HWY_INLINE void DotPackedNibbles(const uint8_t* group, const ActivationRows& a, int64_t g,
                                 __m512& acc) {
  __m512 ws, wmin = _mm512_setzero_ps();
  if constexpr (kType == DType::kQ4_0) {
    ws = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(group)));
  } else {
    KScalesMinsPacked(group, &ws, &wmin);
  }
  const uint8_t* vectors = group + 32;
  const int64_t at = g * kGroupBlocks;
  const int8_t* x = a.values + at * 32;
  __m512i lo = kBiasShift >= 0 ? _mm512_slli_epi32(_mm512_load_si512(a.neg_sums + at),
                                                   kBiasShift >= 0 ? kBiasShift : 0)
                               : _mm512_setzero_si512();
  __m512i hi = _mm512_setzero_si512();
  const __m512i low4 = _mm512_set1_epi32(0x0F0F0F0F);
  const __m512i high4 = _mm512_set1_epi32(static_cast<int32_t>(0xF0F0F0F0u));
  for (int c = 0; c < 4; ++c) {
    const __m512i t = _mm512_loadu_si512(vectors + 64 * c);
    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(t, low4), _mm512_load_si512(x + 64 * c));
    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(t, high4), _mm512_load_si512(x + 64 * (c + 4)));
  }
  const __m512i s = _mm512_add_epi32(lo, _mm512_srai_epi32(hi, 4));
  const __m512 dx = _mm512_load_ps(a.scales + at);
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws, dx), acc);
  if constexpr (kMin) acc = _mm512_fmadd_ps(wmin, _mm512_load_ps(a.scaled_sums + at), acc);
}

// Decode (m = 1) and m = 2: each whole group goes from memory straight into
// registers and into the dot, with no decoded row written and re-read;
// a partial group from a zero-padded copy (DecodeAnyRegs).
template <DType kType, int MT, int kBiasShift, bool kHalves, bool kMin>
HWY_NOINLINE void FusedRows(const MatmulJob& job, const GatherPlan& /*plan*/, int64_t row_begin,
                            int64_t row_end) {
  const int64_t n_groups = job.acts.n_groups;
  const int64_t share = NextRowShare(job);
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
  const bool packed = job.packed != nullptr;
  const uint8_t* weights = packed ? job.packed : job.weights;
  const int64_t whole = job.n_in / kGroupValues;
  // Whole group g of `row` into acc.
  const auto whole_group = [&](const uint8_t* row, int64_t g, __m512* acc) {
    if constexpr (MT == 1 && (kType == DType::kQ4_0 || kType == DType::kQ4_K)) {
      if (packed) {
        return DotPackedNibbles<kType, kBiasShift, kMin>(row + g * GroupBytes<kType>(), job.acts, g,
                                                         acc[0]);
      }
    }
    GroupRegs w;
    DecodeWholeRegsOf<kType>(row, packed, g, &w);
    DotGroup<MT, kBiasShift, kHalves, kMin>(w.q, w.scale, w.scale_hi, w.min, job.acts, 0, g, acc);
  };
  // Group g >= whole, the row's partial last one, into acc.
  const auto partial_group = [&](const uint8_t* row, int64_t g, __m512* acc) {
    GroupRegs w;
    DecodeAnyRegs<kType>(row, packed, job.n_in, g, &w);
    DotGroup<MT, kBiasShift, kHalves, kMin>(w.q, w.scale, w.scale_hi, w.min, job.acts, 0, g, acc);
  };
  int64_t r = row_begin;
  if constexpr (MT == 1 && !kHalves) {
    // Decode, two rows side by side: one row's group is a few short chains
    // of dots and one FMA, too little independent work for the
    // out-of-order window to hide the dots' latency (kernels_bench in
    // cache, packed weights: Q4_0 0.67-0.83x the time with two rows, Q8_0
    // 0.9x, Q4_K 0.97x; Q6_K 1.02-1.1x, so it keeps one row). The rows
    // come from the two halves of the thread's rows, so that each half
    // stays one sequential stream for the prefetchers (rows r and r + 1
    // side by side ran 2x slower from DRAM). The same arithmetic per row.
    const int64_t half = (row_end - row_begin) / 2;
    for (int64_t i = 0; i < half; ++i) {
      const int64_t ra = row_begin + i, rb = row_begin + half + i;
      const uint8_t* row0 = weights + ra * row_bytes;
      const uint8_t* row1 = weights + rb * row_bytes;
      const bool prefetch = job.prefetch_next_row && i + 1 < half;
      const auto prefetch_next = [&](int64_t g) {
        if (!prefetch) return;
        PrefetchNextRowShare(row0 + row_bytes, row_bytes, share, g, false);
        PrefetchNextRowShare(row1 + row_bytes, row_bytes, share, g, false);
      };
      __m512 acc0[1] = {_mm512_setzero_ps()}, acc1[1] = {_mm512_setzero_ps()};
      for (int64_t g = 0; g < whole; ++g) {
        prefetch_next(g);
        whole_group(row0, g, acc0);
        whole_group(row1, g, acc1);
      }
      for (int64_t g = whole; g < n_groups; ++g) {
        prefetch_next(g);
        partial_group(row0, g, acc0);
        partial_group(row1, g, acc1);
      }
      job.y[ra] = _mm512_reduce_add_ps(acc0[0]);
      job.y[rb] = _mm512_reduce_add_ps(acc1[0]);
    }
    r = row_begin + 2 * half;
  }
  for (; r < row_end; ++r) {
    const uint8_t* row = weights + r * row_bytes;
    const uint8_t* next = row + row_bytes;
    const bool prefetch = (job.prefetch_next_row || job.m > 1) && r + 1 < row_end;
    __m512 acc[MT];
    for (int i = 0; i < MT; ++i) acc[i] = _mm512_setzero_ps();
    // Whole groups first, then the partial one, whose decoder calls
    // memcpy: a call inside the loop made GCC keep acc on the stack for
    // every group (perf: the store of acc took 12% of a Q4_0 decode).
    for (int64_t g = 0; g < whole; ++g) {
      if (prefetch) PrefetchNextRowShare(next, row_bytes, share, g, job.m > 1);
      whole_group(row, g, acc);
    }
    for (int64_t g = whole; g < n_groups; ++g) {
      if (prefetch) PrefetchNextRowShare(next, row_bytes, share, g, job.m > 1);
      partial_group(row, g, acc);
    }
    for (int i = 0; i < MT; ++i) job.y[i * job.n_out + r] = _mm512_reduce_add_ps(acc[i]);
  }
}

// TileRows: the register-blocked kernel for several activation rows.
#include "kernels/matmul_int_tiles-inl.h"

SPECULA_END_EXTENSION
constexpr int kTileM = 8;

#else  // AVX3 or AVX2: pmaddubsw + pmaddwd on 256-bit halves of a group

#include "kernels/matmul_int_avx2_dots-inl.h"

constexpr int kTileM = 4;     // 16 ymm registers: 8 weights + 4 accumulators + temporaries
#endif

// Runs tiles of up to kTileM activation rows over one decoded weight row.
template <int kBiasShift, bool kHalves, bool kMin, bool kSigned>
void DotAllRows(const MatmulJob& job, const DecodedGroup* dec, int64_t r) {
  float out[kTileM];
  for (int64_t m0 = 0; m0 < job.m; m0 += kTileM) {
    const int mt = static_cast<int>(std::min<int64_t>(kTileM, job.m - m0));
    WithCount<kTileM>(mt, [&](auto rows) {
#if HWY_TARGET == HWY_AVX3_DL
      DotRows<decltype(rows)::value, kBiasShift, kHalves, kMin>(dec, job.acts, m0, out);
#else
      DotRows<decltype(rows)::value, kBiasShift, kHalves, kMin, kSigned>(dec, job.acts, m0, out);
#endif
    });
    for (int i = 0; i < mt; ++i) job.y[(m0 + i) * job.n_out + r] = out[i];
  }
}

template <DType kType, int kBiasShift, bool kHalves, bool kMin, bool kSigned>
void IntRowsOf(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  static const GatherPlan plan = MakePlan(kType);
#if HWY_TARGET == HWY_AVX3_DL
  // From 4 rows on (Q6_K: 5), the register-blocked tiles. kernels_bench,
  // FFN shapes of the 0.8B model, against FusedRows (whose accumulators
  // spill from m = 5) and the decoded-row path (m > 8):
  //   Q8_0 / Q4_0 m = 5, 8: 20-33% less time on rows of 5632 (session 8);
  //   since the tiles read packed weights in registers (session 11): m = 4
  //   0.83-0.91x for Q4_0 / Q4_K, 0.97x for Q8_0, but 1.2x for Q6_K on
  //   rows of 5632; Q6_K m = 8 0.7-1.1x by shape, m = 9 and 16 0.7-0.9x.
  //   m = 2 is mixed (0.86-1.14x) and stays with FusedRows.
  // Large matrices on Intel take the tiles at every m
  // (simd_int_tiles_min_bytes).
  constexpr int64_t kTilesMinM = kHalves ? 5 : 4;
  if (job.m >= kTilesMinM ||
      job.row_bytes * static_cast<uint64_t>(job.n_out) >= simd_int_tiles_min_bytes()) {
    if constexpr (kType == DType::kQ4_0 || kType == DType::kQ4_K) {
      if (simd_gfni()) {
        return TileRows<kType, kBiasShift, kHalves, kMin, true>(job, plan, row_begin, row_end);
      }
    }
    return TileRows<kType, kBiasShift, kHalves, kMin, false>(job, plan, row_begin, row_end);
  }
  if (job.m >= 1 && job.m <= kTileM) {
    return WithCount<kTileM>(static_cast<int>(job.m), [&](auto rows) {
      FusedRows<kType, decltype(rows)::value, kBiasShift, kHalves, kMin>(job, plan, row_begin,
                                                                         row_end);
    });
  }
#endif
  DecodedGroup* dec = thread_decoded_row(job.acts.n_groups);
  const int64_t n_groups = job.acts.n_groups;
  const int64_t share = NextRowShare(job);
  const auto row_bytes = static_cast<int64_t>(job.row_bytes);
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
  const bool packed = job.packed != nullptr;
#else
  const bool packed = false;  // the gather decoder reads GGUF rows
#endif
  const uint8_t* weights = packed ? job.packed : job.weights;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = weights + r * row_bytes;
    const uint8_t* next = row + row_bytes;
    const bool prefetch = r + 1 < row_end;
    for (int64_t g = 0; g < n_groups; ++g) {
      if (prefetch) PrefetchNextRowShare(next, row_bytes, share, g, job.m > 1);
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3
      if (DecodeWholeGroup<kType>(row, packed, job.n_in, g, dec + g)) continue;
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

// decode_group on this target, for weight packing at load (pack_row):
// the AVX-512 decoders where this target has them (the same values; the
// scalar decode_group took ~75% of loading a Q4_K_M model), else
// decode_group itself.
void DecodeGroupOf(DType type, const uint8_t* row, int64_t n_in, int64_t g, DecodedGroup* out) {
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3)
  switch (type) {
    case DType::kQ4_K:
      DecodeWholeGroup<DType::kQ4_K>(row, false, n_in, g, out);
      return;
    case DType::kQ5_K:
      DecodeWholeGroup<DType::kQ5_K>(row, false, n_in, g, out);
      return;
    case DType::kQ6_K:
      DecodeWholeGroup<DType::kQ6_K>(row, false, n_in, g, out);
      return;
    default:
      break;
  }
#endif
  decode_group(type, row, n_in, g, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(IntRows);
HWY_EXPORT(PrepareActivationRow);
HWY_EXPORT(DecodeGroupOf);

void matmul_int_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(IntRows)(job, row_begin, row_end);
}

void prepare_activation_row_simd(const float* x, int64_t n, int8_t* values, float* scales,
                                 int32_t* neg_sums, int32_t* neg_sums_lo, float* scaled_sums) {
  HWY_DYNAMIC_DISPATCH(PrepareActivationRow)
  (x, n, values, scales, neg_sums, neg_sums_lo, scaled_sums);
}

void decode_group_simd(DType type, const uint8_t* row, int64_t n_in, int64_t g, DecodedGroup* out) {
  HWY_DYNAMIC_DISPATCH(DecodeGroupOf)(type, row, n_in, g, out);
}

}  // namespace specula
#endif  // HWY_ONCE

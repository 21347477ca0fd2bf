// SIMD matmul kernels, compiled once per instruction set by Highway's
// foreach_target and chosen at run time (HWY_DYNAMIC_DISPATCH).
//
// Both kernels tile the work as (R weight rows) x (MT activation rows):
// each weight vector loaded (and converted) once feeds MT activation rows,
// and R x MT independent accumulators hide the FMA latency. Weight rows are
// the outer loop, so a row comes from memory once and any further
// activation-row chunks re-read it from L1/L2.
//
// hot: these two functions are where decoding spends its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "core/f16.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_decode.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Activation rows per tile: 32 vector registers on AVX-512 hold 2 x 8
// float accumulators; 16 registers (AVX2, SSE, NEON) hold 2 x 4.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kFloatTileM = 8;
constexpr int kIntTileM = 4;
#else
constexpr int kFloatTileM = 4;
constexpr int kIntTileM = 2;
#endif

// ---------------------------------------------------------------- float

template <DType kType>
float LoadWeightScalar(const uint8_t* row, int64_t k) {
  if constexpr (kType == DType::kF32) {
    return reinterpret_cast<const float*>(row)[k];
  } else if constexpr (kType == DType::kF16) {
    return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
  } else {
    return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[k]);
  }
}

template <DType kType, class DF>
HWY_INLINE hn::Vec<DF> LoadWeightVector(DF df, const uint8_t* row, int64_t k) {
  if constexpr (kType == DType::kF32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(row) + k);
  } else if constexpr (kType == DType::kF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + k));
  } else {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(df, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(row) + k));
  }
}

// y[m0 + i][r0 + r] for i < MT, r < R.
template <DType kType, int R, int MT>
HWY_NOINLINE void FloatTile(const MatmulJob& job, int64_t r0, int64_t m0) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t n = static_cast<int64_t>(hn::Lanes(df));
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = job.weights + (r0 + r) * job.row_bytes;
  const float* xs[MT];
  for (int i = 0; i < MT; ++i) xs[i] = job.x + (m0 + i) * job.n_in;

  V acc[R][MT];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) acc[r][i] = hn::Zero(df);
  }
  int64_t k = 0;
  for (; k + n <= job.n_in; k += n) {
    V w[R];
    for (int r = 0; r < R; ++r) w[r] = LoadWeightVector<kType>(df, rows[r], k);
    for (int i = 0; i < MT; ++i) {
      const V x = hn::LoadU(df, xs[i] + k);
      for (int r = 0; r < R; ++r) acc[r][i] = hn::MulAdd(w[r], x, acc[r][i]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      for (int64_t t = k; t < job.n_in; ++t) sum += LoadWeightScalar<kType>(rows[r], t) * xs[i][t];
      job.y[(m0 + i) * job.n_out + r0 + r] = sum;
    }
  }
}

template <DType kType, int R>
void FloatTileAnyM(const MatmulJob& job, int64_t r0, int64_t m0, int mt) {
  switch (mt) {
    case 1:
      return FloatTile<kType, R, 1>(job, r0, m0);
    case 2:
      return FloatTile<kType, R, 2>(job, r0, m0);
    case 3:
      return FloatTile<kType, R, 3>(job, r0, m0);
    case 4:
      return FloatTile<kType, R, 4>(job, r0, m0);
    case 5:
      return FloatTile<kType, R, 5>(job, r0, m0);
    case 6:
      return FloatTile<kType, R, 6>(job, r0, m0);
    case 7:
      return FloatTile<kType, R, 7>(job, r0, m0);
    default:
      return FloatTile<kType, R, 8>(job, r0, m0);
  }
}

template <DType kType>
void FloatRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  int64_t r = row_begin;
  // Four weight rows at a time; a single activation row uses all four as
  // independent accumulator chains, more rows use two pairs.
  for (; r + 4 <= row_end; r += 4) {
    for (int64_t m0 = 0; m0 < job.m; m0 += kFloatTileM) {
      const int mt = static_cast<int>(std::min<int64_t>(kFloatTileM, job.m - m0));
      if (mt == 1) {
        FloatTile<kType, 4, 1>(job, r, m0);
      } else {
        FloatTileAnyM<kType, 2>(job, r, m0, mt);
        FloatTileAnyM<kType, 2>(job, r + 2, m0, mt);
      }
    }
  }
  for (; r < row_end; ++r) {
    for (int64_t m0 = 0; m0 < job.m; m0 += kFloatTileM) {
      FloatTileAnyM<kType, 1>(job, r, m0,
                              static_cast<int>(std::min<int64_t>(kFloatTileM, job.m - m0)));
    }
  }
}

// ---------------------------------------------------------------- decoding

// Vectorized twins of decode_row_int16 (quant_decode.h): the same output.
// Tags are capped at the width one scale covers (16 or 32 values), so each
// loop runs once on AVX-512 and a few times on narrower targets.

// Loads `Lanes(d16)` bytes and widens them to int16 lanes (0..255).
template <class D16>
HWY_INLINE hn::Vec<D16> LoadBytesAsInt16(D16 d16, const uint8_t* p) {
  const hn::RebindToUnsigned<D16> du16;
  const hn::Rebind<uint8_t, D16> d8;
  return hn::BitCast(d16, hn::PromoteTo(du16, hn::LoadU(d8, p)));
}

HWY_INLINE void DecodeQ8_0(const uint8_t* row, int64_t n_in, int16_t* values, float* scales) {
  const hn::CappedTag<int16_t, 32> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(row);
  for (int64_t b = 0; b < n_in / 32; ++b) {
    scales[b] = f16_scale_to_f32(blocks[b].d);
    for (int64_t i = 0; i < 32; i += n) {
      hn::StoreU(hn::PromoteTo(d16, hn::LoadU(d8, blocks[b].qs + i)), d16, values + 32 * b + i);
    }
  }
}

HWY_INLINE void DecodeQ4_0(const uint8_t* row, int64_t n_in, int16_t* values, float* scales) {
  const hn::CappedTag<int16_t, 16> d16;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto low_mask = hn::Set(d16, 0xF);
  const auto eight = hn::Set(d16, 8);
  const auto* blocks = reinterpret_cast<const BlockQ4_0*>(row);
  for (int64_t b = 0; b < n_in / 32; ++b) {
    scales[b] = f16_scale_to_f32(blocks[b].d);
    for (int64_t i = 0; i < 16; i += n) {
      const auto bytes = LoadBytesAsInt16(d16, blocks[b].qs + i);
      hn::StoreU(hn::Sub(hn::And(bytes, low_mask), eight), d16, values + 32 * b + i);
      hn::StoreU(hn::Sub(hn::ShiftRight<4>(bytes), eight), d16, values + 32 * b + 16 + i);
    }
  }
}

template <bool kFiveBits>
HWY_INLINE void DecodeKMin(const uint8_t* row, int64_t n_in, int16_t* values, float* scales,
                           float* offsets) {
  const hn::CappedTag<int16_t, 32> d16;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto low_mask = hn::Set(d16, 0xF);
  const auto one = hn::Set(d16, 1);
  const int64_t block_bytes = kFiveBits ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
    const uint8_t* block = row + b * block_bytes;
    const auto* head = reinterpret_cast<const BlockQ4_K*>(block);
    const float dmin = f16_scale_to_f32(head->dmin);
    scales[b] = f16_scale_to_f32(head->d);
    const uint8_t* qs = kFiveBits ? reinterpret_cast<const BlockQ5_K*>(block)->qs : head->qs;
    const uint8_t* qh = kFiveBits ? reinterpret_cast<const BlockQ5_K*>(block)->qh : nullptr;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      unpack_k_scale_min(head->scales, 2 * c, &sc_lo, &m_lo);
      unpack_k_scale_min(head->scales, 2 * c + 1, &sc_hi, &m_hi);
      offsets[b * 8 + 2 * c] = -dmin * m_lo;
      offsets[b * 8 + 2 * c + 1] = -dmin * m_hi;
      const auto scale_lo = hn::Set(d16, sc_lo);
      const auto scale_hi = hn::Set(d16, sc_hi);
      int16_t* out = values + b * kSuperBlockSize + 64 * c;
      for (int64_t i = 0; i < 32; i += n) {
        const auto bytes = LoadBytesAsInt16(d16, qs + 32 * c + i);
        auto lo = hn::And(bytes, low_mask);
        auto hi = hn::ShiftRight<4>(bytes);
        if constexpr (kFiveBits) {
          const auto high_bits = LoadBytesAsInt16(d16, qh + i);
          lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(high_bits, 2 * c), one)));
          hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(high_bits, 2 * c + 1), one)));
        }
        hn::StoreU(hn::Mul(lo, scale_lo), d16, out + i);
        hn::StoreU(hn::Mul(hi, scale_hi), d16, out + 32 + i);
      }
    }
  }
}

HWY_INLINE void DecodeQ6_K(const uint8_t* row, int64_t n_in, int16_t* values, float* scales) {
  const hn::CappedTag<int16_t, 16> d16;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto low_mask = hn::Set(d16, 0xF);
  const auto two_bits = hn::Set(d16, 3);
  const auto bias = hn::Set(d16, 32);
  const auto* blocks = reinterpret_cast<const BlockQ6_K*>(row);
  for (int64_t b = 0; b < n_in / kSuperBlockSize; ++b) {
    const BlockQ6_K& block = blocks[b];
    scales[b] = f16_scale_to_f32(block.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = block.ql + 64 * half;
      const uint8_t* qh = block.qh + 32 * half;
      const int8_t* sc = block.scales + 8 * half;
      int16_t* out = values + b * kSuperBlockSize + 128 * half;
      for (int s = 0; s < 2; ++s) {  // 16 values share each scale
        const auto sc0 = hn::Set(d16, sc[s]);
        const auto sc1 = hn::Set(d16, sc[s + 2]);
        const auto sc2 = hn::Set(d16, sc[s + 4]);
        const auto sc3 = hn::Set(d16, sc[s + 6]);
        for (int64_t l = 16 * s; l < 16 * s + 16; l += n) {
          const auto a = LoadBytesAsInt16(d16, ql + l);
          const auto c = LoadBytesAsInt16(d16, ql + 32 + l);
          const auto h = LoadBytesAsInt16(d16, qh + l);
          const auto q0 = hn::Or(hn::And(a, low_mask), hn::ShiftLeft<4>(hn::And(h, two_bits)));
          const auto q1 = hn::Or(hn::And(c, low_mask),
                                 hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(h), two_bits)));
          const auto q2 = hn::Or(hn::ShiftRight<4>(a),
                                 hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(h), two_bits)));
          const auto q3 = hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(h)));
          hn::StoreU(hn::Mul(hn::Sub(q0, bias), sc0), d16, out + l);
          hn::StoreU(hn::Mul(hn::Sub(q1, bias), sc1), d16, out + 32 + l);
          hn::StoreU(hn::Mul(hn::Sub(q2, bias), sc2), d16, out + 64 + l);
          hn::StoreU(hn::Mul(hn::Sub(q3, bias), sc3), d16, out + 96 + l);
        }
      }
    }
  }
}

void DecodeRow(DType type, const uint8_t* row, int64_t n_in, int16_t* values, float* scales,
               float* offsets) {
  switch (type) {
    case DType::kQ8_0:
      return DecodeQ8_0(row, n_in, values, scales);
    case DType::kQ4_0:
      return DecodeQ4_0(row, n_in, values, scales);
    case DType::kQ4_K:
      return DecodeKMin<false>(row, n_in, values, scales, offsets);
    case DType::kQ5_K:
      return DecodeKMin<true>(row, n_in, values, scales, offsets);
    default:
      return DecodeQ6_K(row, n_in, values, scales);
  }
}

// ---------------------------------------------------------------- integer

// R weight rows decoded in scratch (quant_decode.h), MT activation rows.
template <int R, int MT>
HWY_NOINLINE void IntTile(const MatmulJob& job, const RowScratch& scratch, int64_t r0, int64_t m0) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Repartition<float, decltype(d16)> df;
  using V16 = hn::Vec<decltype(d16)>;
  using V32 = hn::Vec<decltype(d32)>;
  using VF = hn::Vec<decltype(df)>;
  const int64_t n16 = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t group = job.group;
  const int64_t n_groups = job.n_in / group;
  const int64_t n_blocks32 = job.n_in / 32;

  const int16_t* wv[R];
  const float* ws[R];
  for (int r = 0; r < R; ++r) {
    wv[r] = scratch.values + r * scratch.n_in;
    ws[r] = scratch.group_scales + r * (scratch.n_in / 32);
  }
  const int16_t* xv[MT];
  const float* xs[MT];
  for (int i = 0; i < MT; ++i) {
    xv[i] = job.x_values + (m0 + i) * job.n_in;
    xs[i] = job.x_scales + (m0 + i) * n_groups;
  }

  VF acc[R][MT];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) acc[r][i] = hn::Zero(df);
  }
  for (int64_t g = 0; g < n_groups; ++g) {
    V32 sum0[R][MT], sum1[R][MT];
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < MT; ++i) sum0[r][i] = sum1[r][i] = hn::Zero(d32);
    }
    // Exact int32 sums: |w| <= 4096, |x| <= 127, so a lane collects at
    // most 256 products of <= 520k, far below 2^31.
    for (int64_t k = g * group; k < (g + 1) * group; k += n16) {
      V16 w[R];
      for (int r = 0; r < R; ++r) w[r] = hn::LoadU(d16, wv[r] + k);
      for (int i = 0; i < MT; ++i) {
        const V16 x = hn::LoadU(d16, xv[i] + k);
        for (int r = 0; r < R; ++r) {
          sum0[r][i] = hn::ReorderWidenMulAccumulate(d32, w[r], x, sum0[r][i], sum1[r][i]);
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < MT; ++i) {
        const VF isum = hn::ConvertTo(df, hn::RearrangeToOddPlusEven(sum0[r][i], sum1[r][i]));
        acc[r][i] = hn::MulAdd(isum, hn::Set(df, ws[r][g] * xs[i][g]), acc[r][i]);
      }
    }
  }
  const bool offsets = has_offsets(job.type);
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      if (offsets) {
        const float* off = scratch.offsets + r * (scratch.n_in / 32);
        const float* xsum = job.x_sums + (m0 + i) * n_blocks32;
        float offset_sum = 0.0f;
        for (int64_t j = 0; j < n_blocks32; ++j) offset_sum += off[j] * xsum[j];
        sum += offset_sum;
      }
      job.y[(m0 + i) * job.n_out + r0 + r] = sum;
    }
  }
}

template <int R>
void IntTileAnyM(const MatmulJob& job, const RowScratch& scratch, int64_t r0, int64_t m0, int mt) {
  switch (mt) {
    case 1:
      return IntTile<R, 1>(job, scratch, r0, m0);
    case 2:
      return IntTile<R, 2>(job, scratch, r0, m0);
    case 3:
      return IntTile<R, 3>(job, scratch, r0, m0);
    default:
      return IntTile<R, 4>(job, scratch, r0, m0);
  }
}

void IntRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  RowScratch& scratch = thread_row_scratch(job.n_in);
  const int64_t per_row32 = scratch.n_in / 32;
  for (int64_t r = row_begin; r < row_end; r += 2) {
    const int rows = r + 2 <= row_end ? 2 : 1;
    // Decode each weight row once; every activation chunk reuses it.
    for (int j = 0; j < rows; ++j) {
      DecodeRow(job.type, job.weights + (r + j) * job.row_bytes, job.n_in,
                scratch.values + j * scratch.n_in, scratch.group_scales + j * per_row32,
                scratch.offsets + j * per_row32);
    }
    for (int64_t m0 = 0; m0 < job.m; m0 += kIntTileM) {
      const int mt = static_cast<int>(std::min<int64_t>(kIntTileM, job.m - m0));
      if (rows == 2) {
        IntTileAnyM<2>(job, scratch, r, m0, mt);
      } else {
        IntTileAnyM<1>(job, scratch, r, m0, mt);
      }
    }
  }
}

// ---------------------------------------------------------------- entry

void MatmulRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  switch (job.type) {
    case DType::kF32:
      return FloatRows<DType::kF32>(job, row_begin, row_end);
    case DType::kF16:
      return FloatRows<DType::kF16>(job, row_begin, row_end);
    case DType::kBF16:
      return FloatRows<DType::kBF16>(job, row_begin, row_end);
    default:
      return IntRows(job, row_begin, row_end);
  }
}

int64_t TargetBit() {
  return HWY_TARGET;
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(MatmulRows);
HWY_EXPORT(TargetBit);

void matmul_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatmulRows)(job, row_begin, row_end);
}

int64_t simd_dispatched_target() {
  return HWY_DYNAMIC_DISPATCH(TargetBit)();
}

}  // namespace specula
#endif  // HWY_ONCE

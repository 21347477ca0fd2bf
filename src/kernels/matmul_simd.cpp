// SIMD matmul kernels for float weights (F32, F16, BF16), compiled once per
// instruction set by Highway's foreach_target and chosen at run time
// (HWY_DYNAMIC_DISPATCH). The integer-dot types are in matmul_int_simd.cpp.
//
// The kernel tiles the work as (R weight rows) x (MT activation rows):
// each weight vector loaded (and converted) once feeds MT activation rows,
// and R x MT independent accumulators hide the FMA latency. Weight rows are
// the outer loop, so a row comes from memory once and any further
// activation-row chunks re-read it from L1/L2.
//
// hot: FloatTile is where float-weight decoding spends its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "core/f16.h"
#include "kernels/matmul_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Activation rows per tile: 32 vector registers on AVX-512 hold 2 x 8
// float accumulators; 16 registers (AVX2, SSE, NEON) hold 2 x 4.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kFloatTileM = 8;
#else
constexpr int kFloatTileM = 4;
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

// ---------------------------------------------------------------- entry

void MatmulRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  switch (job.type) {
    case DType::kF32:
      return FloatRows<DType::kF32>(job, row_begin, row_end);
    case DType::kF16:
      return FloatRows<DType::kF16>(job, row_begin, row_end);
    default:
      return FloatRows<DType::kBF16>(job, row_begin, row_end);
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

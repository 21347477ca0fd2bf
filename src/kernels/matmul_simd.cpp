// SIMD matmul kernels for float weights (F32, F16, BF16), compiled once per
// instruction set by Highway's foreach_target and chosen at run time
// (HWY_DYNAMIC_DISPATCH). The integer-dot types are in matmul_int_simd.cpp.
//
// The kernel tiles the work as (R weight rows) x (MT activation rows):
// each weight vector loaded (and converted) once feeds MT activation rows,
// and R x MT independent accumulators hide the FMA latency. m = 1 streams
// rows two at a time, one from each half of a thread's rows (or four side
// by side, simd_float_decode_rows; with four, matrices of 8 MiB and more
// run the blocked tiles below with one activation row),
// with F16 activations for rows too long for a float row to stay in L1
// (kHalfActivationMinIn); m >= 2 runs blocks of 16 weight rows chunk by chunk
// over k with the activations packed per chunk, so they stay in L1 (see
// FloatRowsBlocked). Every (weight row, activation row) accumulator sees k
// in the same order on every path: a row's result does not depend on m.
//
// hot: FloatTile and FloatTileChunk are where float-weight decoding spends
// its time.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <hwy/cache_control.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#if HWY_ARCH_X86
#include <xmmintrin.h>  // _mm_getcsr, _mm_setcsr
#endif

#include "core/aligned_buffer.h"
#include "core/f16.h"
#include "kernels/matmul_kernels.h"
#include "kernels/target_extension.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#include "kernels/with_count-inl.h"  // WithCount, used by the float tiles

#if HWY_TARGET == HWY_AVX3_DL
// vdpbf16ps needs AVX512_BF16, which AVX3_DL does not imply (Ice Lake has
// VNNI but not BF16): the BF16-dot tiles run only where simd_bf16_dot()
// found it at run time.
SPECULA_BEGIN_EXTENSION("avx512bf16")
#endif

// How the multi-row tiles multiply: F32 FMAs on the weights converted to
// floats; BF16 dot products (vdpbf16ps, simd_bf16_dot); or those dot
// products computed as two F32 FMAs per lane in vdpbf16ps's order
// (simd_bf16_dot_fma).
enum class TileMath { kFloat, kBf16Dot, kBf16DotFma };

// While alive (and `on`), the calling thread's F32 arithmetic reads
// denormal inputs as zero and flushes denormal results to zero (MXCSR DAZ
// and FTZ), as vdpbf16ps does whatever MXCSR says; restored after.
class ScopedBf16DotDenormals {
 public:
  explicit ScopedBf16DotDenormals(bool on) {
#if HWY_ARCH_X86
    if (on) {
      saved_ = _mm_getcsr();
      _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
      on_ = true;
    }
#else
    (void)on;
#endif
  }
  ~ScopedBf16DotDenormals() {
#if HWY_ARCH_X86
    if (on_) _mm_setcsr(saved_);
#endif
  }
  ScopedBf16DotDenormals(const ScopedBf16DotDenormals&) = delete;
  ScopedBf16DotDenormals& operator=(const ScopedBf16DotDenormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000;
  static constexpr unsigned kDenormalsAreZero = 0x0040;
  unsigned saved_ = 0;
  bool on_ = false;
};

// BF16 pairs in 32-bit lanes (the even value in the low half, the odd in
// the high half) as floats: either value, moved to the high half, is its
// float. A mask or a shift, no shuffles.
template <class DF, class VU>
HWY_INLINE hn::Vec<DF> OddBf16(DF df, VU pairs) {
  const hn::RebindToUnsigned<DF> du;
  return hn::BitCast(df, hn::And(pairs, hn::Set(du, 0xffff0000u)));
}
template <class DF, class VU>
HWY_INLINE hn::Vec<DF> EvenBf16(DF df, VU pairs) {
  return hn::BitCast(df, hn::ShiftLeft<16>(pairs));
}

// 32 BF16 values for vdpbf16ps, and one dot step: each F32 lane of acc
// adds the products of its two BF16 pairs. Elsewhere stubs that the
// kDot = false instantiations never call.
#if HWY_TARGET == HWY_AVX3_DL
using Bf16Pairs = __m512i;
HWY_INLINE Bf16Pairs LoadBf16Pairs(const uint16_t* p) {
  return _mm512_loadu_si512(p);
}
template <class V>
HWY_INLINE V DotBf16(V acc, Bf16Pairs w, Bf16Pairs x) {
  acc.raw = _mm512_dpbf16_ps(acc.raw, reinterpret_cast<__m512bh>(w), reinterpret_cast<__m512bh>(x));
  return acc;
}
HWY_INLINE void KeepBf16InRegister(Bf16Pairs& v) {
#if defined(__GNUC__) || defined(__clang__)
  asm("" : "+v"(v));
#endif
}
// A step's 32 BF16 activations (len values, a multiple of 32) as the
// kBf16DotFma tiles read them: the 16 odd values as floats, then the 16
// even ones.
HWY_INLINE void PackBf16OddEven(const uint16_t* HWY_RESTRICT bf16, int64_t len,
                                float* HWY_RESTRICT to) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  for (int64_t k = 0; k < len; k += 32) {
    const auto pairs = hn::LoadU(du, reinterpret_cast<const uint32_t*>(bf16 + k));
    hn::StoreU(OddBf16(df, pairs), df, to + k);
    hn::StoreU(EvenBf16(df, pairs), df, to + k + 16);
  }
}

// Whether this CPU's vdpbf16ps is, bit for bit, two F32 FMAs per lane (the
// odd pair's product, then the even's) with denormal inputs read as zero
// and denormal results flushed: the kBf16DotFma tiles compute that. The
// SDM describes it so; checked here on values of every magnitude, tiny
// ones included, before the tiles may stand in for it.
bool Bf16DotFmaExact() {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  uint32_t state = 12345;
  auto next = [&state] {  // a linear congruential generator (Numerical Recipes)
    state = state * 1664525u + 1013904223u;
    return state;
  };
  // BF16 bits: any sign and mantissa, exponents from denormal (0) to 2^20
  // or, for one lane in four, around 1 (where sums cancel and round).
  auto value = [&next](int lane) {
    const uint32_t r = next();
    const uint32_t exponent = lane % 4 == 0 ? 120 + (r >> 8) % 16 : (r >> 8) % 148;
    return static_cast<uint16_t>((r >> 31) << 15 | exponent << 7 | (r >> 16) % 128);
  };
  alignas(64) uint16_t w[32];
  alignas(64) uint16_t x[32];
  alignas(64) float acc[16];
  ScopedBf16DotDenormals denormals(true);
  for (int trial = 0; trial < 256; ++trial) {
    for (int i = 0; i < 32; ++i) {
      w[i] = value(i);
      x[i] = value(i + 1);
    }
    for (int i = 0; i < 16; ++i) acc[i] = bf16_to_f32(value(i)) * (trial % 2 ? 1.0f : 0x1p-9f);
    const auto start = hn::Load(df, acc);
    const auto dot = DotBf16(start, LoadBf16Pairs(w), LoadBf16Pairs(x));
    const auto w_pairs = hn::Load(du, reinterpret_cast<const uint32_t*>(w));
    const auto x_pairs = hn::Load(du, reinterpret_cast<const uint32_t*>(x));
    auto fma = hn::MulAdd(OddBf16(df, w_pairs), OddBf16(df, x_pairs), start);
    fma = hn::MulAdd(EvenBf16(df, w_pairs), EvenBf16(df, x_pairs), fma);
    if (!hn::AllTrue(du, hn::Eq(hn::BitCast(du, dot), hn::BitCast(du, fma)))) return false;
  }
  return true;
}
#else
struct Bf16Pairs {};
HWY_INLINE Bf16Pairs LoadBf16Pairs(const uint16_t*) {
  return {};
}
template <class V>
HWY_INLINE V DotBf16(V acc, Bf16Pairs, Bf16Pairs) {
  return acc;
}
HWY_INLINE void KeepBf16InRegister(Bf16Pairs&) {}
HWY_INLINE void PackBf16OddEven(const uint16_t*, int64_t, float*) {}
bool Bf16DotFmaExact() {
  return false;
}
#endif

// Values per k step: a float vector, or (kDot) 32 BF16 pairs.
template <bool kDot, class DF>
HWY_INLINE int64_t StepOf(DF df) {
  return kDot ? 32 : static_cast<int64_t>(hn::Lanes(df));
}

// Activation rows per tile: 32 vector registers on AVX-512 hold 24 float
// accumulators (2 weight rows x 12 activation rows; see FloatBlock); 16
// registers (AVX2, SSE, NEON) hold 2 x 4. Every tile converts each weight
// vector once, so the fewer tiles m needs, the fewer conversions: 12 rows
// let a verification of 9-12 rows run as one tile (kernels_bench F16 m =
// 9: 5-15% less time than tiles of 8 + 1; chunks of 256 values instead
// of 512, to keep 12 rows in less L1, measured slower).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kFloatTileM = 12;
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

// Targets whose F16 conversions are exact hardware instructions (F16C):
// only they load the F16 activations (job.x_half); the others read the
// same values as floats from job.x.
#undef SPECULA_HALF_X
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define SPECULA_HALF_X 1
#else
#define SPECULA_HALF_X 0
#endif

// A row's sum times its activation scale (job.x_inv_scale), if any.
HWY_INLINE float Scaled(const MatmulJob& job, int64_t i, float sum) {
  return job.x_inv_scale != nullptr ? sum * job.x_inv_scale[i] : sum;
}

// y[m0 + i][r0 + r] for i < MT, r < R. kHalfX: the activations come from
// job.x_half (F16), the same values as job.x, at half the bytes.
// kDot: BF16 weights times job.x_bf16 with vdpbf16ps (simd_bf16_dot).
// Weight rows r0 + r row_stride: side by side (1) or far apart (the two
// halves of a thread's rows, FloatDecodeRows).
template <DType kType, int R, int MT, bool kHalfX = false, bool kDot = false>
HWY_NOINLINE void FloatTile(const MatmulJob& job, int64_t r0, int64_t m0, int64_t row_stride = 1) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t n = StepOf<kDot>(df);
  const uint8_t* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = job.weights + (r0 + r * row_stride) * job.row_bytes;
  const float* xs[MT];
  for (int i = 0; i < MT; ++i) xs[i] = job.x + (m0 + i) * job.n_in;

  V acc[R][MT];
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) acc[r][i] = hn::Zero(df);
  }
  int64_t k = 0;
  if constexpr (kDot) {
    for (; k + n <= job.n_in; k += n) {
      Bf16Pairs w[R];
      for (int r = 0; r < R; ++r)
        w[r] = LoadBf16Pairs(reinterpret_cast<const uint16_t*>(rows[r]) + k);
      for (int i = 0; i < MT; ++i) {
        Bf16Pairs x = LoadBf16Pairs(job.x_bf16 + (m0 + i) * job.n_in + k);
        KeepBf16InRegister(x);
        for (int r = 0; r < R; ++r) acc[r][i] = DotBf16(acc[r][i], w[r], x);
      }
    }
  }
  for (; !kDot && k + n <= job.n_in; k += n) {
    V w[R];
    for (int r = 0; r < R; ++r) w[r] = LoadWeightVector<kType>(df, rows[r], k);
    for (int i = 0; i < MT; ++i) {
      V x;
      if constexpr (kHalfX) {
        const hn::Rebind<hwy::float16_t, decltype(df)> dh;
        const auto* xh = reinterpret_cast<const hwy::float16_t*>(job.x_half) + (m0 + i) * job.n_in;
        x = hn::PromoteTo(df, hn::LoadU(dh, xh + k));
      } else {
        x = hn::LoadU(df, xs[i] + k);
      }
      for (int r = 0; r < R; ++r) acc[r][i] = hn::MulAdd(w[r], x, acc[r][i]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int i = 0; i < MT; ++i) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][i]));
      for (int64_t t = k; t < job.n_in; ++t) sum += LoadWeightScalar<kType>(rows[r], t) * xs[i][t];
      job.y[(m0 + i) * job.n_out + r0 + r * row_stride] = Scaled(job, m0 + i, sum);
    }
  }
}

// FloatRowsBlocked: the multi-row tiles (m >= 2).
#include "kernels/matmul_float_tiles-inl.h"

// The blocked tiles with BF16 dot products: as vdpbf16ps, or as its
// F32-FMA twin where job.bf16_dot_fma (the same bits).
template <DType kType>
void Bf16DotRowsBlocked(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (job.bf16_dot_fma) {
    return FloatRowsBlocked<kType, TileMath::kBf16DotFma>(job, row_begin, row_end);
  }
  FloatRowsBlocked<kType, TileMath::kBf16Dot>(job, row_begin, row_end);
}

template <DType kType, bool kHalfX, bool kDot = false>
void FloatDecodeRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (job.decode_blocked) {
    // Large matrices (simd_float_decode_blocked_min_bytes): the blocked
    // tiles of m >= 2 with one activation row, four rows at a time, which
    // prefetch the next row block into L2. The same k order: the same bits.
    if constexpr (kDot) {
      return Bf16DotRowsBlocked<kType>(job, row_begin, row_end);
    } else {
      return FloatRowsBlocked<kType, TileMath::kFloat>(job, row_begin, row_end);
    }
  }
  int64_t r = row_begin;
  if (job.decode_rows == 4) {
    // Four weight rows side by side as independent accumulator chains.
    for (; r + 4 <= row_end; r += 4) FloatTile<kType, 4, 1, kHalfX, kDot>(job, r, 0);
  }
  // Two rows at a time, one from each half of the thread's rows: one row's
  // FMAs are a single dependent chain (4 cycles each on Zen 4), which held
  // a core to ~24 GB/s of F16 on long rows; two chains interleave, and
  // each half is still one sequential stream (rows r, r + 1 side by side
  // lost the prefetchers' stream: FusedRows, integer decode).
  const int64_t half = (row_end - r) / 2;
  for (int64_t i = 0; i < half; ++i) FloatTile<kType, 2, 1, kHalfX, kDot>(job, r + i, 0, half);
  for (r += 2 * half; r < row_end; ++r) FloatTile<kType, 1, 1, kHalfX, kDot>(job, r, 0);
}

// Two activation rows of at most kStreamPairMaxIn values where rows
// stream one after another (decode_rows == 1): each weight row once for
// both, so the weights stay one sequential stream; the blocked tiles jump
// between 24 rows every 2 KB, which Zen 4's prefetchers do not follow
// (kernels_bench, 2 threads, 2048 x 5632 F16: 1.3x the bytes per second).
// Longer rows, or more of them, no longer fit L1 beside the stream, and
// the blocked tiles win (5632 x 2048 at m = 2: 0.93x; m = 4, 8: 0.5-0.8x).
// Same accumulation order as every other path.
constexpr int64_t kStreamPairMaxIn = 2048;

template <DType kType, bool kDot>
void FloatStreamPairs(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) FloatTile<kType, 1, 2, false, kDot>(job, r, 0);
}

// Every m with BF16 dot products (the same tiles and k order as F32's;
// the blocked tiles in F32 FMAs where job.bf16_dot_fma). Called on AVX3_DL only; a
// template, so that the other targets never instantiate the BF16-dot
// tiles.
template <bool kDot>
void Bf16DotRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  if (job.m == 1) return FloatDecodeRows<DType::kBF16, false, kDot>(job, row_begin, row_end);
  if (job.decode_rows == 1 && job.m == 2 && job.n_in <= kStreamPairMaxIn) {
    return FloatStreamPairs<DType::kBF16, kDot>(job, row_begin, row_end);
  }
  Bf16DotRowsBlocked<DType::kBF16>(job, row_begin, row_end);
}

template <DType kType>
void FloatRows(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  constexpr bool kHalf = SPECULA_HALF_X && kType != DType::kF32;
#if HWY_TARGET == HWY_AVX3_DL
  if constexpr (kType == DType::kBF16) {
    if (job.x_bf16 != nullptr) return Bf16DotRows<true>(job, row_begin, row_end);
  }
#endif
  if (job.m >= 2) {
    if (job.decode_rows == 1 && job.m == 2 && job.n_in <= kStreamPairMaxIn) {
      return FloatStreamPairs<kType, false>(job, row_begin, row_end);
    }
    return FloatRowsBlocked<kType, TileMath::kFloat>(job, row_begin, row_end);
  }
  // Decode (m = 1): the activation row stays in L1 by itself (in F16 when
  // it would not, see kHalfActivationMinIn).
  if constexpr (kHalf) {
    if (job.x_half != nullptr) return FloatDecodeRows<kType, true>(job, row_begin, row_end);
  }
  FloatDecodeRows<kType, false>(job, row_begin, row_end);
}

// half_activations_row, vectorized where F16C converts exactly (rounding to
// nearest even); elsewhere the plain code, which writes the same bytes.
float HalfActivationsRow(const float* x, int64_t n, uint16_t* half, float* rounded) {
#if SPECULA_HALF_X
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t nv = static_cast<int64_t>(hn::Lanes(df));
  const auto abs_mask = hn::Set(du, 0x7fffffffu);
  auto vmax = hn::Zero(du);
  int64_t k = 0;
  for (; k + nv <= n; k += nv) {
    vmax = hn::Max(vmax, hn::And(hn::BitCast(du, hn::LoadU(df, x + k)), abs_mask));
  }
  uint32_t max_bits = hn::GetLane(hn::MaxOfLanes(du, vmax));
  for (int64_t t = k; t < n; ++t) {
    uint32_t bits;
    std::memcpy(&bits, x + t, sizeof(bits));
    max_bits = std::max(max_bits, bits & 0x7fffffffu);
  }
  const int shift = half_activation_shift(max_bits);
  const float scale = std::ldexp(1.0f, shift);
  const auto vscale = hn::Set(df, scale);
  auto* out = reinterpret_cast<hwy::float16_t*>(half);
  for (k = 0; k + nv <= n; k += nv) {
    const auto h = hn::DemoteTo(dh, hn::Mul(hn::LoadU(df, x + k), vscale));
    hn::StoreU(h, dh, out + k);
    hn::StoreU(hn::PromoteTo(df, h), df, rounded + k);
  }
  for (int64_t t = k; t < n; ++t) {
    half[t] = f32_to_f16(x[t] * scale);
    rounded[t] = f16_to_f32(half[t]);
  }
  return std::ldexp(1.0f, -shift);
#else
  return half_activations_row(x, n, half, rounded);
#endif
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

#if HWY_TARGET == HWY_AVX3_DL
SPECULA_END_EXTENSION
#endif

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(MatmulRows);
HWY_EXPORT(TargetBit);
HWY_EXPORT(HalfActivationsRow);
HWY_EXPORT(Bf16DotFmaExact);

bool bf16_dot_fma_exact_simd() {
  return HWY_DYNAMIC_DISPATCH(Bf16DotFmaExact)();
}

float half_activations_row_simd(const float* x, int64_t n, uint16_t* half, float* rounded) {
  return HWY_DYNAMIC_DISPATCH(HalfActivationsRow)(x, n, half, rounded);
}

void matmul_rows_simd(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatmulRows)(job, row_begin, row_end);
}

int64_t simd_dispatched_target() {
  return HWY_DYNAMIC_DISPATCH(TargetBit)();
}

}  // namespace specula
#endif  // HWY_ONCE

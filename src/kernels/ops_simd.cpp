// SIMD versions of the row operations of ops.h, compiled once per
// instruction set by Highway's foreach_target and chosen at run time
// (HWY_DYNAMIC_DISPATCH), like the matmul kernels. Their scalar twins are in
// ops.cpp.
//
// A row's tail (n not a multiple of the vector width) goes through a
// padded vector in a small stack buffer, so every element of a row is
// computed by the same vector code.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <hwy/contrib/math/math-inl.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Floats in the widest vector of this target: the tail buffers' size.
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// Loads the last `count` (< lanes) values of a row into a vector whose
// other lanes hold `fill`.
HWY_INLINE hn::Vec<DF> LoadTail(DF df, const float* p, int64_t count, float fill) {
  alignas(HWY_MAX_BYTES) float buffer[kMaxLanes];
  for (size_t i = 0; i < kMaxLanes; ++i) buffer[i] = fill;
  std::memcpy(buffer, p, static_cast<size_t>(count) * sizeof(float));
  return hn::Load(df, buffer);
}

HWY_INLINE void StoreTail(DF df, hn::Vec<DF> v, int64_t count, float* p) {
  alignas(HWY_MAX_BYTES) float buffer[kMaxLanes];
  hn::Store(v, df, buffer);
  std::memcpy(p, buffer, static_cast<size_t>(count) * sizeof(float));
}

// Sum of squares with two accumulators (hides the FMA latency).
HWY_NOINLINE void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  const DF df;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  auto sum0 = hn::Zero(df);
  auto sum1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    const auto v0 = hn::LoadU(df, x + i);
    const auto v1 = hn::LoadU(df, x + i + lanes);
    sum0 = hn::MulAdd(v0, v0, sum0);
    sum1 = hn::MulAdd(v1, v1, sum1);
  }
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::LoadU(df, x + i);
    sum0 = hn::MulAdd(v, v, sum0);
  }
  if (i < n) {
    const auto v = LoadTail(df, x + i, n - i, 0.0f);
    sum1 = hn::MulAdd(v, v, sum1);
  }
  const float sum_squares = hn::GetLane(hn::SumOfLanes(df, hn::Add(sum0, sum1)));
  const float scale = 1.0f / std::sqrt(sum_squares / static_cast<float>(n) + eps);
  const auto vscale = hn::Set(df, scale);
  for (i = 0; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vscale), hn::LoadU(df, weight + i)), df,
               out + i);
  }
  if (i < n) {
    const auto v = hn::Mul(hn::Mul(LoadTail(df, x + i, n - i, 0.0f), vscale),
                           LoadTail(df, weight + i, n - i, 0.0f));
    StoreTail(df, v, n - i, out + i);
  }
}

HWY_NOINLINE void Softmax(float* x, int64_t n) {
  const DF df;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  const float lowest = -std::numeric_limits<float>::infinity();
  auto vmax = hn::Set(df, lowest);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
  if (i < n) vmax = hn::Max(vmax, LoadTail(df, x + i, n - i, lowest));
  vmax = hn::MaxOfLanes(df, vmax);

  auto sum = hn::Zero(df);
  for (i = 0; i + lanes <= n; i += lanes) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmax));
    sum = hn::Add(sum, e);
    hn::StoreU(e, df, x + i);
  }
  if (i < n) {
    // The fill lanes give exp(-inf) = 0: they add nothing to the sum.
    const auto e = hn::Exp(df, hn::Sub(LoadTail(df, x + i, n - i, lowest), vmax));
    sum = hn::Add(sum, e);
    StoreTail(df, e, n - i, x + i);
  }
  const auto inverse = hn::Set(df, 1.0f / hn::GetLane(hn::SumOfLanes(df, sum)));
  for (i = 0; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Mul(hn::LoadU(df, x + i), inverse), df, x + i);
  if (i < n) StoreTail(df, hn::Mul(LoadTail(df, x + i, n - i, 0.0f), inverse), n - i, x + i);
}

// silu(g) * u = g / (1 + exp(-g)) * u. exp's argument is capped at 88
// (exp(88) ~ 1.7e38, still finite), beyond which the result is ~0 anyway;
// Highway's Exp is only defined up to 104.
HWY_INLINE hn::Vec<DF> SiluMulVector(DF df, hn::Vec<DF> gate, hn::Vec<DF> up) {
  const auto e = hn::Exp(df, hn::Min(hn::Neg(gate), hn::Set(df, 88.0f)));
  return hn::Mul(hn::Div(gate, hn::Add(hn::Set(df, 1.0f), e)), up);
}

HWY_NOINLINE void SiluMul(float* gate, const float* up, int64_t n) {
  const DF df;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(SiluMulVector(df, hn::LoadU(df, gate + i), hn::LoadU(df, up + i)), df, gate + i);
  if (i < n) {
    const auto v =
        SiluMulVector(df, LoadTail(df, gate + i, n - i, 0.0f), LoadTail(df, up + i, n - i, 0.0f));
    StoreTail(df, v, n - i, gate + i);
  }
}

HWY_NOINLINE void AddInPlace(float* y, const float* x, int64_t n) {
  const DF df;
  const auto lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(Softmax);
HWY_EXPORT(SiluMul);
HWY_EXPORT(AddInPlace);

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, weight, n, eps, out);
}

void softmax(float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(Softmax)(x, n);
}

void silu_mul(float* gate, const float* up, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SiluMul)(gate, up, n);
}

void add_in_place(float* y, const float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddInPlace)(y, x, n);
}

}  // namespace specula
#endif  // HWY_ONCE

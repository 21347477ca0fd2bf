// round_to_bf16 of train/gemm_dnnl.h, compiled once per SIMD target by
// Highway's foreach_target and chosen at run time. Rounding the operands
// is on the bf16 products' path: for a 2048 x 512 x 512 product it touches
// 1.3M floats, which a scalar loop takes about as long as AMX takes for
// the product itself.
//
// Highway 1.0's own DemoteTo(bfloat16) truncates, so the rounding is done
// here on the bits: adding 0x7fff plus the lowest kept bit carries into
// the kept half exactly when the dropped half is above one half, or equal
// to it with an odd kept half (ties to even); overflow rounds to infinity,
// as it should. A NaN would round to infinity, so it keeps its sign and
// top payload bits and is made quiet instead.

#include "kernels/simd_config.h"  // first: fixes the target list

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "learn/bf16_round.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstdint>
#include <cstring>

#include "learn/gemm_dnnl.h"

HWY_BEFORE_NAMESPACE();
namespace specula {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

uint16_t RoundOne(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const bool is_nan = (bits & 0x7fffffffu) > 0x7f800000u;
  return static_cast<uint16_t>(is_nan ? ((bits >> 16) | 0x40u) : rounded);
}

void RoundToBf16(const float* HWY_RESTRICT in, int64_t n, uint16_t* HWY_RESTRICT out) {
  const hn::ScalableTag<int32_t> di;
  const hn::Rebind<uint16_t, decltype(di)> du16;
  const hn::Rebind<float, decltype(di)> df;
  const auto lanes = static_cast<int64_t>(hn::Lanes(di));
  const auto bias = hn::Set(di, 0x7fff);
  const auto one = hn::Set(di, 1);
  const auto abs_mask = hn::Set(di, 0x7fffffff);
  const auto infinity = hn::Set(di, 0x7f800000);
  const auto quiet = hn::Set(di, 0x40);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto bits = hn::BitCast(di, hn::LoadU(df, in + i));
    // Logical shifts: the sign bit must not spread into the kept half.
    const auto high = hn::BitCast(
        di, hn::ShiftRight<16>(hn::BitCast(hn::RebindToUnsigned<decltype(di)>(), bits)));
    const auto sum = hn::Add(bits, hn::Add(bias, hn::And(high, one)));
    const auto rounded =
        hn::BitCast(di, hn::ShiftRight<16>(hn::BitCast(hn::RebindToUnsigned<decltype(di)>(), sum)));
    // |bits| as a signed value is never negative, so a signed compare works.
    const auto is_nan = hn::Gt(hn::And(bits, abs_mask), infinity);
    const auto result = hn::IfThenElse(is_nan, hn::Or(high, quiet), rounded);
    // Every lane is in [0, 0xffff]: the saturating demotion is exact.
    hn::StoreU(hn::DemoteTo(du16, result), du16, out + i);
  }
  for (; i < n; ++i) out[i] = RoundOne(in[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace specula
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace specula {

HWY_EXPORT(RoundToBf16);

void round_to_bf16(const float* in, int64_t n, uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(RoundToBf16)(in, n, out);
}

}  // namespace specula
#endif  // HWY_ONCE

#include "kernels/dispatch.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "core/error.h"

namespace specula {
namespace {

TEST(Dispatch, ListsTargetsBestFirstWithScalarLast) {
  const std::vector<SimdTarget> targets = simd_targets();
  ASSERT_FALSE(targets.empty());
  for (size_t i = 1; i < targets.size(); ++i) EXPECT_LT(targets[i - 1].bit, targets[i].bit);
  EXPECT_EQ(simd_active_target().name, targets.front().name) << "the best target by default";
}

TEST(Dispatch, ForcesEachTarget) {
  for (const SimdTarget& target : simd_targets()) {
    ScopedSimdTarget scoped(target.bit);
    EXPECT_EQ(simd_active_target().bit, target.bit);
  }
}

TEST(Dispatch, FallsBackWhenTargetUnavailable) {
  const std::vector<SimdTarget> targets = simd_targets();
  // A target bit this build/CPU does not offer (an Arm one on x86, an x86
  // one on Arm) falls back to the scalar kernels, not a crash.
#if HWY_ARCH_X86
  const int64_t foreign = HWY_NEON;
#else
  const int64_t foreign = HWY_AVX2;
#endif
  {
    ScopedSimdTarget scoped(foreign);
    EXPECT_EQ(simd_active_target().name, hwy::TargetName(HWY_SCALAR));
  }
  // Offering the unavailable target beside the second best picks the latter.
  if (targets.size() >= 2) {
    ScopedSimdTarget scoped(foreign | targets[1].bit);
    EXPECT_EQ(simd_active_target().bit, targets[1].bit);
  }
  EXPECT_EQ(simd_active_target().bit, targets.front().bit) << "restriction lifted";
}

TEST(Dispatch, TargetByName) {
  const SimdTarget best = simd_targets().front();
  std::string lower = best.name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(simd_target_by_name(lower).bit, best.bit);
  EXPECT_THROW(simd_target_by_name("no-such-isa"), Error);
}

}  // namespace
}  // namespace specula

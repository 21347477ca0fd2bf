// The drafter bandit on synthetic arms: it tries every arm, converges to
// the better one, and notices when the better one changes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "policies/bandit.h"

namespace specula {
namespace {

// Rewards ~ Normal(means[arm], sd); returns pulls of each arm over `steps`.
std::vector<int> play(DrafterBandit& bandit, const std::vector<double>& means, double sd, int steps,
                      Rng& rng) {
  std::vector<int> pulls(means.size(), 0);
  std::vector<int32_t> all;
  for (int32_t a = 0; a < static_cast<int32_t>(means.size()); ++a) all.push_back(a);
  for (int i = 0; i < steps; ++i) {
    const int32_t arm = bandit.choose(all, rng);
    ++pulls[arm];
    bandit.observe(arm, means[arm] + sd * standard_normal(rng));
  }
  return pulls;
}

TEST(DrafterBandit, TriesEveryArmFirst) {
  DrafterBandit bandit(3);
  Rng rng(1);
  const std::vector<int32_t> all = {0, 1, 2};
  std::vector<int> seen(3, 0);
  for (int i = 0; i < 3; ++i) {
    const int32_t arm = bandit.choose(all, rng);
    ++seen[arm];
    bandit.observe(arm, 100.0);
  }
  EXPECT_EQ(seen, std::vector<int>({1, 1, 1}));
}

TEST(DrafterBandit, ConvergesToTheBetterArm) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    DrafterBandit bandit(2);
    Rng rng(seed);
    play(bandit, {100.0, 150.0}, 30.0, 200, rng);
    const std::vector<int> pulls = play(bandit, {100.0, 150.0}, 30.0, 500, rng);
    EXPECT_GT(pulls[1], 450) << "seed " << seed;
    EXPECT_GT(bandit.mean(1), bandit.mean(0));
  }
}

TEST(DrafterBandit, FollowsAChangeOfTheBetterArm) {
  DrafterBandit bandit(2);
  Rng rng(9);
  play(bandit, {100.0, 150.0}, 20.0, 300, rng);
  play(bandit, {200.0, 150.0}, 20.0, 300, rng);
  const std::vector<int> pulls = play(bandit, {200.0, 150.0}, 20.0, 300, rng);
  EXPECT_GT(pulls[0], 250);
}

TEST(DrafterBandit, ChoosesOnlyAmongCandidates) {
  DrafterBandit bandit(3);
  Rng rng(2);
  for (int i = 0; i < 30; ++i) bandit.observe(i % 3, i % 3 == 2 ? 500.0 : 10.0);
  const std::vector<int32_t> some = {0, 1};
  for (int i = 0; i < 50; ++i) EXPECT_NE(bandit.choose(some, rng), 2);
  const std::vector<int32_t> one = {2};
  EXPECT_EQ(bandit.choose(one, rng), 2);
}

TEST(DrafterBandit, CarryOverIsCapped) {
  DrafterBandit bandit(2, {0.99, 8.0});
  for (int i = 0; i < 200; ++i) bandit.observe(0, 10.0);
  EXPECT_GT(bandit.weight(0), 8.0);
  bandit.begin_sequence();
  EXPECT_NEAR(bandit.weight(0), 8.0, 1e-9);
  EXPECT_NEAR(bandit.mean(0), 10.0, 1e-9);
  EXPECT_EQ(bandit.pulls(0), 200);
  EXPECT_THROW(DrafterBandit(0), Error);
}

TEST(StandardNormal, HasMeanZeroAndUnitVariance) {
  Rng rng(4);
  double sum = 0, sum_squares = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = standard_normal(rng);
    sum += z;
    sum_squares += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_squares / n, 1.0, 0.02);
}

}  // namespace
}  // namespace specula

// The sampling transform on hand-computed examples, against an independent
// full-sort reference on large vocabularies, validation, the Rng and draws.
#include "sampling/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "core/error.h"
#include "spec/chi_square.h"

namespace specula {
namespace {

SamplingParams params(float temperature, int32_t top_k = 0, float top_p = 1.0f,
                      float min_p = 0.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

// Logits whose softmax at T = 1 is exactly (up to float) these probabilities.
std::vector<float> log_of(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::set<int32_t> support(const std::vector<float>& probs) {
  std::set<int32_t> kept;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] > 0.0f) kept.insert(static_cast<int32_t>(i));
  }
  return kept;
}

// Checks probs is proportional to `weights` on `kept` and zero elsewhere.
void expect_renormalised(const std::vector<float>& probs, const std::vector<double>& weights,
                         const std::set<int32_t>& kept) {
  double mass = 0;
  for (int32_t id : kept) mass += weights[id];
  for (size_t i = 0; i < probs.size(); ++i) {
    const double expected = kept.count(static_cast<int32_t>(i)) ? weights[i] / mass : 0.0;
    EXPECT_NEAR(probs[i], expected, 1e-6) << "id " << i;
  }
}

const std::vector<double> kFive = {0.5, 0.2, 0.15, 0.1, 0.05};

TEST(Sampling, TemperatureOneIsSoftmax) {
  std::vector<float> probs;
  logits_to_probs(log_of(kFive), params(1.0f), probs);
  expect_renormalised(probs, kFive, {0, 1, 2, 3, 4});
}

TEST(Sampling, TemperatureSharpensAndFlattens) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f};
  for (float t : {0.5f, 2.0f, 0.7f}) {
    std::vector<double> weights;
    for (float l : logits) weights.push_back(std::exp(l / static_cast<double>(t)));
    std::vector<float> probs;
    logits_to_probs(logits, params(t), probs);
    expect_renormalised(probs, weights, {0, 1, 2, 3});
  }
}

TEST(Sampling, TopKKeepsTheKMostProbable) {
  std::vector<float> probs;
  logits_to_probs(log_of(kFive), params(1.0f, 2), probs);
  expect_renormalised(probs, kFive, {0, 1});
  logits_to_probs(log_of(kFive), params(1.0f, 99), probs);
  expect_renormalised(probs, kFive, {0, 1, 2, 3, 4});
}

TEST(Sampling, TopKBreaksTiesTowardsLowerIds) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f};
  std::vector<float> probs;
  logits_to_probs(logits, params(1.0f, 1), probs);
  EXPECT_EQ(support(probs), (std::set<int32_t>{1}));
  logits_to_probs(logits, params(1.0f, 2), probs);
  EXPECT_EQ(support(probs), (std::set<int32_t>{1, 3}));
  EXPECT_FLOAT_EQ(probs[1], 0.5f);
}

TEST(Sampling, TopPKeepsTheShortestRunReachingP) {
  std::vector<float> probs;
  logits_to_probs(log_of(kFive), params(1.0f, 0, 0.1f), probs);
  expect_renormalised(probs, kFive, {0});
  logits_to_probs(log_of(kFive), params(1.0f, 0, 0.6f), probs);
  expect_renormalised(probs, kFive, {0, 1});
  logits_to_probs(log_of(kFive), params(1.0f, 0, 0.8f), probs);
  expect_renormalised(probs, kFive, {0, 1, 2});
  logits_to_probs(log_of(kFive), params(1.0f, 0, 0.9f), probs);
  expect_renormalised(probs, kFive, {0, 1, 2, 3});
}

TEST(Sampling, MinPKeepsIdsAboveAFractionOfTheBest) {
  std::vector<float> probs;
  // 0.25 * 0.5 = 0.125: keeps 0.5, 0.2, 0.15.
  logits_to_probs(log_of(kFive), params(1.0f, 0, 1.0f, 0.25f), probs);
  expect_renormalised(probs, kFive, {0, 1, 2});
  // 0.35 * 0.5 = 0.175: keeps 0.5, 0.2.
  logits_to_probs(log_of(kFive), params(1.0f, 0, 1.0f, 0.35f), probs);
  expect_renormalised(probs, kFive, {0, 1});
  logits_to_probs(log_of(kFive), params(1.0f, 0, 1.0f, 1.0f), probs);
  expect_renormalised(probs, kFive, {0});
}

TEST(Sampling, FiltersIntersect) {
  std::vector<float> probs;
  // top-k 3 -> {0,1,2}; top-p 0.9 -> {0,1,2,3}; min-p 0.25 -> {0,1,2}.
  logits_to_probs(log_of(kFive), params(1.0f, 3, 0.9f, 0.25f), probs);
  expect_renormalised(probs, kFive, {0, 1, 2});
  // top-k 4, top-p 0.6 -> {0,1}.
  logits_to_probs(log_of(kFive), params(1.0f, 4, 0.6f, 0.05f), probs);
  expect_renormalised(probs, kFive, {0, 1});
  // Filters act on the tempered distribution: at T = 0.5 the weights are
  // squared, 0.25/0.04/0.0225/0.01/0.0025 (sum 0.325): top-p 0.85 needs
  // 0.25 + 0.04 = 0.29 >= 0.276 -> {0, 1}.
  std::vector<double> squared;
  for (double p : kFive) squared.push_back(p * p);
  logits_to_probs(log_of(kFive), params(0.5f, 0, 0.85f), probs);
  expect_renormalised(probs, squared, {0, 1});
}

TEST(Sampling, GreedyIsOneHotOnTheFirstArgmax) {
  const std::vector<float> logits = {0.0f, 5.0f, -1.0f, 5.0f};
  std::vector<float> probs;
  logits_to_probs(logits, params(0.0f, 2, 0.5f, 0.1f), probs);
  EXPECT_EQ(probs, (std::vector<float>{0.0f, 1.0f, 0.0f, 0.0f}));
  EXPECT_EQ(argmax(logits), 1);
  EXPECT_EQ(argmax(std::vector<float>{2.0f, 2.0f}), 0);
  EXPECT_EQ(argmax(std::vector<float>{-3.0f}), 0);
}

// The rule written as one plain loop: the first index of the largest
// value; a NaN never wins, a NaN at index 0 is never beaten.
int32_t argmax_reference(const std::vector<float>& v) {
  int32_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

TEST(Sampling, ArgmaxFollowsTheFirstLargestRuleAtEveryLengthAndPosition) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::mt19937 rng(7);
  // Few distinct values, so ties are common; the specials at random places.
  const std::vector<float> pool = {-inf, -1.0f, -0.0f, 0.0f, 0.5f, 3.0f, 3.0f, inf, nan};
  int cases = 0;
  for (size_t n : {1, 2, 15, 16, 17, 31, 32, 33, 100, 8192}) {
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<float> v(n);
      const size_t distinct = 1 + static_cast<size_t>(rep) % pool.size();
      for (float& x : v) x = pool[rng() % distinct];
      ASSERT_EQ(argmax(v), argmax_reference(v)) << "n " << n << " rep " << rep;
      ++cases;
    }
  }
  EXPECT_EQ(cases, 2000);
  EXPECT_EQ(argmax(std::vector<float>{nan, 1.0f, 2.0f}), 0);
  EXPECT_EQ(argmax(std::vector<float>{1.0f, nan, 2.0f, nan}), 2);
  EXPECT_EQ(argmax(std::vector<float>{-inf, -inf}), 0);
  std::vector<float> late(40, -1.0f);
  late[39] = 0.0f;
  EXPECT_EQ(argmax(late), 39);  // in the scalar tail after the lanes
  late[20] = 0.0f;
  EXPECT_EQ(argmax(late), 20);
}

TEST(Sampling, MaskedLogitsGetNoMass) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> probs;
  logits_to_probs(std::vector<float>{0.0f, -inf, 0.0f}, params(1.0f), probs);
  EXPECT_EQ(probs, (std::vector<float>{0.5f, 0.0f, 0.5f}));
}

// An independent reference: sort every id, take the prefixes, intersect.
std::vector<float> reference_probs(const std::vector<float>& logits, const SamplingParams& p) {
  const size_t n = logits.size();
  double max_logit = -1e30;
  for (float l : logits) max_logit = std::max<double>(max_logit, l);
  std::vector<double> w(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    w[i] = std::exp((logits[i] - max_logit) / p.temperature);
    total += w[i];
  }
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return w[a] > w[b]; });
  size_t keep = p.top_k > 0 ? std::min<size_t>(p.top_k, n) : n;
  double mass = 0;
  for (size_t j = 0; j < n; ++j) {
    mass += w[order[j]];
    if (mass >= p.top_p * total) {
      keep = std::min(keep, j + 1);
      break;
    }
  }
  size_t above = 0;
  while (above < n && w[order[above]] >= p.min_p) ++above;
  keep = std::min(keep, above);
  std::vector<float> probs(n, 0.0f);
  double kept = 0;
  for (size_t j = 0; j < keep; ++j) kept += w[order[j]];
  for (size_t j = 0; j < keep; ++j) probs[order[j]] = static_cast<float>(w[order[j]] / kept);
  return probs;
}

TEST(Sampling, MatchesAFullSortReferenceOnLargeVocabularies) {
  Rng rng(42);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = 1000 + static_cast<size_t>(rng.uniform() * 40000);
    std::vector<float> logits(n);
    // Many repeated values (quantised logits) so that ties at the cut matter.
    const double scale = 1 + rng.uniform() * 8;
    for (float& l : logits) l = static_cast<float>(std::round(rng.uniform() * scale * 8) / 8);
    SamplingParams p = params(0.3f + static_cast<float>(rng.uniform() * 1.5));
    const int variant = trial % 4;
    if (variant == 0 || variant == 3) p.top_k = 1 + static_cast<int32_t>(rng.uniform() * 3000);
    if (variant == 1 || variant == 3) p.top_p = 0.05f + static_cast<float>(rng.uniform() * 0.9);
    if (variant == 2 || variant == 3) p.min_p = static_cast<float>(rng.uniform() * 0.2);
    std::vector<float> probs;
    logits_to_probs(logits, p, probs);
    const std::vector<float> expected = reference_probs(logits, p);
    ASSERT_EQ(support(probs), support(expected))
        << "trial " << trial << " T=" << p.temperature << " k=" << p.top_k << " p=" << p.top_p
        << " min_p=" << p.min_p;
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(probs[i], expected[i], 1e-6) << "id " << i;
  }
}

TEST(Sampling, ValidateNamesTheBadParameter) {
  auto message = [](SamplingParams p) {
    try {
      validate(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message(SamplingParams{}), "");
  EXPECT_EQ(message(params(0.0f, 0, 1.0f, 0.0f)), "");
  EXPECT_NE(message(params(-0.1f)).find("temperature"), std::string::npos);
  EXPECT_NE(message(params(NAN)).find("temperature"), std::string::npos);
  EXPECT_NE(message(params(INFINITY)).find("temperature"), std::string::npos);
  EXPECT_NE(message(params(1.0f, -1)).find("top-k"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, 0.0f)).find("top-p"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, 1.5f)).find("top-p"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, NAN)).find("top-p"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, 1.0f, -0.5f)).find("min-p"), std::string::npos);
  EXPECT_NE(message(params(1.0f, 0, 1.0f, 1.5f)).find("min-p"), std::string::npos);
}

TEST(Rng, SameSeedSameStreamOtherSeedOtherStream) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, UniformIsInTheUnitIntervalAndUniform) {
  Rng rng(3);
  std::vector<int64_t> counts(20, 0);
  for (int i = 0; i < 200000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++counts[static_cast<size_t>(u * 20)];
  }
  EXPECT_GT(testing::chi_square_test(counts, std::vector<double>(20, 0.05)).p_value, 1e-4);
}

TEST(Sample, FrequenciesMatchTheDistribution) {
  // Unnormalised on purpose: sample() divides by the sum.
  const std::vector<float> weights = {0.0f, 1.0f, 2.0f, 0.0f, 3.0f, 4.0f};
  const std::vector<double> expected = {0.0, 0.1, 0.2, 0.0, 0.3, 0.4};
  Rng rng(11);
  std::vector<int64_t> counts(weights.size(), 0);
  for (int i = 0; i < 100000; ++i) ++counts[sample(weights, rng)];
  const auto fit = testing::chi_square_test(counts, expected);
  EXPECT_GT(fit.p_value, 1e-4) << fit.detail;
  // And the test has power: the same counts do not fit a shifted distribution.
  EXPECT_LT(testing::chi_square_test(counts, {0.0, 0.12, 0.18, 0.0, 0.3, 0.4}).p_value, 1e-4);
}

TEST(Sample, IsReproducibleAndRejectsNoMass) {
  const std::vector<float> probs = {0.25f, 0.25f, 0.5f};
  Rng a(5), b(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample(probs, a), sample(probs, b));
  Rng rng(1);
  EXPECT_THROW(sample(std::vector<float>{0.0f, 0.0f}, rng), Error);
}

}  // namespace
}  // namespace specula

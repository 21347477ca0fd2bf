// Draft-length policies on synthetic problems: true acceptance and costs are
// set by the test, steps are simulated (no model, no clock), and the
// policies' decisions are checked against what the cost model says is best,
// computed here in closed form. No timing is measured anywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "core/error.h"
#include "policies/policy.h"
#include "policies/policy_adaptive.h"
#include "sampling/sampling.h"

namespace specula {
namespace {

// A synthetic machine and drafter: each drafted token is accepted with
// probability `acceptance` (independently, given the earlier ones were);
// drafting costs `draft_seconds` per token, a target pass over n rows
// `verify_seconds(n) = t1 * (1 + row_fraction * (n - 1))`.
struct World {
  double acceptance = 0.7;
  double draft_seconds = 0.0;
  double t1 = 0.010;
  double row_fraction = 0.0;
  // Optional: each token's confidence is uniform in [0, 1], and it is
  // accepted exactly when its confidence is above this (ignores acceptance).
  double accept_above_confidence = -1;
  // Optional: each token's confidence is u^calibrated_skew (u uniform in
  // [0, 1]) and it is accepted with probability equal to its confidence,
  // as from a calibrated drafter (ignores acceptance).
  double calibrated_skew = -1;
  // Optional: text alternates between easy and hard stretches (each token
  // leaves its stretch with probability `switch_probability`); a drafted
  // token is accepted with probability easy_acceptance or hard_acceptance
  // (ignores acceptance). Real acceptance comes in such runs.
  double switch_probability = -1;
  double easy_acceptance = 0.9, hard_acceptance = 0.2;
  // Optional: a shared, noisy machine. Each step takes `spike_factor` times
  // longer with probability `spike_probability` (the process was
  // preempted), and the machine alternates between normal and slow spells
  // (every cost x `spell_factor`; each step leaves its spell with
  // probability `spell_switch`). The noise is real time: it counts in the
  // realised rate too.
  double spike_probability = 0, spike_factor = 1;
  double spell_switch = 0, spell_factor = 1;

  // Optional: t(n) / t(1) measured on a machine, at the rows listed
  // (n = 1 first), linear in between and past the last: replaces
  // row_fraction. Real curves are not lines: flat up to a kernel's tile
  // height, then steep where the arithmetic overtakes the weight reads.
  std::vector<std::pair<int32_t, double>> shape;

  double verify_seconds(int32_t rows) const {
    if (shape.empty()) return t1 * (1.0 + row_fraction * (rows - 1));
    for (size_t i = 1; i < shape.size(); ++i) {
      const auto [n0, r0] = shape[i - 1];
      const auto [n1, r1] = shape[i];
      if (rows <= n1 || i + 1 == shape.size()) {
        return t1 * (r0 + (r1 - r0) * (rows - n0) / static_cast<double>(n1 - n0));
      }
    }
    return t1;
  }
  // E(g) / T(g) with a constant acceptance (design.md), independent of the
  // policy's own estimator.
  double rate(int32_t g) const {
    const double expected =
        acceptance >= 1.0 ? g + 1.0 : (1.0 - std::pow(acceptance, g + 1)) / (1.0 - acceptance);
    return expected / (g * draft_seconds + verify_seconds(g + 1));
  }
  int32_t best_g(int32_t g_max) const {
    int32_t best = 0;
    for (int32_t g = 1; g <= g_max; ++g) {
      if (rate(g) > rate(best)) best = g;
    }
    return best;
  }
};

struct Simulation {
  explicit Simulation(DraftLengthPolicy& p, uint64_t seed = 1) : policy(p), rng(seed) {}

  // Runs one step with drafter slot 0; returns the plan it followed.
  StepPlan step(const World& world, int32_t limit) {
    const StepPlan plan = policy.plan(0, limit);
    StepOutcome outcome;
    outcome.slot = plan.draft_length > 0 ? 0 : -1;
    outcome.requested = plan.draft_length;
    outcome.probe = plan.probe;
    confidence.clear();
    bool all_accepted = true;
    for (int32_t i = 0; i < plan.draft_length; ++i) {
      bool accepted = false;
      if (world.accept_above_confidence >= 0) {
        confidence.push_back(static_cast<float>(rng.uniform()));
        accepted = confidence.back() > world.accept_above_confidence;
      } else if (world.switch_probability > 0) {
        accepted = rng.uniform() < (easy ? world.easy_acceptance : world.hard_acceptance);
      } else if (world.calibrated_skew > 0) {
        confidence.push_back(static_cast<float>(std::pow(rng.uniform(), world.calibrated_skew)));
        accepted = rng.uniform() < confidence.back();
      } else {
        accepted = rng.uniform() < world.acceptance;
      }
      ++outcome.drafted;
      if (all_accepted && accepted) {
        ++outcome.accepted;
      } else {
        all_accepted = false;
      }
      if (!confidence.empty() && confidence.back() < plan.stop_confidence) break;
    }
    outcome.confidence = confidence;
    double noise = slow_spell ? world.spell_factor : 1.0;
    if (world.spike_probability > 0 && rng.uniform() < world.spike_probability) {
      noise *= world.spike_factor;
    }
    if (world.spell_switch > 0 && rng.uniform() < world.spell_switch) slow_spell = !slow_spell;
    outcome.draft_seconds = outcome.drafted * world.draft_seconds * noise;
    outcome.verify_seconds = world.verify_seconds(outcome.drafted + 1) * noise;
    policy.observe(outcome);
    if (world.switch_probability > 0) {
      for (int32_t i = 0; i <= outcome.accepted; ++i) {
        if (rng.uniform() < world.switch_probability) easy = !easy;
      }
    }
    tokens += outcome.accepted + 1;
    seconds += outcome.draft_seconds + outcome.verify_seconds;
    ++steps;
    if (plan.draft_length == 0) ++plain_steps;
    if (plan.probe) ++probes;
    ++g_counts[plan.draft_length];
    return plan;
  }
  // Runs n steps, returning how many drafted (g > 0).
  int32_t run(const World& world, int32_t n, int32_t limit) {
    int32_t drafting = 0;
    for (int32_t i = 0; i < n; ++i) drafting += step(world, limit).draft_length > 0;
    return drafting;
  }
  void reset_counts() {
    steps = plain_steps = probes = 0;
    g_counts.clear();
    tokens = 0;
    seconds = 0;
  }
  double tokens_per_second() const { return tokens / seconds; }

  DraftLengthPolicy& policy;
  Rng rng;
  std::vector<float> confidence;
  int32_t steps = 0, plain_steps = 0, probes = 0;
  std::map<int32_t, int32_t> g_counts;
  double tokens = 0, seconds = 0;  // generated and spent, since reset_counts
  bool easy = true;                // World::switch_probability's state
  bool slow_spell = false;         // World::spell_switch's state
};

PolicyOptions options_for(PolicyKind kind) {
  PolicyOptions o;
  o.kind = kind;
  return o;
}

TEST(AdaptivePolicy, DecodesPlainlyWhenDraftsCostTooMuch) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(8);
  Simulation sim(policy);
  World world;
  world.acceptance = 0.5;
  world.draft_seconds = world.t1;  // a draft as slow as the target
  world.row_fraction = 0.1;
  ASSERT_EQ(world.best_g(8), 0);
  sim.run(world, 200, 8);
  sim.reset_counts();
  sim.run(world, 300, 8);
  EXPECT_GE(sim.plain_steps, 270) << "probes: " << sim.probes;
  EXPECT_TRUE(policy.off(0));
}

TEST(AdaptivePolicy, DecodesPlainlyWhenNothingIsAccepted) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(8);
  Simulation sim(policy);
  World world;
  world.acceptance = 0.0;
  world.draft_seconds = world.t1 * 0.02;  // cheap drafts, but useless
  world.row_fraction = 0.05;
  sim.run(world, 200, 8);
  sim.reset_counts();
  sim.run(world, 300, 8);
  EXPECT_GE(sim.plain_steps, 280) << "probes: " << sim.probes;
  // Probes keep happening, at a growing interval.
  EXPECT_GT(sim.probes, 0);
  EXPECT_LT(sim.probes, 300 / AdaptiveOptions().probe_interval_min);
  EXPECT_GT(policy.probe_interval(0), AdaptiveOptions().probe_interval_min);
}

TEST(AdaptivePolicy, DraftsTheMostWhenEverythingIsAcceptedAndDraftsAreCheap) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(8);
  Simulation sim(policy);
  World world;
  world.acceptance = 1.0;
  world.draft_seconds = world.t1 * 0.01;
  world.row_fraction = 0.02;
  ASSERT_EQ(world.best_g(8), 8);
  sim.run(world, 100, 8);
  sim.reset_counts();
  sim.run(world, 200, 8);
  // All but the plain refresh steps draft the maximum.
  EXPECT_GE(sim.g_counts[8], 190);
}

TEST(AdaptivePolicy, ChoosesTheDraftLengthTheCostModelSaysIsBest) {
  struct Case {
    double acceptance, draft_fraction, row_fraction;
  };
  for (const Case c :
       {Case{0.8, 0.05, 0.05}, Case{0.6, 0.1, 0.1}, Case{0.9, 0.02, 0.2}, Case{0.75, 0.2, 0.0}}) {
    AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
    policy.begin_sequence(12);
    Simulation sim(policy, 7);
    World world;
    world.acceptance = c.acceptance;
    world.draft_seconds = world.t1 * c.draft_fraction;
    world.row_fraction = c.row_fraction;
    const int32_t best = world.best_g(12);
    ASSERT_GT(best, 0);
    sim.run(world, 300, 12);
    sim.reset_counts();
    sim.run(world, 400, 12);
    // The estimates are noisy (acceptance from ~20 recent drafts), and the
    // rate is flat near its peak: judge the rate the chosen g's achieve.
    double achieved = 0;
    for (const auto& [g, n] : sim.g_counts) achieved += n * world.rate(g);
    achieved /= sim.steps;
    SCOPED_TRACE("acceptance " + std::to_string(c.acceptance) + ", best g " + std::to_string(best));
    EXPECT_GT(achieved, 0.95 * world.rate(best));
    EXPECT_GT(sim.g_counts[best] + sim.g_counts[best - 1] + sim.g_counts[best + 1], 200);
  }
}

// An adaptive policy with exploration every `explore_interval` drafting
// steps and no plain refreshes, after one 10 ms plain step, run for
// `steps` steps whose outcome `fill` sets (accepted tokens and seconds,
// from the step index and g): the g it planned at each step.
template <class Fill>
std::vector<int32_t> planned_lengths(int32_t explore_interval, int steps, const Fill& fill) {
  PolicyOptions o = options_for(PolicyKind::kAdaptive);
  o.adaptive.explore_interval = explore_interval;
  o.adaptive.plain_refresh_steps = 0;
  AdaptivePolicy policy(o);
  policy.begin_sequence(8);
  StepOutcome plain;
  plain.verify_seconds = 0.010;
  policy.observe(plain);
  std::vector<int32_t> planned;
  for (int step = 0; step < steps; ++step) {
    const StepPlan plan = policy.plan(0, 8);
    planned.push_back(plan.draft_length);
    StepOutcome outcome;
    outcome.slot = 0;
    outcome.requested = outcome.drafted = plan.draft_length;
    fill(step, plan.draft_length, outcome);
    policy.observe(outcome);
  }
  return planned;
}

TEST(AdaptivePolicy, ExploresOneTokenPastTheBestNowAndThen) {
  // The first drafted token is always accepted, the second never: g = 1
  // yields as much as g = 2 for less, so g = 1 is best. Every 4th drafting
  // step still asks for 2 tokens, so that position 1 and 3-row passes stay
  // measured. With exploration off, g = 2 comes back only as position 1's
  // evidence fades, at growing intervals (steps 0, 5, 11, 19, 27, 35 here).
  for (const int32_t interval : {4, 0}) {
    const std::vector<int32_t> planned =
        planned_lengths(interval, 40, [](int, int32_t g, StepOutcome& outcome) {
          outcome.accepted = g > 0 ? 1 : 0;
          outcome.draft_seconds = 0.003 * g;
          outcome.verify_seconds = 0.010 + 0.001 * g;
        });
    SCOPED_TRACE("interval " + std::to_string(interval));
    // After the first steps have taught it: g = 1, and with exploration
    // exactly one g = 2 in every `interval` consecutive steps.
    for (int step = 20; step < 40; ++step) {
      EXPECT_TRUE(planned[step] == 1 || planned[step] == 2) << "step " << step;
    }
    if (interval == 0) {
      EXPECT_LE(std::count(planned.begin() + 20, planned.end(), 2), 3);
    } else {
      for (int step = 20; step + interval <= 40; ++step) {
        EXPECT_EQ(std::count(planned.begin() + step, planned.begin() + step + interval, 2), 1)
            << "steps " << step << "..";
      }
    }
  }
}

// Past a step up of the verify curve (3 rows 10 ms, 4 rows 25 ms) a third
// token cannot pay even if it were always accepted: exploring it every 4th
// step would cost ~1/3 of a step each time, so it is explored 8x less
// often (once in 32 drafting steps).
TEST(AdaptivePolicy, ExploresPastAStepOfTheCostCurveRarely) {
  const std::vector<int32_t> planned =
      planned_lengths(4, 200, [](int step, int32_t g, StepOutcome& outcome) {
        outcome.accepted = std::min(g, step % 2 == 0 ? 2 : 1);
        outcome.draft_seconds = 0.0001 * g;
        outcome.verify_seconds = g <= 2 ? 0.010 : 0.025 + 0.001 * g;
      });
  // g = 2 from the first steps on; g = 3 (the exploration) at most once in
  // 32 steps once its cost is measured, where one in 4 would be 25.
  EXPECT_GE(std::count(planned.begin() + 40, planned.end(), 2), 150);
  EXPECT_LE(std::count(planned.begin() + 40, planned.end(), 3), 6);
}

TEST(AdaptivePolicy, ReprobesAndComesBackWhenAcceptanceRecovers) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(6);
  Simulation sim(policy, 3);
  World good;
  good.acceptance = 0.85;
  good.draft_seconds = good.t1 * 0.05;
  good.row_fraction = 0.05;
  World bad = good;
  bad.acceptance = 0.0;
  ASSERT_GT(good.best_g(6), 2);

  EXPECT_GT(sim.run(good, 200, 6), 180);  // speculating
  sim.run(bad, 100, 6);
  EXPECT_TRUE(policy.off(0));
  sim.reset_counts();
  sim.run(bad, 400, 6);
  EXPECT_GE(sim.probes, 2);
  EXPECT_GE(sim.plain_steps, 380);
  // Recovery: the next probe finds acceptance back, probes follow quickly
  // and speculation resumes. The probe interval has grown to 256 steps, and
  // a probe rejected at its first token (15% here) doubles nothing but
  // waits another 256: 1000 steps hold at least three probes.
  sim.run(good, 1000, 6);
  EXPECT_FALSE(policy.off(0));
  EXPECT_GT(sim.run(good, 100, 6), 90);
}

TEST(AdaptivePolicy, ProbesSoonAtANewSequence) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(4);
  Simulation sim(policy);
  World bad;
  bad.acceptance = 0.0;
  bad.row_fraction = 0.1;
  sim.run(bad, 600, 4);
  ASSERT_TRUE(policy.off(0));
  const int32_t reached = policy.probe_interval(0);
  ASSERT_GT(reached, 16);
  policy.begin_sequence(4);
  EXPECT_TRUE(policy.plan(0, 4).probe);
  // The next probes come at half the interval reached, doubling again after
  // each probe that did not pay, not from the minimum of 4.
  EXPECT_EQ(policy.probe_interval(0), reached / 2);
  sim.step(bad, 4);  // the probe: it did not pay
  EXPECT_EQ(policy.probe_interval(0), reached);
}

TEST(AdaptivePolicy, MeasuresPlainDecodingFirstAndRespectsTheLimit) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(8);
  EXPECT_EQ(policy.plan(0, 8).draft_length, 0);  // t_verify(1) unknown
  Simulation sim(policy);
  World world;
  world.acceptance = 1.0;
  sim.run(world, 50, 8);
  EXPECT_LE(policy.plan(0, 3).draft_length, 3);
  EXPECT_EQ(policy.plan(0, 0).draft_length, 0);
}

TEST(AdaptivePolicy, LearnsTheConfidenceBelowWhichDraftsStop) {
  AdaptivePolicy policy(options_for(PolicyKind::kAdaptive));
  policy.begin_sequence(8);
  Simulation sim(policy, 11);
  World world;
  world.accept_above_confidence = 0.5;  // tokens below 0.5 are never accepted
  world.draft_seconds = world.t1 * 0.05;
  world.row_fraction = 0.05;
  sim.run(world, 1500, 8);
  const StepPlan plan = policy.plan(0, 8);
  ASSERT_GT(plan.draft_length, 0);
  EXPECT_GE(plan.stop_confidence, 0.4f);
  EXPECT_LE(plan.stop_confidence, 0.5f);
}

// Realised tokens/s of `policy` in `world` over steps 500..3500 (after a
// warm-up), drafting at most g_max.
double realised_rate(DraftLengthPolicy& policy, const World& world, int32_t g_max) {
  policy.begin_sequence(g_max);
  Simulation sim(policy, 5);
  sim.run(world, 500, g_max);
  sim.reset_counts();
  sim.run(world, 3000, g_max);
  return sim.tokens_per_second();
}

// The best fixed draft length in `world` by realised tokens/s, g = 0 (plain
// decoding) to 8.
struct BestFixed {
  int32_t g = 0;
  double tokens_per_second = 0;
};
BestFixed best_fixed_draft_length(const World& world) {
  BestFixed best;
  for (int32_t g = 0; g <= 8; ++g) {
    FixedPolicy fixed(options_for(PolicyKind::kFixed));
    const double rate = realised_rate(fixed, world, g);
    if (rate > best.tokens_per_second) best = {g, rate};
  }
  return best;
}

TEST(AdaptivePolicy, WithACalibratedDrafterMatchesTheBestFixedDraftLength) {
  struct Case {
    double skew, draft_fraction, row_fraction;
  };
  for (const Case c : {Case{0.5, 0.1, 0.1}, Case{0.3, 0.05, 0.05}, Case{1.0, 0.1, 0.1},
                       Case{0.2, 0.15, 0.2}, Case{0.5, 0.02, 0.02}}) {
    World world;
    world.calibrated_skew = c.skew;
    world.draft_seconds = world.t1 * c.draft_fraction;
    world.row_fraction = c.row_fraction;
    const BestFixed best = best_fixed_draft_length(world);
    const double best_fixed = best.tokens_per_second;
    const int32_t best_g = best.g;
    AdaptivePolicy adaptive(options_for(PolicyKind::kAdaptive));
    const double with_stop = realised_rate(adaptive, world, 8);
    PolicyOptions no_stop_options = options_for(PolicyKind::kAdaptive);
    no_stop_options.adaptive.learn_confidence_stop = false;
    AdaptivePolicy no_stop(no_stop_options);
    const double without_stop = realised_rate(no_stop, world, 8);
    std::fprintf(stderr,
                 "skew %.2f draft %.2f row %.2f: best fixed g=%d %.1f/s, adaptive %.1f/s (%.3f), "
                 "without the learned stop %.1f/s (%.3f)\n",
                 c.skew, c.draft_fraction, c.row_fraction, best_g, best_fixed, with_stop,
                 with_stop / best_fixed, without_stop, without_stop / best_fixed);
    EXPECT_GT(with_stop, 0.95 * best_fixed);
  }
}

TEST(AdaptivePolicy, WithBurstyAcceptanceMatchesTheBestFixedDraftLength) {
  struct Case {
    double switch_probability, easy, hard, draft_fraction, row_fraction;
  };
  for (const Case c : {Case{0.05, 0.9, 0.2, 0.1, 0.1}, Case{0.02, 0.95, 0.1, 0.1, 0.1},
                       Case{0.1, 0.8, 0.3, 0.05, 0.05}, Case{0.02, 0.9, 0.0, 0.15, 0.2},
                       Case{0.01, 0.7, 0.0, 0.1, 0.3}}) {
    World world;
    world.switch_probability = c.switch_probability;
    world.easy_acceptance = c.easy;
    world.hard_acceptance = c.hard;
    world.draft_seconds = world.t1 * c.draft_fraction;
    world.row_fraction = c.row_fraction;
    const BestFixed best = best_fixed_draft_length(world);
    const double best_fixed = best.tokens_per_second;
    const int32_t best_g = best.g;
    AdaptivePolicy adaptive(options_for(PolicyKind::kAdaptive));
    const double rate = realised_rate(adaptive, world, 8);
    HeuristicPolicy heuristic(options_for(PolicyKind::kHeuristic));
    const double heuristic_rate = realised_rate(heuristic, world, 8);
    std::fprintf(stderr,
                 "switch %.2f easy %.2f hard %.2f: best fixed g=%d %.1f/s, adaptive %.1f/s "
                 "(%.3f), heuristic %.3f\n",
                 c.switch_probability, c.easy, c.hard, best_g, best_fixed, rate, rate / best_fixed,
                 heuristic_rate / best_fixed);
    EXPECT_GT(rate, 0.95 * best_fixed);
  }
}

// On a shared, noisy machine (10% of steps preempted and 4x slower, slow
// spells at 2x) the policy decides from noisy costs; measured over 6 seeds
// it then reaches 0.92-1.02 of the best fixed g (the loss comes from
// switching speculation off after a noisy dip and probing back; a
// consecutive-steps patience before switching off and a shape/slowness
// split of the costs were tried and did not help in this simulation).
// The bound guards against a collapse (e.g. to plain decoding), not the 5%
// target, which holds without noise (the tests above).
TEST(AdaptivePolicy, OnANoisyMachineStaysNearTheBestFixedDraftLength) {
  struct Case {
    double acceptance, draft_fraction, row_fraction;
  };
  for (const Case c : {Case{0.8, 0.05, 0.05}, Case{0.6, 0.1, 0.1}, Case{0.75, 0.2, 0.0},
                       Case{0.3, 0.1, 0.3}, Case{0.0, 0.1, 0.1}}) {
    World world;
    world.acceptance = c.acceptance;
    world.draft_seconds = world.t1 * c.draft_fraction;
    world.row_fraction = c.row_fraction;
    world.spike_probability = 0.1;
    world.spike_factor = 4.0;
    world.spell_switch = 0.02;
    world.spell_factor = 2.0;
    const BestFixed best = best_fixed_draft_length(world);
    const double best_fixed = best.tokens_per_second;
    const int32_t best_g = best.g;
    AdaptivePolicy adaptive(options_for(PolicyKind::kAdaptive));
    const double rate = realised_rate(adaptive, world, 8);
    std::fprintf(stderr,
                 "noisy, acceptance %.2f draft %.2f row %.2f: best fixed g=%d %.1f/s, adaptive "
                 "%.3f of it\n",
                 c.acceptance, c.draft_fraction, c.row_fraction, best_g, best_fixed,
                 rate / best_fixed);
    EXPECT_GT(rate, 0.85 * best_fixed);
  }
}

// Verify costs shaped as measured (docs/benchmarks.md), not as lines: the
// 2-thread Zen 4 curves of this repository's kernels and the 16-thread Xeon
// curves of issue 17, where Q4_0 costs 1.57x one row at n = 8 and 4.2x at
// n = 16. The policy prices n from a line through the ratios it measured,
// so a convex curve is where a line misprices the draft lengths it did not
// run lately.
TEST(AdaptivePolicy, WithMeasuredVerifyCurvesMatchesTheBestFixedDraftLength) {
  using Shape = std::vector<std::pair<int32_t, double>>;
  struct Case {
    const char* name;
    Shape shape;
  };
  const Case curves[] = {
      {"Zen 4 2 threads Q4_0", {{1, 1.0}, {4, 1.18}, {8, 2.1}, {16, 4.1}}},
      {"Zen 4 2 threads BF16", {{1, 1.0}, {4, 1.1}, {8, 1.2}, {16, 1.9}}},
      {"Xeon 16 threads F16", {{1, 1.0}, {8, 1.54}, {16, 2.52}}},
      {"Xeon 16 threads Q4_0", {{1, 1.0}, {8, 1.57}, {16, 4.2}}},
      {"tiles of 4", {{1, 1.0}, {4, 1.05}, {5, 1.45}, {8, 1.55}, {9, 2.0}, {16, 2.3}}},
  };
  for (const Case& c : curves) {
    for (const double acceptance : {0.6, 0.8, 0.9}) {
      World world;
      world.acceptance = acceptance;
      world.draft_seconds = world.t1 * 0.05;
      world.shape = c.shape;
      const BestFixed best = best_fixed_draft_length(world);
      AdaptivePolicy adaptive(options_for(PolicyKind::kAdaptive));
      const double rate = realised_rate(adaptive, world, 8);
      std::fprintf(stderr, "%s, acceptance %.2f: best fixed g=%d %.1f/s, adaptive %.3f of it\n",
                   c.name, acceptance, best.g, best.tokens_per_second,
                   rate / best.tokens_per_second);
      EXPECT_GT(rate, 0.95 * best.tokens_per_second) << c.name << ", acceptance " << acceptance;
    }
  }
}

TEST(AdaptivePolicy, NoConfidenceStopWhenItIsTurnedOff) {
  PolicyOptions o = options_for(PolicyKind::kAdaptive);
  o.adaptive.learn_confidence_stop = false;
  AdaptivePolicy policy(o);
  policy.begin_sequence(8);
  Simulation sim(policy, 11);
  World world;
  world.accept_above_confidence = 0.5;
  world.draft_seconds = world.t1 * 0.05;
  sim.run(world, 300, 8);
  EXPECT_EQ(policy.plan(0, 8).stop_confidence, 0.0f);
}

TEST(FixedPolicy, DraftsTheLimit) {
  FixedPolicy policy(options_for(PolicyKind::kFixed));
  policy.begin_sequence(5);
  EXPECT_EQ(policy.plan(0, 5).draft_length, 5);
  EXPECT_EQ(policy.plan(0, 2).draft_length, 2);
  EXPECT_EQ(policy.plan(0, 5).stop_confidence, 0.0f);
  Simulation sim(policy);
  World bad;
  bad.acceptance = 0.0;
  sim.run(bad, 50, 5);
  EXPECT_EQ(policy.plan(0, 5).draft_length, 5);  // never adapts
}

TEST(ConfidencePolicy, DraftsTheLimitWithItsThreshold) {
  PolicyOptions o = options_for(PolicyKind::kConfidence);
  o.confidence_threshold = 0.3f;
  ConfidencePolicy policy(o);
  policy.begin_sequence(6);
  const StepPlan plan = policy.plan(0, 6);
  EXPECT_EQ(plan.draft_length, 6);
  EXPECT_FLOAT_EQ(plan.stop_confidence, 0.3f);
}

TEST(HeuristicPolicy, FollowsPlusTwoMinusOne) {
  HeuristicPolicy policy(options_for(PolicyKind::kHeuristic));
  policy.begin_sequence(8);
  EXPECT_EQ(policy.plan(0, 8).draft_length, 8);
  auto step = [&](int32_t drafted, int32_t accepted) {
    StepOutcome o;
    o.slot = 0;
    o.requested = policy.plan(0, 8).draft_length;
    o.drafted = drafted;
    o.accepted = accepted;
    o.verify_seconds = 0.01;
    policy.observe(o);
    return policy.current();
  };
  EXPECT_EQ(step(8, 3), 7);
  EXPECT_EQ(step(7, 0), 6);
  EXPECT_EQ(step(6, 5), 5);
  EXPECT_EQ(step(5, 5), 7);  // all accepted: +2
  EXPECT_EQ(step(7, 7), 8);  // bounded by draft_max
  for (int i = 0; i < 12; ++i) step(1, 0);
  EXPECT_EQ(policy.current(), 1);  // never below 1
  EXPECT_EQ(step(1, 1), 3);
  // A plain step (nothing drafted) changes nothing.
  StepOutcome plain;
  plain.verify_seconds = 0.01;
  policy.observe(plain);
  EXPECT_EQ(policy.current(), 3);
  EXPECT_EQ(policy.plan(0, 2).draft_length, 2);  // the step's limit
  policy.begin_sequence(4);
  EXPECT_EQ(policy.current(), 4);
}

TEST(PolicyOptions, RejectsValuesOutOfRange) {
  PolicyOptions o;
  EXPECT_NO_THROW(validate(o));
  o.adaptive.explore_interval = -1;
  EXPECT_THROW(validate(o), Error);
  o = PolicyOptions{};
  o.cost.shape_weight = 0.0;
  EXPECT_THROW(validate(o), Error);
  o = PolicyOptions{};
  o.adaptive.probe_interval_max = o.adaptive.probe_interval_min - 1;
  EXPECT_THROW(validate(o), Error);
}

TEST(PolicyNames, RoundTripAndRejectUnknown) {
  for (PolicyKind kind : {PolicyKind::kAdaptive, PolicyKind::kFixed, PolicyKind::kHeuristic,
                          PolicyKind::kConfidence}) {
    EXPECT_EQ(parse_policy(policy_name(kind)), kind);
    EXPECT_EQ(make_policy(options_for(kind))->kind(), kind);
  }
  try {
    parse_policy("greedy");
    FAIL() << "an unknown policy was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adaptive"), std::string::npos) << e.what();
  }
  PolicyOptions o;
  o.confidence_threshold = 1.5f;
  EXPECT_THROW(make_policy(o), Error);
}

}  // namespace
}  // namespace specula

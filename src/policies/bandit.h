// Choosing among drafters online: a multi-armed bandit whose arms are the
// drafters and whose reward is what a step delivered, tokens emitted per
// second of the step's wall time (draft + verify).
//
// Thompson sampling, not UCB1: the reward is in tokens/s, unbounded and
// machine-dependent, while UCB1's confidence bonus assumes rewards in
// [0, 1]; Thompson sampling needs only a posterior per arm (here Gaussian,
// with each arm's own variance shrunk towards the pooled one), explores in
// proportion to the chance that an arm is best, and its randomness is
// seeded and harmless (it only changes which drafter proposes; verification
// keeps the output exact). The rewards drift (a drafter's acceptance
// changes with the text), so every count is discounted at each update:
// an arm not pulled for a while grows uncertain again and gets re-tried.
//
// Plain decoding is not an arm: whether to draft at all is the draft-length
// policy's call (g = 0). The Generator offers the bandit only the drafters
// the policy would run this step, and takes a plain step when there are none.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sampling/sampling.h"

namespace specula {

struct BanditOptions {
  double discount = 0.97;  // per update: a memory of ~33 steps
  // At a new sequence each arm's evidence is capped to this many steps: the
  // shared prior from earlier requests, which this one overrides quickly.
  double carry_over_weight = 8.0;
  // The step's duration as the bandit counts it, given the arm, the tokens
  // the step emitted and the measured wall time; empty: the measured time.
  // Tests inject a clock here so that the bandit's choices, and everything
  // that follows from them, replay exactly from run to run.
  std::function<double(int32_t arm, int32_t emitted, double measured_seconds)> step_seconds;
};

class DrafterBandit {
 public:
  explicit DrafterBandit(int32_t n_arms, BanditOptions options = {});
  int32_t n_arms() const { return static_cast<int32_t>(arms_.size()); }

  void begin_sequence();
  // One of `candidates` (arm indices, not empty): an arm never pulled (or
  // whose evidence has decayed to nothing) first, else the arm with the
  // highest draw from its posterior of the mean reward.
  int32_t choose(std::span<const int32_t> candidates, Rng& rng) const;
  // The reward of one pull of `arm`.
  void observe(int32_t arm, double reward);
  // A step of `arm` that emitted `emitted` tokens in `measured_seconds`:
  // observes emitted tokens per second (of the injected clock, if any).
  // Steps that took no time are ignored.
  void observe_step(int32_t arm, int32_t emitted, double measured_seconds);

  double mean(int32_t arm) const;    // posterior mean (0 before any pull)
  double weight(int32_t arm) const;  // discounted number of pulls
  int64_t pulls(int32_t arm) const;  // undiscounted, since construction

 private:
  struct Arm {
    double weight = 0;  // discounted counts
    double sum = 0;
    double sum_squares = 0;
    int64_t pulls = 0;
  };
  double variance(const Arm& arm, double pooled) const;
  double pooled_variance() const;

  BanditOptions options_;
  std::vector<Arm> arms_;
};

// A standard normal draw (Box-Muller; two uniforms from `rng`).
double standard_normal(Rng& rng);

}  // namespace specula

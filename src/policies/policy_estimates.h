// Online estimates that the draft-length policies decide from (design.md:
// E(g), T(g)): acceptance per draft position, acceptance by the drafter's
// confidence, the drafter's cost per token and the target's verify cost
// t_verify(n). All are fed from the steps the Generator runs; none reads a
// clock, so tests can feed synthetic costs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/curve_fits.h"

namespace specula {

// A success rate from exponentially decayed counts: each observation first
// multiplies the old counts by `decay`, so the estimate follows a drifting
// rate with a memory of about 1 / (1 - decay) observations.
class DecayedRate {
 public:
  void observe(bool success, double decay) {
    successes_ = successes_ * decay + (success ? 1.0 : 0.0);
    trials_ = trials_ * decay + 1.0;
  }
  // The Beta-posterior mean with a prior of `prior_weight` trials at
  // `prior_mean`.
  double mean(double prior_mean, double prior_weight) const {
    return (successes_ + prior_mean * prior_weight) / (trials_ + prior_weight);
  }
  // Decays the counts without an observation: evidence that is not
  // refreshed fades towards the prior.
  void fade(double decay) {
    successes_ *= decay;
    trials_ *= decay;
  }
  double trials() const { return trials_; }
  double successes() const { return successes_; }
  // Scales the counts down to at most `max_trials`, keeping the rate: old
  // evidence becomes a prior that new observations can move quickly.
  void cap(double max_trials) {
    if (trials_ <= max_trials || trials_ <= 0) return;
    const double scale = max_trials / trials_;
    successes_ *= scale;
    trials_ = max_trials;
  }

 private:
  double successes_ = 0.0;
  double trials_ = 0.0;
};

struct AcceptanceOptions {
  double decay = 0.95;        // per observation: a memory of ~20 drafts per position
  double prior_mean = 0.5;    // before anything is seen
  double prior_weight = 2.0;  // trials the prior is worth
  // A position's estimate is shrunk with this many trials' weight towards
  // the estimate of the position before it (position 0: towards the pooled
  // rate of all positions), so deep positions drafted rarely (or not yet)
  // borrow from the well-observed ones.
  double pooling_weight = 4.0;
  int32_t max_positions = 64;
};

// a_i = P(drafted token i is accepted | tokens 0..i-1 were), i 0-based.
class AcceptanceEstimate {
 public:
  explicit AcceptanceEstimate(AcceptanceOptions options = {});

  // One verified draft: `drafted` tokens proposed, the first `accepted` kept.
  // Positions 0..accepted-1 count as accepted, position `accepted` (if
  // drafted) as rejected; later positions were never judged.
  void observe(int32_t drafted, int32_t accepted);
  double at(int32_t position) const;
  double pooled() const;
  // E(g) = 1 + sum_{j=1..g} prod_{i<j} a_i: expected tokens one step of g
  // drafted tokens yields (accepted ones plus the target's own).
  double expected_tokens(int32_t g) const;
  // Caps every count (see DecayedRate::cap).
  void cap(double max_trials);
  double trials_at(int32_t position) const;

 private:
  AcceptanceOptions options_;
  std::vector<DecayedRate> positions_;
  DecayedRate pooled_;
};

// Acceptance of a drafted token as a function of the drafter's confidence in
// it (DraftProposal::confidence), in equal-width buckets over [0, 1]. Each
// bucket's prior is the larger of its own midpoint (a calibrated drafter's
// confidence is its acceptance) and the acceptance of all tokens judged so
// far: small drafts are often underconfident (a flat distribution whose top
// token is still the target's), and a midpoint prior alone made a fresh
// sequence stop most drafts after one token until every bucket had data.
// The prior errs towards drafting on; evidence in a bucket corrects it.
class ConfidenceCalibration {
 public:
  explicit ConfidenceCalibration(int32_t buckets = 16, double decay = 0.99,
                                 double prior_weight = 2.0);
  // A token judged by the verifier (one whose drafted prefix was accepted).
  void observe(float confidence, bool accepted);
  double acceptance(float confidence) const;
  // The buckets' acceptance fitted non-decreasing in confidence (isotonic
  // regression, weighted by each bucket's trials plus its prior's): a
  // higher confidence is never worth less, so a few unlucky tokens in one
  // high bucket cannot cut every draft short.
  std::vector<double> monotone_acceptance() const;
  // The smallest threshold c such that every token with confidence >= c
  // falls in a bucket whose monotone acceptance is >= `needed` (so tokens
  // below c are the ones not worth drafting past). 0 when every bucket
  // qualifies; 1 when none does.
  float threshold_for(double needed) const;
  int32_t buckets() const { return static_cast<int32_t>(buckets_.size()); }
  double observations() const;
  void cap(double max_trials);

 private:
  int32_t bucket_of(float confidence) const;
  double prior(int32_t bucket) const;
  std::vector<DecayedRate> buckets_;
  DecayedRate all_;  // every judged token
  double decay_;
  double prior_weight_;
};

// An exponentially weighted moving average that starts as the plain mean of
// its first samples: sample k (from 1) has the weight max(weight, 1 / k),
// so no one early sample outweighs the later ones. With the plain EWMA, the
// first sample at a row count kept ~(1 - 0.02)^k of the verify shape's
// weight: one noisy first pass priced that draft length for a whole
// request.
class Ewma {
 public:
  void observe(double value, double weight) {
    ++samples_;
    mean_ += std::max(weight, 1.0 / static_cast<double>(samples_)) * (value - mean_);
  }
  bool known() const { return samples_ > 0; }
  double mean() const { return mean_; }
  int64_t samples() const { return samples_; }

 private:
  double mean_ = 0.0;
  int64_t samples_ = 0;
};

struct CostOptions {
  double ewma_weight = 0.1;  // of a new sample: follows drift over ~10 steps
  // Before t_verify(n) is measured for several n, an extra row is assumed to
  // cost this fraction of a one-row pass (a target between
  // memory-bound, ~0, and compute-bound, ~1).
  double prior_row_fraction = 0.1;
  // Of a new sample in the per-n ratios that shape t_verify(n): slower than
  // ewma_weight, so that a change of the machine's speed moves the level
  // (every n) and not the shape.
  double shape_weight = 0.02;
  // observe() clips a sample to this multiple of the current estimate.
  double outlier_factor = 2.0;
  // The fit's weight of one n: its samples, at most this many.
  double max_fit_weight = 16.0;
  // A measured n's ratio is drawn towards the hinge through all of them
  // with this many samples' weight (shape_at).
  double fit_prior_weight = 2.0;
};

// t_verify(n): seconds of one step's target work for n rows (the forward,
// the sampling transform and the verification), n = 1..max_rows, as a level
// times a shape: t(n) = level * shape(n), shape(1) = 1. The machine's speed
// drifts (other work on a shared host, frequency changes) while the shape,
// what n rows cost relative to one, stays put; so every step updates the
// level, whichever n it ran, and the shape is fitted through the ratios
// measured per n (shape_at), each between two consecutive steps of
// different row counts (t(n) / t(n') x shape(n')). Pricing n from per-n averages
// taken at different times instead made a draft length look dear or cheap
// by when it was last run.
class VerifyCost {
 public:
  explicit VerifyCost(CostOptions options = {});
  // A sample far above the estimate at its n (more than outlier_factor x,
  // once a few samples are in: the OS preempted the step, a page fault)
  // counts as outlier_factor x the estimate, so that one slow step cannot
  // price a draft length out of use for good.
  void observe(int32_t rows, double seconds);
  bool measured(int32_t rows) const;
  // The estimate: 0 when nothing was measured.
  double seconds(int32_t rows) const;
  // shape(n) = t(n) / t(1). With fewer than two measured n: 1 +
  // prior_row_fraction * (n - 1). With several: the measured n's ratio
  // EWMAs (weights: their sample counts, capped), each drawn towards one
  // weighted least-squares hinge through all of them (flat, then a line:
  // fit_hinge), made non-decreasing in n, joined by lines; outside the
  // measured n the hinge's change. So every step informs every n, a draft
  // length the policy stopped choosing is still priced, and a curve that
  // is flat up to a tile height and then steep is priced as it is.
  double shape_at(int32_t rows) const;
  bool any() const;

 private:
  // The shape fitted once per observation (shape_at is asked for every
  // candidate g, several times per step): empty rows = the prior.
  struct ShapeFit {
    Hinge hinge;
    std::vector<double> rows, values;  // measured n, their fitted ratios
    double lowest = 0;                 // the cheapest measured ratio
    double one = 1;                    // at(1), the normaliser
    double at(int32_t n) const;        // the unnormalised ratio at n
  };
  void refit();

  CostOptions options_;
  Ewma level_;                       // seconds of a one-row pass, now
  std::vector<Ewma> ratio_by_rows_;  // [n - 1]: t(n) / t(1) samples
  int32_t last_rows_ = 0;            // the step before: its rows and seconds
  double last_seconds_ = 0.0;
  ShapeFit shape_;
};

// One drafter's numbers.
struct DrafterEstimate {
  explicit DrafterEstimate(const AcceptanceOptions& acceptance_options = {})
      : acceptance(acceptance_options) {}
  AcceptanceEstimate acceptance;
  ConfidenceCalibration calibration;
  Ewma seconds_per_token;  // propose() and accept() time / drafted tokens
};

// What one step did, for the estimates, the policies and the bandit.
struct StepOutcome {
  int32_t slot = -1;                  // the drafter that proposed; -1: a plain step
  int32_t requested = 0;              // g asked for
  int32_t drafted = 0;                // tokens proposed (<= requested)
  int32_t accepted = 0;               // of them, kept by the verifier
  std::span<const float> confidence;  // per drafted token, or empty
  double draft_seconds = 0;           // the drafter's propose() and accept()
  double verify_seconds = 0;          // target forward over drafted+1 rows, transform, verification
  bool probe = false;                 // the policy's probe of a drafter it had switched off
};

// Everything the adaptive policy and the statistics estimate, per drafter
// slot (the index in the Generator's drafter list) and for the target.
class SpeculationEstimates {
 public:
  explicit SpeculationEstimates(AcceptanceOptions acceptance = {}, CostOptions cost = {});

  void observe(const StepOutcome& outcome);
  // A shadow draft of `slot` (generation_step.h): `drafted` tokens it would
  // have proposed, the first `matched` of them the tokens that followed.
  // Only its acceptance learns; nothing ran, so no cost is observed.
  void observe_shadow(int32_t slot, int32_t drafted, int32_t matched);

  DrafterEstimate& drafter(int32_t slot);
  const DrafterEstimate* find(int32_t slot) const;  // null before the slot is seen
  const VerifyCost& verify() const { return verify_; }

  // Predicted expected tokens and seconds of one step drafting g tokens with
  // `slot` (g = 0: a plain step). Unmeasured draft cost counts as 0
  // (optimistic, so an untried drafter gets tried).
  double expected_tokens(int32_t slot, int32_t g) const;
  double step_seconds(int32_t slot, int32_t g) const;
  // expected_tokens / step_seconds; 0 while nothing is measured.
  double tokens_per_second(int32_t slot, int32_t g) const;
  double plain_tokens_per_second() const { return tokens_per_second(-1, 0); }

  // At a new sequence: every count capped to `max_trials`, so what earlier
  // requests taught is a prior this one overrides quickly.
  void cap(double max_trials);

 private:
  AcceptanceOptions acceptance_options_;
  CostOptions cost_options_;
  VerifyCost verify_;
  std::vector<DrafterEstimate> drafters_;
};

}  // namespace specula

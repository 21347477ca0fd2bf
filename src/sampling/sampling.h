// From logits to a full probability distribution, and drawing from it.
//
// The transform is applied identically to the target's logits (giving p)
// and the drafter's (giving q), because exact speculative sampling compares
// the two processed distributions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace specula {

struct SamplingParams {
  float temperature = 0.8f;  // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 40;        // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
};

// Throws Error with an actionable message when a parameter is out of range
// (negative temperature, top_p outside (0, 1], min_p outside [0, 1], ...).
void validate(const SamplingParams& params);

// Writes the processed distribution over all n_vocab ids to `probs`
// (resized to n_vocab; zero outside the kept set, sums to 1).
//
// Temperature first: w = softmax(logits / T). Then three filters, each
// computed on w over the whole vocabulary, and the kept set is their
// intersection (so their order does not matter):
//   top-k: the k most probable ids;
//   top-p: the shortest run of most probable ids whose mass is >= top_p;
//   min-p: ids with w >= min_p * max(w).
// "Most probable" orders by w descending, then by id ascending, so ties at a
// boundary keep the lower ids and the result is deterministic. Greedy gives
// a one-hot distribution on the argmax. Cost: O(V), plus a partial selection
// over V when top-k or top-p must cut inside the min-p set.
void logits_to_probs(std::span<const float> logits, const SamplingParams& params,
                     std::vector<float>& probs);
// The same, into a caller's buffer of exactly logits.size() floats.
void logits_to_probs(std::span<const float> logits, const SamplingParams& params,
                     std::span<float> probs);

// Index of the largest logit, lowest id on ties.
int32_t argmax(std::span<const float> values);

// softmax(logits)[token] at temperature 1, in one O(V) pass: a drafter's own
// belief in a greedy pick, whose transformed distribution is one-hot and so
// says nothing.
float softmax_probability(std::span<const float> logits, int32_t token);

// A seeded, reproducible random number generator (xoshiro256**, state
// initialised from the seed by splitmix64).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1), 53 random bits.
  double uniform();

 private:
  uint64_t state_[4];
};

// Draws an id from `probs` (need not be normalised; must have positive sum).
// Consumes exactly one uniform() from `rng`.
int32_t sample(std::span<const float> probs, Rng& rng);

}  // namespace specula

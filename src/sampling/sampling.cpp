#include "sampling/sampling.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <iterator>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace specula {
namespace {

// Scratch reused across calls on the same thread, so that the per-token
// transform does not allocate once the vocabulary size has been seen.
struct Scratch {
  std::vector<int32_t> ids;
  std::vector<float> kept;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

void validate(const SamplingParams& params) {
  if (!std::isfinite(params.temperature) || params.temperature < 0.0f) {
    fail("temperature ", params.temperature,
         " is invalid: use 0 for greedy decoding or a positive finite value such as 0.8");
  }
  if (params.top_k < 0) {
    fail("top-k ", params.top_k,
         " is invalid: use 0 to turn it off or a positive count such as 40");
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    fail("top-p ", params.top_p, " is invalid: it must be in (0, 1]; use 1 to turn it off");
  }
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    fail("min-p ", params.min_p, " is invalid: it must be in [0, 1]; use 0 to turn it off");
  }
}

int32_t argmax(std::span<const float> values) {
  // The rule: the first index of the largest value; a NaN never wins, but
  // a NaN at index 0 is never beaten. Two passes instead of one loop
  // carrying the index: the maximum over kLanes independent lanes (a
  // compare-select the compiler turns into vector max instructions), then
  // the first index holding it. Over a 32k vocabulary per generated token
  // this was a fifth of a small draft model's pass.
  const size_t n = values.size();
  if (n == 0 || std::isnan(values[0])) return 0;
  constexpr size_t kLanes = 16;
  float lane_max[kLanes];
  std::fill(std::begin(lane_max), std::end(lane_max), -std::numeric_limits<float>::infinity());
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) {
      const float v = values[i + j];
      lane_max[j] = v > lane_max[j] ? v : lane_max[j];
    }
  }
  float best = values[0];
  for (size_t j = 0; j < kLanes; ++j) best = lane_max[j] > best ? lane_max[j] : best;
  for (; i < n; ++i) best = values[i] > best ? values[i] : best;
  for (size_t k = 0; k < n; ++k) {
    if (values[k] == best) return static_cast<int32_t>(k);
  }
  return 0;  // not reached: best is one of the values
}

float softmax_probability(std::span<const float> logits, int32_t token) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit - max_logit));
  return static_cast<float>(std::exp(static_cast<double>(logits[token] - max_logit)) / sum);
}

void logits_to_probs(std::span<const float> logits, const SamplingParams& params,
                     std::vector<float>& probs) {
  probs.resize(logits.size());
  logits_to_probs(logits, params, std::span<float>(probs));
}

void logits_to_probs(std::span<const float> logits, const SamplingParams& params,
                     std::span<float> probs) {
  const size_t n_vocab = logits.size();
  if (n_vocab == 0) fail("cannot sample from an empty vocabulary");
  assert(probs.size() == n_vocab);
  const int32_t best = argmax(logits);
  if (params.greedy()) {
    std::fill(probs.begin(), probs.end(), 0.0f);
    probs[best] = 1.0f;
    return;
  }
  const float max_logit = logits[best];
  if (!std::isfinite(max_logit)) fail("cannot sample: the largest logit is ", max_logit);

  // Unnormalised tempered weights; the argmax gets exactly exp(0) = 1.
  const float inv_temperature = 1.0f / params.temperature;
  double total = 0.0;
  for (size_t i = 0; i < n_vocab; ++i) {
    probs[i] = std::exp((logits[i] - max_logit) * inv_temperature);
    total += probs[i];
  }

  // min-p keeps w >= min_p * max(w) = min_p: a prefix of the probability order.
  const float min_p_floor = params.min_p;
  size_t n_min_p = n_vocab;
  if (min_p_floor > 0.0f) {
    n_min_p = 0;
    for (size_t i = 0; i < n_vocab; ++i) n_min_p += probs[i] >= min_p_floor;
  }
  const size_t top_k =
      params.top_k > 0 ? std::min(static_cast<size_t>(params.top_k), n_vocab) : n_vocab;
  const size_t limit = std::min(top_k, n_min_p);  // the kept set is at most this long
  const bool use_top_p = params.top_p < 1.0f;

  if (!use_top_p && limit == n_min_p) {
    // Only min-p cuts (or nothing does): a threshold, no ordering needed.
    double kept = 0.0;
    for (size_t i = 0; i < n_vocab; ++i) {
      if (probs[i] < min_p_floor) probs[i] = 0.0f;
      kept += probs[i];
    }
    const float scale = static_cast<float>(1.0 / kept);
    for (float& p : probs) p *= scale;
    return;
  }

  // Candidates: the min-p set (every kept id is in it). Order: w descending,
  // then id ascending, so boundary ties keep the lower ids.
  Scratch& s = scratch();
  s.ids.clear();
  for (size_t i = 0; i < n_vocab; ++i) {
    if (probs[i] >= min_p_floor) s.ids.push_back(static_cast<int32_t>(i));
  }
  const float* w = probs.data();
  auto before = [w](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
  auto first = s.ids.begin();

  size_t n_keep = limit;
  if (use_top_p) {
    // Sort a growing prefix until its mass reaches top_p of the whole
    // vocabulary's mass (or the limit): usually a few hundred ids.
    const double target = static_cast<double>(params.top_p) * total;
    double mass = 0.0;
    size_t sorted = 0;
    size_t chunk_end = std::min<size_t>(limit, 128);
    n_keep = 0;
    while (n_keep == 0) {
      if (chunk_end < s.ids.size()) {
        std::nth_element(first + sorted, first + chunk_end, s.ids.end(), before);
      }
      std::sort(first + sorted, first + chunk_end, before);
      for (size_t j = sorted; j < chunk_end; ++j) {
        mass += w[s.ids[j]];
        if (mass >= target) {
          n_keep = j + 1;
          break;
        }
      }
      if (n_keep == 0 && chunk_end == limit) n_keep = limit;
      sorted = chunk_end;
      chunk_end = std::min(limit, 2 * chunk_end);
    }
  } else if (limit < s.ids.size()) {
    std::nth_element(first, first + limit, s.ids.end(), before);
  }

  s.kept.resize(n_keep);
  double kept = 0.0;
  for (size_t j = 0; j < n_keep; ++j) {
    s.kept[j] = w[s.ids[j]];
    kept += s.kept[j];
  }
  const float scale = static_cast<float>(1.0 / kept);
  std::fill(probs.begin(), probs.end(), 0.0f);
  for (size_t j = 0; j < n_keep; ++j) probs[s.ids[j]] = s.kept[j] * scale;
}

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& word : state_) word = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

int32_t sample(std::span<const float> probs, Rng& rng) {
  double total = 0.0;
  for (float p : probs) total += p;
  const double u = rng.uniform() * total;
  double cumulative = 0.0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0f) continue;
    cumulative += probs[i];
    last_positive = static_cast<int32_t>(i);
    if (u < cumulative) return last_positive;
  }
  // Only reachable through rounding when u is within an ulp of the total.
  if (last_positive < 0) fail("cannot sample from a distribution with no positive mass");
  return last_positive;
}

}  // namespace specula

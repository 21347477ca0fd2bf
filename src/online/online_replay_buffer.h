// The replay buffer of online distillation: windows of context tokens, each
// with the target's next-token distributions at some of its positions,
// bounded by a byte budget. The generation thread pushes without ever
// waiting (a push that finds the buffer locked is dropped); the learner
// draws random samples. Oldest samples are evicted to make room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "learn/random.h"

namespace specula {

// One window of tokens the draft reads from position 0, and the teacher's
// distributions p(. | tokens[0..j]) for the window indices j in
// target_index: the distribution of the token that follows tokens[j].
//
// Each distribution is stored as its top_k most probable ids and their
// probabilities, plus `tail`, the mass of all other ids (spread evenly over
// them when the distribution is rebuilt); top_k == 0 stores whole rows
// (probs holds n_vocab values per distribution, ids is empty).
struct ReplaySample {
  std::vector<int32_t> tokens;        // the window
  std::vector<int32_t> target_index;  // ascending indices into tokens
  int32_t top_k = 0;                  // ids per distribution; 0: whole rows
  std::vector<int32_t> ids;           // target_index.size() x top_k
  std::vector<float> probs;           // target_index.size() x (top_k, or n_vocab)
  std::vector<float> tail;            // target_index.size(): mass outside the top_k

  // Memory the sample holds, counting vector capacities and the struct.
  size_t bytes() const;
  size_t n_targets() const { return target_index.size(); }
  void clear();
};

class ReplayBuffer {
 public:
  explicit ReplayBuffer(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Never waits: false (the sample is dropped) when another thread holds the
  // buffer, or when the sample alone exceeds the budget. Otherwise evicts the
  // oldest samples until it fits, stores it and returns true.
  bool try_push(ReplaySample&& sample);

  // Copies `n` samples drawn uniformly with replacement (`rng` chooses) into
  // `out` (resized to n, or to 0 when the buffer is empty); waits for the
  // lock. Returns how many were copied.
  size_t draw(size_t n, SplitMix64& rng, std::vector<ReplaySample>& out) const;

  size_t max_bytes() const { return max_bytes_; }
  size_t bytes() const;
  size_t size() const;
  uint64_t evicted() const;

 private:
  const size_t max_bytes_;
  mutable std::mutex mutex_;
  std::deque<ReplaySample> samples_;
  size_t bytes_ = 0;
  uint64_t evicted_ = 0;
};

}  // namespace specula

#include "online/online_replay_buffer.h"

namespace specula {

size_t ReplaySample::bytes() const {
  return sizeof(ReplaySample) + tokens.capacity() * sizeof(int32_t) +
         target_index.capacity() * sizeof(int32_t) + ids.capacity() * sizeof(int32_t) +
         probs.capacity() * sizeof(float) + tail.capacity() * sizeof(float);
}

void ReplaySample::clear() {
  tokens.clear();
  target_index.clear();
  ids.clear();
  probs.clear();
  tail.clear();
}

bool ReplayBuffer::try_push(ReplaySample&& sample) {
  const size_t size = sample.bytes();
  if (size > max_bytes_) return false;
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  while (!samples_.empty() && bytes_ + size > max_bytes_) {
    bytes_ -= samples_.front().bytes();
    samples_.pop_front();
    ++evicted_;
  }
  bytes_ += size;
  samples_.push_back(std::move(sample));
  return true;
}

size_t ReplayBuffer::draw(size_t n, SplitMix64& rng, std::vector<ReplaySample>& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (samples_.empty()) {
    out.clear();
    return 0;
  }
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    // Assignment reuses the vectors `out` already holds.
    const ReplaySample& from = samples_[rng.below(samples_.size())];
    out[i].tokens.assign(from.tokens.begin(), from.tokens.end());
    out[i].target_index.assign(from.target_index.begin(), from.target_index.end());
    out[i].top_k = from.top_k;
    out[i].ids.assign(from.ids.begin(), from.ids.end());
    out[i].probs.assign(from.probs.begin(), from.probs.end());
    out[i].tail.assign(from.tail.begin(), from.tail.end());
  }
  return n;
}

size_t ReplayBuffer::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t ReplayBuffer::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return samples_.size();
}

uint64_t ReplayBuffer::evicted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return evicted_;
}

}  // namespace specula

// The trainer's random numbers: splitmix64, whose whole state is one
// 64-bit word, so a checkpoint can store it and a resumed run continues the
// very same stream. Written here (not std:: distributions) so that values
// are identical on every platform and standard library.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string_view>

namespace specula {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : state_(state) {}

  uint64_t state() const { return state_; }

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n) without modulo bias (n > 0).
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t value = next();
    while (value >= limit) value = next();
    return value % n;
  }

  // N(0, 1) by Box-Muller (one of the pair; the other is dropped so that
  // the state stays a single word).
  double normal() {
    const double u1 = (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
    const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t state_;
};

// A stream seed for (seed, name): FNV-1a over the name.
inline uint64_t stream_seed(uint64_t seed, std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull ^ seed;
  for (const unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

}  // namespace specula

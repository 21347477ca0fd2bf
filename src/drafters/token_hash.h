// 64-bit hashes of token runs, for the n-gram indexes of the lookup and
// suffix-cache drafters. A hash stands for its tokens in a table; a
// collision merges two contexts, which costs acceptance, never exactness.
#pragma once

#include <cstdint>

namespace specula {

inline constexpr uint64_t kTokenHashSeed = 0x9e3779b97f4a7c15ULL;

// splitmix64's finalizer: every input bit affects every output bit.
inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The hash of a run extended by one token. Not commutative, so order counts.
inline uint64_t hash_combine_token(uint64_t hash, int32_t token) {
  return mix64(hash + 0x9e3779b97f4a7c15ULL + static_cast<uint32_t>(token));
}

}  // namespace specula

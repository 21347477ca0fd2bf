// The statistics of one generation as `specula generate` prints them after
// its output and `specula chat` prints them on /stats.
#pragma once

#include <cstdint>
#include <cstdio>

#include "specula/stats.h"

namespace specula::cli {

inline double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// Tokens, time and rates, the stop reason, and when `speculative` the
// policy's choices of g (the histogram), each drafter's share and the
// acceptance by position. Lines start with "specula: ".
void print_generation_stats(std::FILE* out, const GenerationStats& s, bool speculative);

// The online learner's counters, one line.
void print_learning(std::FILE* out, const OnlineLearningStats& l);

}  // namespace specula::cli

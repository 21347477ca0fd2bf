// The speedup a distilled draft gives its teacher, measured at the end of
// `specula distill` (before and after training) with the benchmark library:
// plain greedy decoding against speculative decoding with fixed g = 1, 2, 4
// and the adaptive policy, interleaved repeats on a held-out prompt.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "model/model.h"

namespace specula::cli {

struct DistillSpeedOptions {
  int32_t repeats = 3;         // interleaved repeats; 0 skips the measurement
  int32_t gen_tokens = 64;     // tokens each decode run generates
  int32_t prompt_tokens = 64;  // taken from the start of the held-out stream
};

// Prints one line to stderr: "distill: speedup <when> ...". Does nothing
// when options.repeats is 0 or the held-out stream is shorter than the
// prompt (says so).
void report_distill_speedup(const char* when, const Model& teacher, const Model& student,
                            std::span<const int32_t> held_out, const DistillSpeedOptions& options,
                            ThreadPool& pool);

}  // namespace specula::cli

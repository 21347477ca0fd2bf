// The sampling transform of a losslessness test, in one call.
#pragma once

#include <cstdint>

#include "sampling/sampling.h"

namespace specula::testing {

inline SamplingParams transform(float temperature, int32_t top_k, float top_p, float min_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

}  // namespace specula::testing

// How well a draft matches its teacher (target), measured the way
// speculative decoding experiences it, on held-out token windows:
//   expected acceptance at T = 1: sum_x min(p(x), q(x)) = 1 - TVD(p, q),
//     averaged over every position of the windows (teacher-forced on the
//     held-out text);
//   greedy agreement: the first half of each window is a prompt, the
//     teacher continues it greedily, and we count the positions of that
//     continuation where the draft's argmax equals the teacher's token.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "model/model.h"

namespace specula {

struct AcceptanceStats {
  double expected_acceptance = 0.0;  // mean of sum min(p, q), T = 1
  double greedy_agreement = 0.0;     // fraction of greedy positions where argmaxes agree
  int64_t positions = 0;             // positions behind expected_acceptance
  int64_t greedy_positions = 0;      // positions behind greedy_agreement
};

// Uses up to `max_windows` consecutive windows of `window` tokens from the
// start of `tokens` (window >= 2, <= both models' context). Throws Error
// when there is not one whole window or the vocabularies differ.
AcceptanceStats measure_acceptance(const Model& teacher, const Model& draft,
                                   std::span<const int32_t> tokens, int64_t window,
                                   int64_t max_windows, ThreadPool* pool);

}  // namespace specula

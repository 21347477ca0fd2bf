#include "serve/batch_policy.h"

#include <algorithm>

namespace specula {

DraftAllocation allocate_draft_lengths(std::span<const DraftCandidate> candidates,
                                       int32_t base_rows, int32_t prefill_rows, int32_t max_rows,
                                       const std::function<double(int32_t)>& target_seconds) {
  DraftAllocation out;
  const size_t n = candidates.size();
  out.g.assign(n, 0);
  double tokens = prefill_rows, draft_seconds = 0;
  int32_t rows = base_rows;
  for (size_t i = 0; i < n; ++i) {
    const DraftCandidate& c = candidates[i];
    const int32_t g = std::clamp(c.floor, 0, std::max(0, c.cap()));
    out.g[i] = g;
    tokens += c.expected.empty() ? 1.0 : c.expected[static_cast<size_t>(g)];
    draft_seconds += g * c.draft_seconds_per_token + (g > 0 ? c.start_seconds : 0.0);
    rows += g;
  }
  auto rate = [&](double t, double d, int32_t r) {
    const double seconds = d + target_seconds(r);
    return seconds > 0 ? t / seconds : 0.0;
  };
  double best_rate = rate(tokens, draft_seconds, rows);
  for (;;) {
    size_t best_i = n;
    int32_t best_g = 0;
    double best = best_rate;
    for (size_t i = 0; i < n; ++i) {
      const DraftCandidate& c = candidates[i];
      const int32_t g0 = out.g[i];
      for (int32_t g = g0 + 1; g <= c.cap() && rows + (g - g0) <= max_rows; ++g) {
        const double t =
            tokens + c.expected[static_cast<size_t>(g)] - c.expected[static_cast<size_t>(g0)];
        const double d = draft_seconds + (g - g0) * c.draft_seconds_per_token +
                         (g0 == 0 ? c.start_seconds : 0.0);
        const double r = rate(t, d, rows + (g - g0));
        // Strictly better, by a relative margin that keeps float noise from
        // adding rows that change nothing.
        if (r > best * (1.0 + 1e-9)) {
          best = r;
          best_i = i;
          best_g = g;
        }
      }
    }
    if (best_i == n) break;
    const DraftCandidate& c = candidates[best_i];
    const int32_t g0 = out.g[best_i];
    tokens += c.expected[static_cast<size_t>(best_g)] - c.expected[static_cast<size_t>(g0)];
    draft_seconds += (best_g - g0) * c.draft_seconds_per_token + (g0 == 0 ? c.start_seconds : 0.0);
    rows += best_g - g0;
    out.g[best_i] = best_g;
    best_rate = best;
  }
  out.expected_tokens = tokens;
  out.seconds = draft_seconds + target_seconds(rows);
  out.rows = rows;
  return out;
}

}  // namespace specula

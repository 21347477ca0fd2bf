#include "speculative/shadow_drafts.h"

#include <algorithm>

#include "speculative/generation_step.h"

namespace specula {

void propose_free(SequenceState& state, int32_t limit) {
  const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
  for (int32_t d = 0; d < n_drafters; ++d) {
    DraftProposal& out = state.free_proposals[static_cast<size_t>(d)];
    out.clear();
    Drafter& drafter = *state.setup.drafters[d];
    if (limit <= 0 || !drafter.proposes_for_free()) continue;
    // Its own stream: free drafters draw nothing, and the verifier's
    // random numbers must not depend on whether shadows ran.
    Rng unused(0);
    drafter.propose(state.tokens, limit, state.options().sampling, unused, out);
    if (static_cast<int32_t>(out.tokens.size()) > limit) out.tokens.resize(limit);
  }
}

bool has_draft(const SequenceState& state, int32_t slot) {
  return !state.setup.drafters[slot]->proposes_for_free() ||
         !state.free_proposals[static_cast<size_t>(slot)].tokens.empty();
}

void start_shadows(SequenceState& state, int32_t limit) {
  const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
  for (int32_t d = 0; d < n_drafters; ++d) {
    ShadowDraft& shadow = state.shadows[static_cast<size_t>(d)];
    const std::vector<int32_t>& proposed = state.free_proposals[static_cast<size_t>(d)].tokens;
    if (d == state.step.slot || shadow.pending || proposed.empty()) continue;
    shadow.tokens.assign(proposed.begin(), proposed.end());
    shadow.position = state.step.length;
    shadow.planned = state.setup.policy->plan(d, limit).draft_length;
    shadow.pending = true;
  }
}

void score_shadows(SequenceState& state) {
  const std::vector<int32_t>& tokens = state.tokens;
  DraftLengthPolicy& policy = *state.setup.policy;
  const int32_t n_drafters = static_cast<int32_t>(state.setup.drafters.size());
  for (int32_t d = 0; d < n_drafters; ++d) {
    ShadowDraft& shadow = state.shadows[static_cast<size_t>(d)];
    if (!shadow.pending) continue;
    const auto drafted = static_cast<int32_t>(shadow.tokens.size());
    const auto known = static_cast<int32_t>(tokens.size()) - shadow.position;
    int32_t matched = 0;
    while (matched < drafted && matched < known &&
           tokens[static_cast<size_t>(shadow.position + matched)] == shadow.tokens[matched]) {
      ++matched;
    }
    if (matched == known && matched < drafted) continue;  // the next tokens decide
    shadow.pending = false;
    policy.observe_shadow(d, drafted, matched);
    if (state.setup.bandit == nullptr || shadow.planned <= 0) continue;
    const int32_t g = std::min(drafted, shadow.planned);
    const double seconds = policy.estimates().step_seconds(d, g);
    if (seconds > 0) state.setup.bandit->observe_step(d, std::min(matched, g) + 1, seconds);
  }
}

}  // namespace specula

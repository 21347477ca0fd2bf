// Shadow drafts: what a drafter that proposes for free
// (Drafter::proposes_for_free: prompt lookup, the suffix cache) would have
// drafted at a step where another drafter ran, or none, scored against the
// tokens that followed. A look-up drafter's worth changes along a
// sequence (nothing repeats at first; later whole lines do), and the
// bandit learns an arm's worth only by pulling it: one that did poorly
// early was left alone when it had become the better drafter (the padded
// shipped pair, docs/benchmarks.md: lookup accepted 13% of 23 tokens over
// its first steps and then ran no more, where in a run that kept trying
// it 85% of 60). Scored shadows tell the policy's acceptance estimate and
// the bandit what it would have delivered, at no cost to the step; and a
// free drafter with nothing to propose at a step is not offered to the
// bandit (a pull of it would have been a plain step charged to it).
//
// A shadow changes only which drafter proposes and how much: verification
// is untouched, so outputs keep the target's distribution (greedy: its
// tokens).
#pragma once

#include <cstdint>

namespace specula {

struct SequenceState;

// Before the choice: each free drafter proposes up to `limit` tokens into
// state.free_proposals[slot]; every entry is emptied when limit is 0. A
// free drafter that is then chosen proposes again in draft_step, with the
// plan's length and stop threshold (a few hash look-ups: cheaper than
// assuming that its shorter proposal is a prefix of this one).
void propose_free(SequenceState& state, int32_t limit);

// False for a free drafter with nothing to propose at this step.
bool has_draft(const SequenceState& state, int32_t slot);

// After the choice (state.step.slot): each free drafter that did not run,
// has a proposal and no shadow being scored starts one; `limit` prices it
// (the draft length the policy would have asked of it).
void start_shadows(SequenceState& state, int32_t limit);

// After a step's tokens were emitted: each shadow whose fate the sequence
// now decides (a token that differs, or all of them matched) is scored:
// its acceptance goes to the policy (DraftLengthPolicy::observe_shadow),
// and, with a bandit and a draft length the policy would have asked, the
// tokens per second the step would have given at the estimated cost of
// that step (SpeculationEstimates::step_seconds) to the bandit.
void score_shadows(SequenceState& state);

}  // namespace specula

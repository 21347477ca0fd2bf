// Planning a step's drafts (scheduler_internal.h): each decoding slot's
// drafter and draft length, chosen jointly by the capacity-aware policy
// (batch_policy.h), then the drafts themselves, the draft model's batched.
#include "serve/scheduler_internal.h"

#include <algorithm>

#include "core/error.h"
#include "drafters/model_drafter.h"

namespace specula {

using namespace scheduler_detail;

// The drafter and the policy's plan for each decoding slot, as plan_step
// chooses them (the bandit among the drafters the policy would run), then
// the draft lengths: the policy's for the capacity-blind kinds, a joint
// allocation for the capacity-aware one.
void Scheduler::Impl::plan_decoding(std::vector<Slot*>& decoding) {
  candidates.clear();
  for (Slot* s : decoding) {
    SequenceState& state = s->state;
    s->plan_slot = -1;
    s->plan = StepPlan();
    s->limit = draft_limit(state);
    const DraftLengthPolicy& policy = *state.setup.policy;
    if (s->limit > 0 && state.setup.bandit) {
      state.candidates.clear();
      for (int32_t d = 0; d < static_cast<int32_t>(state.setup.drafters.size()); ++d) {
        if (policy.plan(d, s->limit).draft_length > 0) state.candidates.push_back(d);
      }
      if (!state.candidates.empty()) {
        s->plan_slot = state.setup.bandit->choose(state.candidates, state.bandit_rng);
        s->plan = policy.plan(s->plan_slot, s->limit);
      }
    } else if (s->limit > 0) {
      s->plan = policy.plan(0, s->limit);
      if (s->plan.draft_length > 0) s->plan_slot = 0;
    }
  }
  if (options.policy != BatchPolicyKind::kCapacityAware) {
    for (Slot* s : decoding) {
      apply_plan(*s, s->plan_slot >= 0 ? std::min(s->plan.draft_length, s->limit) : 0);
    }
    return;
  }
  int32_t base_rows = 0;
  for (auto& slot : slots) base_rows += slot->chunk;
  const int32_t prefill_rows = base_rows;
  for (Slot* s : decoding) {
    ++base_rows;
    DraftCandidate c;
    c.expected.push_back(1.0);
    if (s->plan_slot >= 0) {
      const SpeculationEstimates& estimates = s->state.setup.policy->estimates();
      const int32_t cap = std::min(s->plan.draft_length, s->limit);
      for (int32_t g = 1; g <= cap; ++g) {
        c.expected.push_back(estimates.expected_tokens(s->plan_slot, g));
      }
      const DrafterEstimate* d = estimates.find(s->plan_slot);
      if (d && d->seconds_per_token.known())
        c.draft_seconds_per_token = d->seconds_per_token.mean();
      // A batched draft model: a row's cost in the batch now, and the rows
      // it must catch up on before drafting (its prompt, what it missed
      // while g was 0). The catch-up is an investment that lets it draft at
      // every step left, so this step bears its share: the cost over the
      // steps the request may still take (at most one per token left).
      const auto* model = dynamic_cast<const SlotModelDrafter*>(
          s->state.setup.drafters[static_cast<size_t>(s->plan_slot)]);
      if (model && draft_row_seconds.known()) {
        const int64_t left = static_cast<int64_t>(s->state.options().max_new_tokens) -
                             static_cast<int64_t>(s->state.output.size());
        c.draft_seconds_per_token = draft_row_seconds.mean();
        c.start_seconds = (model->rows_to_catch_up(s->state.tokens) - 1) *
                          draft_row_seconds.mean() /
                          static_cast<double>(std::max<int64_t>(1, left));
      }
      if (s->plan.probe) c.floor = cap;
    }
    candidates.push_back(std::move(c));
  }
  const int32_t max_rows = std::max(options.step_rows, base_rows);
  const DraftAllocation allocation =
      allocate_draft_lengths(candidates, base_rows, prefill_rows, max_rows,
                             [this](int32_t rows) { return cost.seconds(rows); });
  for (size_t i = 0; i < decoding.size(); ++i) apply_plan(*decoding[i], allocation.g[i]);
}

void Scheduler::Impl::apply_plan(Slot& s, int32_t g) {
  SequenceState& state = s.state;
  StepState& step = state.step;
  step.length = static_cast<int32_t>(state.tokens.size());
  step.slot = g > 0 ? s.plan_slot : -1;
  step.plan = g > 0 ? s.plan : StepPlan();
  step.plan.draft_length = g;
  step.requested = g;
  if (state.speculative) {
    const SpeculationEstimates& estimates = state.setup.policy->estimates();
    state.recorder.record_plan(g, estimates.expected_tokens(step.slot, g),
                               estimates.step_seconds(step.slot, g));
  }
}

// Every planned slot's draft: those drafting with the draft model in
// batched passes (scheduler_draft.h), the others one by one (draft_step).
// What the batch took is shared among its sequences by the rows each ran
// (catch-up and drafted), so each policy sees drafting's cost in a batch.
void Scheduler::Impl::draft_all(const std::vector<Slot*>& planned_slots) {
  draft_jobs.clear();
  draft_job_slots.clear();
  draft_job_rows.clear();
  for (Slot* s : planned_slots) {
    SequenceState& state = s->state;
    StepState& step = state.step;
    if (step.requested > 0 && shared_draft) {
      auto* d = dynamic_cast<SlotModelDrafter*>(state.setup.drafters[step.slot]);
      if (d) {
        step.proposal.clear();
        step.proposal.stop_confidence = step.plan.stop_confidence;
        step.propose_seconds = 0;
        draft_jobs.push_back({d, state.tokens, step.requested, &state.options().sampling,
                              &state.rng, &step.proposal});
        draft_job_slots.push_back(s);
        draft_job_rows.push_back(d->rows_to_catch_up(state.tokens));
        continue;
      }
    }
    try {
      draft_step(state);
      s->verifying = true;
    } catch (const Error& e) {
      finish(*s, e.what());
    }
  }
  if (draft_jobs.empty()) return;
  const Clock::time_point start = Clock::now();
  const int64_t rows_before = shared_draft->rows();
  try {
    shared_draft->propose(draft_jobs);
  } catch (const Error& e) {
    for (Slot* s : draft_job_slots) finish(*s, e.what());
    return;
  }
  const double seconds = seconds_between(start, Clock::now());
  const int64_t rows_run = shared_draft->rows() - rows_before;
  if (rows_run > 0) draft_row_seconds.observe(seconds / static_cast<double>(rows_run), 0.1);
  // Each sequence's share of the time: its rows (catch-up and drafted).
  int64_t rows = 0;
  for (size_t j = 0; j < draft_job_slots.size(); ++j) {
    draft_job_rows[j] += std::max(0, draft_job_slots[j]->state.step.drafted() - 1);
    rows += draft_job_rows[j];
  }
  for (size_t j = 0; j < draft_job_slots.size(); ++j) {
    Slot* s = draft_job_slots[j];
    SequenceState& state = s->state;
    StepState& step = state.step;
    step.propose_seconds = rows > 0 ? seconds * draft_job_rows[j] / static_cast<double>(rows) : 0.0;
    bool valid = true;
    for (int32_t id : step.proposal.tokens) valid = valid && id >= 0 && id < n_vocab;
    if (!valid) {
      finish(*s, "the draft model proposed a token id outside the vocabulary");
      continue;
    }
    state.recorder.record_draft(step.slot, step.plan, step.requested, step.proposal,
                                step.propose_seconds);
    s->verifying = true;
  }
}

}  // namespace specula

// One step of the loop (scheduler_internal.h): prompt chunks under the row
// budget, the planned drafts, one target pass over every row, then verify
// and commit per slot; the step's metrics merged under the mutex.
#include "serve/scheduler_internal.h"

#include <algorithm>

#include "core/error.h"

namespace specula {

using namespace scheduler_detail;

namespace {

constexpr size_t kLatencySamples = 4096;  // recent ttft / inter-token samples kept
constexpr int32_t kRowsHistogram = 1024;  // rows_per_pass buckets

void add_into(std::vector<int64_t>& to, const std::vector<int64_t>& from) {
  if (to.size() < from.size()) to.resize(from.size(), 0);
  for (size_t i = 0; i < from.size(); ++i) to[i] += from[i];
}

void add_samples(std::vector<double>& to, size_t& next, const std::vector<double>& from) {
  for (double v : from) {
    if (to.size() < kLatencySamples) {
      to.push_back(v);
    } else {
      to[next] = v;
      next = (next + 1) % kLatencySamples;
    }
  }
}

}  // namespace

void Scheduler::Impl::step() {
  batch.clear();
  // 1. Prompt chunks, oldest admission first, in what the decoding rows
  // leave of the row budget (at least a quarter of it, so that prompts
  // always advance).
  std::vector<Slot*> order;
  int32_t n_decoding = 0;
  for (auto& slot : slots) {
    slot->chunk = 0;
    slot->joined = false;
    slot->verifying = false;
    if (!slot->request) continue;
    if (slot->decoding) {
      ++n_decoding;
    } else {
      order.push_back(slot.get());
    }
  }
  std::sort(order.begin(), order.end(),
            [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
  int32_t budget = std::max(options.step_rows - n_decoding * (1 + draft_max),
                            std::max(1, options.step_rows / 4));
  std::vector<Slot*> involved;
  for (Slot* s : order) {
    const int32_t prompt = static_cast<int32_t>(s->state.tokens.size());
    const int32_t remaining = prompt - 1 - s->prefilled;
    s->chunk = std::min(remaining, budget);
    budget -= s->chunk;
    if (s->prefilled + s->chunk == prompt - 1) {
      begin_drafting(s->state);
      s->decoding = true;
      s->joined = true;
    }
    if (s->chunk > 0 || s->joined) involved.push_back(s);
  }
  // 2. Plan and draft.
  planned.clear();
  for (auto& slot : slots) {
    if (!slot->request || !slot->decoding) continue;
    if (!slot->joined) involved.push_back(slot.get());
    if (!ready_for_step(slot->state)) {
      finish(*slot);
      continue;
    }
    planned.push_back(slot.get());
  }
  try {
    plan_decoding(planned);
  } catch (const Error& e) {
    fail_step(involved, e.what());
    return;
  }
  draft_all(planned);
  // 3. The pass: each slot's prompt chunk, then its verify rows.
  for (auto& slot : slots) {
    Slot& s = *slot;
    if (!s.request) continue;
    for (int32_t i = 0; i < s.chunk; ++i) {
      const int32_t position = s.prefilled + i;
      batch.rows.push_back({s.seq, position, s.state.tokens[static_cast<size_t>(position)], false});
    }
    if (s.verifying) append_verify_rows(s.state, batch);
  }
  if (batch.rows.empty()) return;
  const int32_t rows = static_cast<int32_t>(batch.rows.size());
  const Clock::time_point pass_start = Clock::now();
  try {
    target.forward(batch.rows, cache, batch.logits, pool);
  } catch (const Error& e) {
    // The cache may hold some of this pass's rows: the slots start over.
    fail_step(involved, e.what());
    return;
  }
  const Clock::time_point pass_end = Clock::now();
  const double pass_seconds = seconds_between(pass_start, pass_end);
  cost.observe(rows, pass_seconds);
  // 4. Prompts advanced; verify and commit.
  tally.clear();
  for (auto& slot : slots) {
    Slot& s = *slot;
    if (!s.request) continue;
    s.prefilled += s.chunk;
    if (s.joined) {
      s.state.recorder.record_prefill(seconds_between(s.started, pass_end));
      tally.prompt_tokens += static_cast<int64_t>(s.request->request.prompt.size());
    }
    if (!s.verifying) continue;
    SequenceState& state = s.state;
    const int32_t g = state.step.drafted();
    // What this sequence's rows would cost in a pass of their own: the
    // per-sequence policy then judges its drafts as if alone (the
    // capacity-blind view); the load is the batch policy's to weigh.
    const double own = cost.any() ? cost.seconds(g + 1) : pass_seconds;
    record_target_pass(state, own);
    const std::span<const float> logits = verify_logits(state, batch);
    try {
      verify_step(state, logits);
      const Clock::time_point now = Clock::now();
      commit_step(state, logits, cache, [&](int32_t token) {
        if (!s.has_token) {
          s.has_token = true;
          s.first_token_seconds = seconds_between(s.request->submitted, now);
          tally.ttft.push_back(s.first_token_seconds);
        } else {
          tally.inter_token.push_back(seconds_between(s.last_token, now));
        }
        s.last_token = now;
        ++tally.generated_tokens;
        if (!s.request->on_token) return true;
        try {
          return s.request->on_token(token);
        } catch (...) {
          return false;
        }
      });
    } catch (const Error& e) {
      finish(s, e.what());
      continue;
    }
    const StepState& step = state.step;
    if (state.speculative) {
      ++tally.g_steps[static_cast<size_t>(step.requested)];
      if (g > 0) {
        ++tally.num_drafts;
        tally.num_draft_tokens += g;
        tally.num_accepted_tokens += step.result.n_accepted;
        for (int32_t i = 0; i < step.result.n_accepted; ++i) ++tally.accepted_per_pos[i];
        ++tally.drafter_steps[static_cast<size_t>(step.slot)];
      }
    }
    if (state.stop_reason != StopReason::kNone || !ready_for_step(state)) finish(s);
  }
  merge_tally(rows);
}

void Scheduler::Impl::merge_tally(int32_t rows) {
  std::lock_guard<std::mutex> lock(mutex);
  SchedulerMetrics& m = metrics;
  ++m.steps;
  m.prompt_tokens += tally.prompt_tokens;
  m.generated_tokens += tally.generated_tokens;
  m.num_drafts += tally.num_drafts;
  m.num_draft_tokens += tally.num_draft_tokens;
  m.num_accepted_tokens += tally.num_accepted_tokens;
  add_into(m.accepted_per_pos, tally.accepted_per_pos);
  add_into(m.g_steps, tally.g_steps);
  add_into(m.drafter_steps, tally.drafter_steps);
  if (m.rows_per_pass.size() < static_cast<size_t>(kRowsHistogram)) {
    m.rows_per_pass.assign(kRowsHistogram, 0);
  }
  ++m.rows_per_pass[static_cast<size_t>(std::min(rows, kRowsHistogram - 1))];
  add_samples(m.ttft_seconds, ttft_next, tally.ttft);
  add_samples(m.inter_token_seconds, inter_token_next, tally.inter_token);
  const std::vector<CostCurve::Point>& points = cost.points();
  m.cost_rows.resize(points.size());
  m.cost_seconds.resize(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    m.cost_rows[i] = points[i].rows;
    m.cost_seconds[i] = points[i].seconds;
  }
  m.running = running;
  m.waiting = static_cast<int32_t>(queue.size());
}

}  // namespace specula

// The continuous-batching loop (scheduler.h). One thread owns the target's
// KV cache (one sequence per slot) and every slot's decoding state; other
// threads only queue requests, mark cancellations and read metrics under
// the mutex. Each step:
//
//   1. admit waiting requests into free slots; end cancelled ones
//   2. give prefilling slots their prompt chunks under the row budget; a
//      slot whose prompt completes in this pass begins drafting now, so its
//      first verify rows ride in the same pass (time to first token: one step)
//   3. plan every decoding slot (its drafter and g), jointly for the
//      capacity-aware policy (batch_policy.h), and draft
//   4. one target forward over all rows; the pass time feeds the cost curve
//   5. verify and commit each decoding slot on its own logits; finish those
//      that stopped
//
// Exactness: every sequence verifies on its own rows with its own RNG
// (seeded from its request), and a row's logits do not depend on the other
// rows of the pass, so each request's output is distributed exactly as the
// target's and greedy output is the same as decoding it alone.
#include "serve/scheduler.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "drafters/model_drafter.h"
#include "drafters/suffix_cache.h"
#include "engine/drafter_factory.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "serve/batch_policy.h"
#include "serve/cost_curve.h"
#include "serve/scheduler_draft.h"
#include "speculative/generation_step.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

constexpr size_t kLatencySamples = 4096;  // recent ttft / inter-token samples kept
constexpr int32_t kRowsHistogram = 1024;  // rows_per_pass buckets
constexpr int32_t kProfileMaxRows = 64;

struct Request {
  uint64_t id = 0;
  CompletionRequest request;
  OnToken on_token;
  OnDone on_done;
  Clock::time_point submitted;
};

// One sequence slot of the target's cache and everything that decodes in it:
// its own drafters (their caches hold one sequence), policy and bandit,
// which learn across the requests the slot serves.
struct Slot {
  int32_t seq = 0;
  std::vector<std::unique_ptr<Drafter>> drafters;
  std::vector<Drafter*> drafter_list;
  std::unique_ptr<DraftLengthPolicy> policy;
  std::unique_ptr<DrafterBandit> bandit;
  GeneratorOptions options;
  SequenceState state;

  std::optional<Request> request;  // empty: free
  uint64_t admitted = 0;           // admission order, for prefill fairness
  int32_t prefilled = 0;           // prompt rows in the cache
  bool decoding = false;           // the prompt is in; drafting has begun
  Clock::time_point started;       // given the slot
  Clock::time_point last_token;
  bool has_token = false;
  double first_token_seconds = 0;
  bool cancelled = false;

  // This step.
  int32_t chunk = 0;       // prompt rows in this pass
  bool joined = false;     // the prompt completes in this pass
  bool verifying = false;  // has verify rows in this pass
  int32_t plan_slot = -1;  // the drafter the policy (and bandit) chose
  StepPlan plan;
  int32_t limit = 0;
};

// What one step adds to the metrics, merged under the mutex at its end.
struct StepTally {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t num_drafts = 0;
  int64_t num_draft_tokens = 0;
  int64_t num_accepted_tokens = 0;
  std::vector<int64_t> accepted_per_pos;
  std::vector<int64_t> g_steps;
  std::vector<int64_t> drafter_steps;
  std::vector<double> ttft;
  std::vector<double> inter_token;

  void clear() {
    prompt_tokens = generated_tokens = num_drafts = num_draft_tokens = num_accepted_tokens = 0;
    std::fill(accepted_per_pos.begin(), accepted_per_pos.end(), 0);
    std::fill(g_steps.begin(), g_steps.end(), 0);
    std::fill(drafter_steps.begin(), drafter_steps.end(), 0);
    ttft.clear();
    inter_token.clear();
  }
};

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

void check_options(const SchedulerOptions& o, const Model& target) {
  if (o.parallel < 1) {
    fail("SchedulerOptions::parallel is ", o.parallel, ": decode at least 1 sequence at once");
  }
  if (o.n_ctx < 2) {
    fail("SchedulerOptions::n_ctx is ", o.n_ctx,
         ": each slot needs room for a prompt token and a generated one (>= 2)");
  }
  if (o.queue_max < 0) fail("SchedulerOptions::queue_max is ", o.queue_max, ": it must be >= 0");
  if (o.step_rows < 1) {
    fail("SchedulerOptions::step_rows is ", o.step_rows, ": a step needs at least 1 row");
  }
  if (o.draft_max < 0 || o.draft_max > 64) {
    fail("SchedulerOptions::draft_max is ", o.draft_max, ": use 0..64 (0 turns speculation off)");
  }
  const int32_t n_vocab = target.config().n_vocab;
  for (int32_t id : o.stop_tokens) {
    if (id < 0 || id >= n_vocab) {
      fail("SchedulerOptions::stop_tokens holds ", id, ", outside the vocabulary (0..", n_vocab - 1,
           ")");
    }
  }
}

PolicyKind slot_policy_kind(BatchPolicyKind kind) {
  switch (kind) {
    case BatchPolicyKind::kCapacityAware:
    case BatchPolicyKind::kAdaptive:
      return PolicyKind::kAdaptive;
    case BatchPolicyKind::kFixed:
    case BatchPolicyKind::kPlain:
      break;
  }
  return PolicyKind::kFixed;
}

FinishReason finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::kEndOfGeneration:
    case StopReason::kCancelled:  // on_token returned false: a stop string, a client gone
      return FinishReason::kStop;
    default:
      return FinishReason::kLength;
  }
}

}  // namespace

struct Scheduler::Impl {
  Impl(const Model& target_model, const Model* draft_model, ThreadPool* thread_pool,
       const SchedulerOptions& scheduler_options);

  const Model& target;
  const Model* draft;
  ThreadPool* pool;
  SchedulerOptions options;
  int32_t n_vocab = 0;
  int32_t draft_max = 0;  // 0 for plain decoding or without drafters
  std::vector<std::string> drafter_specs;
  std::unique_ptr<SuffixCache> suffix_cache;
  // The "model" drafter of every slot, batched (null without one).
  std::unique_ptr<SharedDraftModel> shared_draft;
  std::vector<SharedDraftModel::Job> draft_jobs;  // reused
  std::vector<Slot*> draft_job_slots;
  std::vector<int32_t> draft_job_rows;
  // Seconds per row of the batched draft passes, as they run now: the
  // capacity-aware policy prices a model draft (and its catch-up) with it.
  Ewma draft_row_seconds;
  KvCache cache;
  std::vector<std::unique_ptr<Slot>> slots;
  CostCurve cost;
  TargetBatch batch;
  StepTally tally;
  uint64_t admissions = 0;
  std::vector<DraftCandidate> candidates;  // reused
  std::vector<Slot*> planned;

  mutable std::mutex mutex;
  std::condition_variable wake;  // work arrived, a cancellation, or stopping
  std::condition_variable idle;  // nothing running or waiting
  std::deque<Request> queue;
  std::unordered_set<uint64_t> cancels;
  uint64_t next_id = 1;
  bool accepting = true;
  bool stopping = false;
  int32_t running = 0;
  SchedulerMetrics metrics;
  size_t ttft_next = 0, inter_token_next = 0;
  std::thread thread;

  void build_slot(Slot& slot, int32_t seq);
  void profile_cost();
  void run();
  void step();
  void admit(Request& request, Slot& slot);
  void plan_decoding(std::vector<Slot*>& decoding);
  void apply_plan(Slot& slot, int32_t g);
  void draft_all(const std::vector<Slot*>& planned_slots);
  void finish(Slot& slot, const std::string& error = {});
  void finish_unstarted(Request& request, FinishReason reason);
  void fail_step(const std::vector<Slot*>& involved, const std::string& error);
  void merge_tally(int32_t rows);
  static void deliver(Request& request, CompletionResult result);
};

Scheduler::Impl::Impl(const Model& target_model, const Model* draft_model, ThreadPool* thread_pool,
                      const SchedulerOptions& scheduler_options)
    : target(target_model), draft(draft_model), pool(thread_pool), options(scheduler_options) {
  check_options(options, target);
  n_vocab = target.config().n_vocab;
  if (options.policy != BatchPolicyKind::kPlain && options.draft_max > 0) {
    drafter_specs = options.drafters;
    if (drafter_specs.empty()) {
      if (draft) drafter_specs.push_back("model");
      drafter_specs.push_back("lookup");
    }
  }
  suffix_cache = std::make_unique<SuffixCache>(SuffixCacheOptions{});
  DrafterResources resources;
  resources.target = &target;
  resources.draft = draft;
  resources.suffix_cache = suffix_cache.get();
  for (size_t i = 0; i < drafter_specs.size(); ++i) {
    check_drafter_spec(drafter_specs[i], resources);
    if (std::find(drafter_specs.begin(), drafter_specs.begin() + static_cast<ptrdiff_t>(i),
                  drafter_specs[i]) != drafter_specs.begin() + static_cast<ptrdiff_t>(i)) {
      fail("SchedulerOptions::drafters lists '", drafter_specs[i], "' twice");
    }
  }
  draft_max = drafter_specs.empty() ? 0 : options.draft_max;
  if (draft) check_same_vocabulary(target, *draft);
  for (const std::string& spec : drafter_specs) {
    if (draft && parse_drafter_spec(spec).kind == DrafterKind::kModel) {
      shared_draft =
          std::make_unique<SharedDraftModel>(*draft, options.n_ctx, options.parallel, pool);
    }
  }
  cache = target.make_cache(options.n_ctx, options.parallel);
  for (int32_t seq = 0; seq < options.parallel; ++seq) {
    slots.push_back(std::make_unique<Slot>());
    build_slot(*slots.back(), seq);
  }
  const size_t n_drafters = drafter_specs.size();
  tally.accepted_per_pos.assign(static_cast<size_t>(draft_max), 0);
  tally.g_steps.assign(static_cast<size_t>(draft_max) + 1, 0);
  tally.drafter_steps.assign(n_drafters, 0);
  metrics.accepted_per_pos.assign(static_cast<size_t>(draft_max), 0);
  metrics.g_steps.assign(static_cast<size_t>(draft_max) + 1, 0);
  metrics.drafter_steps.assign(n_drafters, 0);
  metrics.drafter_names = drafter_specs;
  if (options.profile) profile_cost();
}

void Scheduler::Impl::build_slot(Slot& slot, int32_t seq) {
  slot.seq = seq;
  DrafterResources resources;
  resources.target = &target;
  resources.draft = draft;
  resources.suffix_cache = suffix_cache.get();
  resources.n_ctx = options.n_ctx;
  resources.pool = pool;
  for (const std::string& spec : drafter_specs) {
    if (shared_draft && parse_drafter_spec(spec).kind == DrafterKind::kModel) {
      slot.drafters.push_back(shared_draft->make_drafter(seq));
    } else {
      slot.drafters.push_back(make_drafter(spec, resources));
    }
    slot.drafter_list.push_back(slot.drafters.back().get());
  }
  PolicyOptions policy;
  policy.kind = slot_policy_kind(options.policy);
  slot.policy = make_policy(policy);
  if (slot.drafters.size() > 1) {
    slot.bandit = std::make_unique<DrafterBandit>(static_cast<int32_t>(slot.drafters.size()));
  }
  slot.options.draft_max = draft_max;
  slot.options.verifier = options.verifier;
}

void Scheduler::Impl::profile_cost() {
  // Passes shaped like verification (every row wants logits) on slot 0,
  // each size three times (the first warms the buffers); the median of each
  // size goes into the curve, so one slow pass does not set it.
  const int32_t most =
      std::min({std::max(1, options.parallel * (draft_max + 1)), kProfileMaxRows, options.n_ctx});
  std::vector<int32_t> sizes;
  for (int32_t rows = 1; rows <= most; rows = rows < 4 ? rows + 1 : rows * 2) {
    sizes.push_back(rows);
  }
  if (sizes.back() != most) sizes.push_back(most);
  for (int32_t rows : sizes) {
    batch.clear();
    for (int32_t i = 0; i < rows; ++i) batch.rows.push_back({0, i, 0, true});
    for (int rep = 0; rep < 3; ++rep) {
      cache.truncate(0, 0);
      const Clock::time_point start = Clock::now();
      target.forward(batch.rows, cache, batch.logits, pool);
      if (rep > 0) cost.observe(rows, seconds_between(start, Clock::now()));
    }
  }
  cache.truncate(0, 0);
  batch.clear();
}

void Scheduler::Impl::deliver(Request& request, CompletionResult result) {
  if (!request.on_done) return;
  try {
    request.on_done(std::move(result));
  } catch (const std::exception& e) {
    log_warn("a request's completion callback threw: ", e.what());
  } catch (...) {
    log_warn("a request's completion callback threw");
  }
}

void Scheduler::Impl::finish_unstarted(Request& request, FinishReason reason) {
  CompletionResult result;
  result.finish = reason;
  result.prompt_tokens = static_cast<int32_t>(request.request.prompt.size());
  const double waited = seconds_between(request.submitted, Clock::now());
  result.queue_seconds = waited;
  result.total_seconds = waited;
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++metrics.requests_finished;
  }
  deliver(request, std::move(result));
}

void Scheduler::Impl::admit(Request& request, Slot& slot) {
  const Clock::time_point now = Clock::now();
  slot.options.sampling = request.request.sampling;
  slot.options.max_new_tokens = request.request.max_tokens;
  slot.options.stop_tokens =
      request.request.ignore_eos ? std::vector<int32_t>() : options.stop_tokens;
  SequenceSetup setup;
  setup.seq = slot.seq;
  setup.n_ctx = options.n_ctx;
  setup.n_vocab = n_vocab;
  setup.options = &slot.options;
  setup.drafters = slot.drafter_list;
  setup.policy = slot.policy.get();
  setup.bandit = slot.bandit.get();
  start_sequence(slot.state, setup, request.request.prompt);
  cache.truncate(slot.seq, 0);
  slot.request = std::move(request);
  slot.admitted = ++admissions;
  slot.prefilled = 0;
  slot.decoding = false;
  slot.started = now;
  slot.has_token = false;
  slot.first_token_seconds = 0;
  slot.cancelled = false;
}

void Scheduler::Impl::finish(Slot& slot, const std::string& error) {
  const Clock::time_point now = Clock::now();
  Request& request = *slot.request;
  GenerationOutput output = finish_sequence(slot.state, seconds_between(slot.started, now));
  CompletionResult result;
  result.tokens = std::move(output.tokens);
  result.finish =
      slot.cancelled ? FinishReason::kCancelled : finish_reason(output.stats.stop_reason);
  result.prompt_tokens = static_cast<int32_t>(request.request.prompt.size());
  RequestSpeculation& spec = result.speculation;
  spec.drafted = output.stats.drafted_tokens;
  spec.accepted = output.stats.accepted_tokens;
  spec.g_steps = std::move(output.stats.draft_length_steps);
  spec.drafters = std::move(output.stats.drafters);
  result.queue_seconds = seconds_between(request.submitted, slot.started);
  result.first_token_seconds = slot.has_token ? slot.first_token_seconds : 0.0;
  result.total_seconds = seconds_between(request.submitted, now);
  result.error = error;
  Request done = std::move(request);
  slot.request.reset();
  slot.decoding = false;
  slot.verifying = false;
  slot.chunk = 0;
  cache.truncate(slot.seq, 0);
  {
    std::lock_guard<std::mutex> lock(mutex);
    --running;
    ++metrics.requests_finished;
    metrics.running = running;
  }
  deliver(done, std::move(result));
}

void Scheduler::Impl::fail_step(const std::vector<Slot*>& involved, const std::string& error) {
  log_warn("a scheduler step failed: ", error);
  for (Slot* slot : involved) {
    if (slot->request) finish(*slot, error);
  }
}

void Scheduler::Impl::run() {
  std::vector<Request> dropped;
  std::vector<Request> admitted;
  std::vector<uint64_t> cancelled;
  for (;;) {
    dropped.clear();
    admitted.clear();
    cancelled.clear();
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock,
                [&] { return stopping || !queue.empty() || running > 0 || !cancels.empty(); });
      if (stopping) break;
      cancelled.assign(cancels.begin(), cancels.end());
      cancels.clear();
      if (!cancelled.empty()) {
        for (auto it = queue.begin(); it != queue.end();) {
          if (std::find(cancelled.begin(), cancelled.end(), it->id) != cancelled.end()) {
            dropped.push_back(std::move(*it));
            it = queue.erase(it);
          } else {
            ++it;
          }
        }
      }
      while (!queue.empty() && running < options.parallel) {
        admitted.push_back(std::move(queue.front()));
        queue.pop_front();
        ++running;
      }
      metrics.running = running;
      metrics.waiting = static_cast<int32_t>(queue.size());
    }
    for (Request& r : dropped) finish_unstarted(r, FinishReason::kCancelled);
    for (uint64_t id : cancelled) {
      for (auto& slot : slots) {
        if (slot->request && slot->request->id == id) {
          slot->cancelled = true;
          finish(*slot);
        }
      }
    }
    for (Request& r : admitted) {
      for (auto& slot : slots) {
        if (slot->request) continue;
        try {
          admit(r, *slot);
        } catch (const Error& e) {
          // submit() checked the request; a failure here is a bug or a
          // drafter that cannot start: the request fails, the loop goes on.
          if (slot->request) {
            finish(*slot, e.what());
          } else {
            {
              std::lock_guard<std::mutex> lock(mutex);
              --running;
            }
            CompletionResult result;
            result.error = e.what();
            deliver(r, std::move(result));
          }
        }
        break;
      }
    }
    bool any = false;
    for (auto& slot : slots) any = any || slot->request.has_value();
    if (any) step();
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (running == 0 && queue.empty()) idle.notify_all();
    }
  }
  // Stopping: whatever is left ends cancelled.
  for (auto& slot : slots) {
    if (slot->request) {
      slot->cancelled = true;
      finish(*slot);
    }
  }
  std::deque<Request> left;
  {
    std::lock_guard<std::mutex> lock(mutex);
    left.swap(queue);
  }
  for (Request& r : left) finish_unstarted(r, FinishReason::kCancelled);
  std::lock_guard<std::mutex> lock(mutex);
  idle.notify_all();
}

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
  const DraftAllocation allocation = allocate_draft_lengths(
      candidates, base_rows, max_rows, [this](int32_t rows) { return cost.seconds(rows); });
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

Scheduler::Scheduler(const Model& target, const Model* draft, ThreadPool* pool,
                     const SchedulerOptions& options)
    : impl_(std::make_unique<Impl>(target, draft, pool, options)) {
  Impl& impl = *impl_;
  {
    // The profile's curve is visible before the first step.
    std::lock_guard<std::mutex> lock(impl.mutex);
    for (const CostCurve::Point& p : impl.cost.points()) {
      impl.metrics.cost_rows.push_back(p.rows);
      impl.metrics.cost_seconds.push_back(p.seconds);
    }
  }
  impl.thread = std::thread([&impl] { impl.run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
    impl_->accepting = false;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint64_t Scheduler::memory_bytes() const {
  uint64_t bytes = impl_->cache.bytes();
  for (const auto& slot : impl_->slots) {
    for (const auto& d : slot->drafters) bytes += d->memory().kv_bytes;
  }
  return bytes;
}

std::optional<uint64_t> Scheduler::submit(CompletionRequest request, OnToken on_token,
                                          OnDone on_done) {
  const Impl& impl = *impl_;
  const int32_t n_ctx = impl.options.n_ctx;
  if (request.prompt.empty()) fail("CompletionRequest::prompt is empty: give at least one token");
  if (request.prompt.size() >= static_cast<size_t>(n_ctx)) {
    fail("CompletionRequest::prompt has ", request.prompt.size(), " tokens; the context holds ",
         n_ctx, " per sequence, so at most ", n_ctx - 1, " leave room for a generated token");
  }
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= impl.n_vocab) {
      fail("CompletionRequest::prompt holds token id ", id, ", outside the vocabulary (0..",
           impl.n_vocab - 1, ")");
    }
  }
  if (request.max_tokens < 1) {
    fail("CompletionRequest::max_tokens is ", request.max_tokens, ": it must be >= 1");
  }
  validate(request.sampling);
  Request r;
  r.request = std::move(request);
  r.on_token = std::move(on_token);
  r.on_done = std::move(on_done);
  r.submitted = Clock::now();
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    Impl& m = *impl_;
    const size_t free_slots = static_cast<size_t>(m.options.parallel - m.running);
    if (!m.accepting || m.queue.size() >= static_cast<size_t>(m.options.queue_max) + free_slots) {
      return std::nullopt;
    }
    id = m.next_id++;
    r.id = id;
    m.queue.push_back(std::move(r));
    m.metrics.waiting = static_cast<int32_t>(m.queue.size());
  }
  impl_->wake.notify_all();
  return id;
}

void Scheduler::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (id == 0 || id >= impl_->next_id) return;
    impl_->cancels.insert(id);
  }
  impl_->wake.notify_all();
}

void Scheduler::stop_accepting() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->accepting = false;
}

bool Scheduler::wait_idle(double seconds) {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(std::max(0.0, seconds)));
  return impl_->idle.wait_until(lock, deadline,
                                [&] { return impl_->running == 0 && impl_->queue.empty(); });
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->metrics;
}

const SchedulerOptions& Scheduler::options() const {
  return impl_->options;
}

}  // namespace specula

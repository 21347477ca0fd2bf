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
//
// This file: constructing the scheduler (slots, drafters, the start-up cost
// profile) and the thread-safe public API. The loop is in
// scheduler_lifecycle.cpp, a step in scheduler_step.cpp and its draft
// planning in scheduler_plan.cpp.
#include "serve/scheduler_internal.h"

#include <algorithm>

#include "core/error.h"
#include "drafters/model_drafter.h"
#include "engine/drafter_factory.h"

namespace specula {

using namespace scheduler_detail;

namespace {

constexpr int32_t kProfileMaxRows = 64;

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

}  // namespace

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

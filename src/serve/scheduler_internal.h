// Private to the scheduler's implementation (scheduler.cpp, scheduler_lifecycle.cpp,
// scheduler_plan.cpp, scheduler_step.cpp): the state the loop thread owns
// and Scheduler::Impl, whose member functions those files share. Nothing
// outside src/serve/scheduler*.cpp includes it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "drafters/suffix_cache.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "serve/batch_policy.h"
#include "serve/cost_curve.h"
#include "serve/scheduler.h"
#include "serve/scheduler_draft.h"
#include "speculative/generation_step.h"

namespace specula {
namespace scheduler_detail {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

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

}  // namespace scheduler_detail

struct Scheduler::Impl {
  using Clock = scheduler_detail::Clock;
  using Request = scheduler_detail::Request;
  using Slot = scheduler_detail::Slot;
  using StepTally = scheduler_detail::StepTally;

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

}  // namespace specula

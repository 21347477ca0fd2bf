// The scheduler's loop (scheduler_internal.h): admitting queued requests
// into free slots, ending cancelled ones, and handing finished requests their
// results; each round runs one step (scheduler_step.cpp).
#include "serve/scheduler_internal.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace specula {

using namespace scheduler_detail;

namespace {

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
  {
    // A cancel that arrived while on_token was refusing the same request
    // (the HTTP layer cancels, then refuses tokens, when its client hangs
    // up) makes it cancelled, not stopped.
    std::lock_guard<std::mutex> lock(mutex);
    if (cancels.erase(request.id) > 0) slot.cancelled = true;
  }
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

}  // namespace specula

// The serving loop (docs/serving.md): many requests decoded at once by
// continuous batching. One thread runs the loop; in each step one target
// forward covers every active sequence: the g+1 verify rows of each
// speculating one, the single row of each plainly decoding one, and chunks
// of waiting prompts under a per-step row budget (chunked prefill). Requests
// join at the next step and leave when done or cancelled. The draft length
// of every sequence is chosen jointly each step from the measured cost of a
// target pass against its row count (capacity-aware speculation).
//
// This header is the contract between the HTTP layer (src/serve/http_*.h)
// and the loop: the HTTP layer parses and validates requests into
// CompletionRequest, submits them, streams tokens from on_token and answers
// with on_done's result. Callbacks run on the scheduler's thread and must
// return quickly (queue the data; never block on a socket).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "sampling/sampling.h"
#include "specula/stats.h"

namespace specula {

class Verifier;

// How each step's draft lengths are chosen.
enum class BatchPolicyKind {
  kCapacityAware,  // jointly, maximising the batch's expected tokens/s
  kAdaptive,       // each sequence alone, as `generate` does (capacity-blind)
  kFixed,          // g = draft_max for every sequence
  kPlain,          // no speculation
};

struct SchedulerOptions {
  int32_t parallel = 4;     // sequences decoded at once (KV slots)
  int32_t n_ctx = 0;        // tokens per slot (prompt + generated); > 0
  int32_t queue_max = 64;   // requests waiting for a slot; beyond: rejected
  int32_t step_rows = 256;  // target rows per step (prefill chunks fill the rest)
  int32_t draft_max = 4;    // the most tokens drafted per sequence and step
  // Drafter specs as EngineConfig::drafters ("model", "lookup", ...); empty:
  // "model" when there is a draft model, and "lookup".
  std::vector<std::string> drafters;
  BatchPolicyKind policy = BatchPolicyKind::kCapacityAware;
  std::vector<int32_t> stop_tokens;  // end-of-generation ids

  // Added by the scheduler's implementation (not needed by the HTTP layer):
  // Time target passes of a few row counts at start-up (up to
  // parallel * (draft_max + 1) rows, on an empty slot) so that the cost
  // curve is known before the first request; false: learn it online only.
  bool profile = true;
  // Tests only: a Verifier with a deliberately wrong rule (the negative
  // controls of the losslessness tests, GeneratorOptions::verifier). Null:
  // the exact rule. Must outlive the scheduler.
  Verifier* verifier = nullptr;
};

// One validated request, already tokenized.
struct CompletionRequest {
  std::vector<int32_t> prompt;  // >= 1 token, < SchedulerOptions::n_ctx
  SamplingParams sampling;      // validated; seed drives this request's own RNG
  int32_t max_tokens = 16;      // >= 1; prompt + max_tokens <= n_ctx
  bool ignore_eos = false;
};

enum class FinishReason { kStop, kLength, kCancelled };

// What speculation did for one request (the response's `speculative` object).
struct RequestSpeculation {
  int64_t drafted = 0;
  int64_t accepted = 0;
  std::vector<int64_t> g_steps;  // [g]: steps in which g tokens were drafted
  std::vector<DrafterUsage> drafters;
};

struct CompletionResult {
  std::vector<int32_t> tokens;  // generated; a stop token is not included
  FinishReason finish = FinishReason::kLength;
  int32_t prompt_tokens = 0;
  RequestSpeculation speculation;
  double queue_seconds = 0;        // submitted -> given a slot
  double first_token_seconds = 0;  // submitted -> first token
  double total_seconds = 0;        // submitted -> done
  std::string error;               // non-empty: the request failed (500)
};

// Called with each accepted token in order; return false to stop the
// request (a stop string matched, the client went away): it then finishes
// with kStop (or kCancelled after cancel()) within one step.
using OnToken = std::function<bool(int32_t token)>;
using OnDone = std::function<void(CompletionResult result)>;

// A snapshot for GET /metrics and GET /health.
struct SchedulerMetrics {
  int32_t running = 0;
  int32_t waiting = 0;
  int64_t requests_finished = 0;
  int64_t prompt_tokens = 0;     // total prefilled
  int64_t generated_tokens = 0;  // total emitted
  int64_t steps = 0;             // target passes
  int64_t num_drafts = 0;        // sequence-steps that drafted
  int64_t num_draft_tokens = 0;
  int64_t num_accepted_tokens = 0;
  std::vector<int64_t> accepted_per_pos;  // [i]: accepted at draft position i
  std::vector<int64_t> g_steps;           // [g]: sequence-steps with g drafted
  std::vector<int64_t> drafter_steps;     // per drafter, in drafter_names order
  std::vector<std::string> drafter_names;
  std::vector<int64_t> rows_per_pass;  // histogram: [r] passes with r rows (r < 1024)
  // The learned cost curve: seconds of one target pass at these row counts
  // (the fitted value of each measured row bucket, rows ascending).
  std::vector<int32_t> cost_rows;
  std::vector<double> cost_seconds;
  std::vector<double> ttft_seconds;         // recent samples (bounded)
  std::vector<double> inter_token_seconds;  // recent samples (bounded)
};

class Scheduler {
 public:
  // `target`, `draft` (may be null) and `pool` must outlive the scheduler.
  // Allocates the KV cache for `parallel` slots up front; throws Error for
  // bad options (naming the field) or an unknown drafter spec.
  Scheduler(const Model& target, const Model* draft, ThreadPool* pool,
            const SchedulerOptions& options);
  ~Scheduler();  // stops the loop; unfinished requests end kCancelled
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Bytes of the KV caches (target and drafters) held for all slots.
  uint64_t memory_bytes() const;

  // Queues a request; it joins the batch at the next step with a free slot.
  // Returns its id, or nullopt when the wait queue is full (HTTP 429) or
  // the scheduler no longer accepts work (HTTP 503). Thread-safe.
  // (Implementation note: throws Error naming the CompletionRequest field
  // for a request that breaks its rules: an empty prompt, one of n_ctx or
  // more tokens, an id outside the vocabulary, max_tokens < 1, invalid
  // sampling. The HTTP layer validates first; this is the last guard.
  // prompt + max_tokens > n_ctx is accepted and ends with kLength when the
  // context is full.)
  std::optional<uint64_t> submit(CompletionRequest request, OnToken on_token, OnDone on_done);
  // Ends a request (waiting or running) within one step; on_done gets
  // kCancelled. Unknown or finished ids are ignored. Thread-safe.
  void cancel(uint64_t id);
  // Stops accepting; in-flight requests continue. Thread-safe.
  void stop_accepting();
  // Waits until no request is running or waiting, or `seconds` passed;
  // true when idle.
  bool wait_idle(double seconds);

  SchedulerMetrics metrics() const;  // thread-safe
  const SchedulerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specula

// What one generation did and what it cost: counts, acceptance, time and
// memory. Plain data, filled by the Generator and the Engine, read by the
// CLI, benchmarks and (later) the server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace specula {

enum class StopReason {
  kNone,             // not stopped (yet)
  kEndOfGeneration,  // the target produced an end-of-generation token
  kMaxTokens,        // -n new tokens were generated
  kContextFull,      // the sequence filled the context (n_ctx tokens)
  kCancelled,        // the token callback asked to stop
};

// "eos", "max_tokens", "context_full", "cancelled" or "none".
std::string_view stop_reason_name(StopReason reason);

// One drafter's share of a generation (the bandit may use several).
struct DrafterUsage {
  std::string name;
  int64_t steps = 0;  // steps in which it proposed
  int64_t drafted_tokens = 0;
  int64_t accepted_tokens = 0;
  double seconds = 0;  // its propose() and accept() time
  // [i]: its tokens drafted at draft position i, and of those accepted.
  std::vector<int64_t> drafted_at;
  std::vector<int64_t> accepted_at;

  double acceptance_rate() const;  // accepted / drafted (0 when none)
};

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;  // emitted; an end-of-generation token is not counted
  int64_t target_passes = 0;     // target forwards after the prompt (verification passes)
  int64_t drafted_tokens = 0;
  int64_t accepted_tokens = 0;  // drafted tokens the verifier kept
  int32_t draft_max = 0;        // g asked for (steps may draft fewer near the end)
  // [i]: steps that drafted a token at draft position i (0-based), and how
  // many of those tokens were accepted.
  std::vector<int64_t> drafted_at;
  std::vector<int64_t> accepted_at;

  // Seconds. prefill: the prompt through the target (and the drafter's
  // begin); draft: proposing and catching the drafter up; target: the
  // verification forwards; sampling: transforms and verification; total:
  // the whole generate call.
  double prefill_seconds = 0;
  double draft_seconds = 0;
  double target_seconds = 0;
  double sampling_seconds = 0;
  double total_seconds = 0;

  StopReason stop_reason = StopReason::kNone;

  // The decisions (docs/speculative.md). policy: "adaptive", "fixed",
  // "heuristic", "confidence", or "plain" without drafters.
  std::string policy = "plain";
  // [g]: steps for which the policy chose to draft g tokens, g = 0..draft_max
  // ([0]: plain steps). Drafters may propose fewer than chosen.
  std::vector<int64_t> draft_length_steps;
  int64_t probe_steps = 0;  // short drafts re-testing a switched-off drafter
  int64_t early_stops = 0;  // drafts that ended below the confidence threshold
  // Mean stop threshold passed to the drafters over drafting steps.
  double mean_stop_confidence = 0;
  std::vector<DrafterUsage> drafters;  // one per drafter offered, in order
  // The policy's view: plain decoding's tokens/s (1 / t_verify(1)) as it
  // estimates it at the end; the speedup it predicted for the steps it chose
  // (sum of E(g) / sum of T(g), over plain); and the realised one
  // (decode_tokens_per_second / plain estimate). 0 when unknown.
  double plain_tokens_per_second_estimate = 0;
  double estimated_speedup = 0;
  double realised_speedup = 0;

  // accepted / drafted (0 when nothing was drafted).
  double acceptance_rate() const;
  // accepted_at[i] / drafted_at[i] (0 when nothing was drafted there).
  double acceptance_at(size_t position) const;
  // Generated tokens per target verification pass.
  double tokens_per_pass() const;
  // Generated tokens per second after the prompt.
  double decode_tokens_per_second() const;
  // Prompt tokens per second of prefill.
  double prefill_tokens_per_second() const;
};

// One drafter's share of memory, in bytes. Weights are memory-mapped, so a
// file's size is what its weights add to resident memory once touched.
struct DrafterMemory {
  std::string name;             // the drafter's spec ("model", "suffix", "self:2")
  uint64_t file_bytes = 0;      // a weight file of its own (0: none, or the target's weights)
  uint64_t kv_bytes = 0;        // its KV cache
  uint64_t cache_bytes = 0;     // other tables it drafts from (the suffix cache)
  uint64_t learning_bytes = 0;  // online distillation: trainable copy, replay buffer, new weights
};

// Bytes. Weights are memory-mapped, so the file sizes are what the weights
// add to resident memory once touched.
struct MemoryStats {
  uint64_t peak_resident_bytes = 0;  // of the whole process so far
  uint64_t target_file_bytes = 0;
  uint64_t draft_file_bytes = 0;  // the drafters' file_bytes, summed
  uint64_t target_kv_bytes = 0;
  uint64_t draft_kv_bytes = 0;  // the drafters' kv_bytes, summed
  // Each drafter's share, in the order drafters are offered (not in
  // to_json: the CLI adds it to its JSON as "drafters").
  std::vector<DrafterMemory> drafters;
};

// Online distillation (docs/online-distillation.md): what the learner
// behind a learning draft has done so far in this engine (cumulative over
// requests, read at the end of one).
struct OnlineLearningStats {
  bool enabled = false;
  uint64_t steps = 0;            // distillation steps taken
  uint64_t publishes = 0;        // weight versions published
  uint64_t weight_version = 0;   // the version the drafter drafted with last (0: the file's)
  uint64_t observed_rows = 0;    // target distributions received
  uint64_t stored_samples = 0;   // windows put into the replay buffer
  uint64_t dropped_samples = 0;  // windows dropped (buffer busy, or larger than its budget)
  uint64_t evicted_samples = 0;  // windows evicted to stay within the budget
  uint64_t buffer_bytes = 0;     // the replay buffer now
  uint64_t buffer_samples = 0;
  uint64_t parameter_bytes = 0;  // the trainable copy: weights, gradients, two moments
  double last_loss = 0;          // of the latest step
};

// One JSON object with every field above and the derived rates.
std::string to_json(const GenerationStats& stats);
std::string to_json(const MemoryStats& memory);
std::string to_json(const OnlineLearningStats& learning);

// Peak resident set size of this process, in bytes (0 if unknown).
uint64_t peak_resident_bytes();

}  // namespace specula

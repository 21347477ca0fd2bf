// `specula bench` as a library: measures what decides whether speculative
// decoding pays on this machine (design.md, "How we know it is fast"):
// read bandwidth, prefill and decode speed, the verify-cost curve t(n)/t(1),
// the fraction of the bandwidth limit decode reaches, and plain against
// speculative decoding measured side by side in one run.
//
// Every figure is a spread over repeats, never one timing: machine noise
// (other processes, frequency changes) shows up as a wide spread rather than
// as a silently wrong number.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "specula/policy_kind.h"
#include "specula/stats.h"

namespace specula {

// A sample's median and spread. Quartiles interpolate linearly between the
// sorted samples (the "type 7" rule of R and NumPy).
struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
  double q1 = 0;                // 25th percentile
  double q3 = 0;                // 75th percentile
  std::vector<double> samples;  // in the order measured
};

// Throws Error for an empty sample.
Spread summarize(std::span<const double> samples);

struct BenchOptions {
  int32_t repeats = 5;
  int32_t prompt_tokens = 64;  // P: prefill batch and context of the decode runs
  int32_t gen_tokens = 128;    // G: tokens each decode run generates
  int32_t max_verify = 16;     // the verify-cost curve covers n = 1..max_verify rows
  std::vector<int32_t> draft_max_list = {1, 2, 4, 8};  // g values compared with plain
  // Policies compared in the same interleaved runs, each with the largest g
  // of draft_max_list as its bound (with a draft).
  std::vector<PolicyKind> policies = {PolicyKind::kAdaptive};
  // Drafter sets compared in the same interleaved runs (bench_drafter_set.h):
  // each a --drafter list run with the adaptive policy, bound by the largest
  // g of draft_max_list, and a bandit when it names several drafters. They
  // need no draft model unless they name "model".
  std::vector<std::string> drafter_sets;
  uint64_t bandwidth_bytes = uint64_t{2} << 30;  // read-bandwidth buffer
  // The prompt's token ids; empty: prompt_tokens pseudo-random ids from seed.
  std::vector<int32_t> prompt;
  uint64_t seed = 1;
};

// Throws Error naming the first bad option (and what to do).
void check_bench_options(const BenchOptions& options);

struct VerifyPoint {
  int32_t rows = 0;  // n: the last token and n-1 drafted ones
  Spread seconds;    // one forward of n rows
  // t(n) / t(1) within each repeat: the two were measured moments apart,
  // so a slow spell of the machine shifts both and largely cancels.
  Spread ratio;
};

struct SpeculativePoint {
  int32_t draft_max = 0;       // g
  Spread tokens_per_second;    // decode, speculative
  Spread speedup;              // per repeat: speculative / plain of the same repeat
  double acceptance_rate = 0;  // accepted / drafted tokens, all repeats
  double tokens_per_pass = 0;  // generated tokens per target pass
  // tokens_per_pass * t(1) / (g * t_draft + t(g+1)) from the medians measured
  // here: what the speedup would be if nothing but the forwards cost time.
  // Negative when g+1 > max_verify (no t(g+1) measured).
  double predicted_speedup = -1;
  bool identical_to_plain = true;  // greedy: the same tokens as plain decoding
};

// A draft-length policy against plain decoding and the fixed g's, measured
// in the same repeats as they were.
struct PolicyPoint {
  PolicyKind policy = PolicyKind::kAdaptive;
  int32_t draft_max = 0;  // the bound it chose g within
  Spread tokens_per_second;
  Spread speedup;  // per repeat: this / plain of the same repeat
  // Per repeat: this / the best fixed g of the same repeat, "best" being
  // the g with the highest median tokens/s.
  Spread vs_best_fixed;
  int32_t best_fixed_draft_max = 0;
  double acceptance_rate = 0;
  double tokens_per_pass = 0;
  // [g]: steps for which it chose g, all repeats.
  std::vector<int64_t> draft_length_steps;
  double estimated_speedup = 0;  // its own prediction, last repeat
  bool identical_to_plain = true;
};

// A drafter set against plain decoding, measured in the same repeats.
struct DrafterSetPoint {
  std::string drafters;   // the --drafter list
  int32_t draft_max = 0;  // the bound g is chosen within
  Spread tokens_per_second;
  Spread speedup;  // per repeat: this / plain of the same repeat
  double acceptance_rate = 0;
  double tokens_per_pass = 0;
  std::vector<int64_t> steps_by_drafter;  // drafting steps of each drafter, all repeats
  bool identical_to_plain = true;
};

struct BenchReport {
  int32_t threads = 0;
  int32_t prompt_tokens = 0;
  int32_t gen_tokens = 0;
  int32_t repeats = 0;
  uint64_t target_weight_bytes = 0;  // read per forward
  uint64_t draft_weight_bytes = 0;   // 0 without a draft

  uint64_t bandwidth_buffer_bytes = 0;
  Spread read_bandwidth_gb_per_second;  // GB = 1e9 bytes

  Spread prefill_tokens_per_second;  // one forward of prompt_tokens rows
  Spread decode_tokens_per_second;   // plain greedy generation of gen_tokens
  // target_weight_bytes * median decode tokens/s / median read bandwidth.
  double decode_bandwidth_fraction = 0;
  // Median read bandwidth / target_weight_bytes: decode's ceiling.
  double bandwidth_limit_tokens_per_second = 0;

  int32_t verify_context = 0;  // cache length the verify rows are appended to
  std::vector<VerifyPoint> verify;

  Spread draft_forward_seconds;               // one draft row at verify_context (with a draft)
  std::vector<SpeculativePoint> speculative;  // one per draft_max_list entry (with a draft)
  std::vector<PolicyPoint> policies;          // one per BenchOptions::policies (with a draft)
  std::vector<DrafterSetPoint> drafter_sets;  // one per BenchOptions::drafter_sets

  // Peak resident memory is read before the bandwidth buffer is allocated,
  // so it shows what generation needs.
  MemoryStats memory;
};

// Progress lines for stderr ("prefill: repeat 2/5").
using BenchProgress = std::function<void(std::string_view line)>;

// Runs every measurement. `draft` may be null (no speculative comparison);
// when given it must share the target's vocabulary (check_same_vocabulary).
// Throws Error for bad options or a prompt id outside the vocabulary.
BenchReport run_bench(const Model& target, const Model* draft, ThreadPool& pool,
                      const BenchOptions& options, const BenchProgress& progress = {});

}  // namespace specula

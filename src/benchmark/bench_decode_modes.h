// The decode modes `specula bench` compares in the same interleaved runs,
// as a list of objects: plain decoding, each fixed g of draft_max_list and
// each policy with the draft model, and each --drafter-sets list. A mode
// knows its name, how one greedy run goes through the Generator with its
// speculation session, and how its tallied repeats become its point of the
// report (SpeculativePoint, PolicyPoint or DrafterSetPoint).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "benchmark/bench_runner.h"
#include "core/thread_pool.h"
#include "engine/speculation_session.h"
#include "model/model.h"
#include "policies/policy.h"
#include "speculative/generator.h"

namespace specula {

// What one mode's runs add up to, over the repeats.
struct DecodeTally {
  std::vector<double> tokens_per_second;  // one per repeat
  int64_t drafted = 0;
  int64_t accepted = 0;
  int64_t generated = 0;
  int64_t passes = 0;
  std::vector<int32_t> first_tokens;        // of the first run
  bool consistent = true;                   // every run gave first_tokens
  std::vector<int64_t> draft_length_steps;  // [g]: steps that chose g
  std::vector<int64_t> drafter_steps;       // [slot]: steps that drafter proposed
  double estimated_speedup = 0;             // the policy's, last run

  void add(const GenerationOutput& out);
  double acceptance_rate() const;  // accepted / drafted, 0 when nothing was drafted
  double tokens_per_pass() const;  // generated / passes, 0 without passes
  // Greedy decoding is deterministic: this mode and plain gave the same
  // tokens in every run.
  bool identical_to(const DecodeTally& plain) const;
};

// What a mode's point is measured against.
struct DecodeBaselines {
  const DecodeTally* plain = nullptr;
  const DecodeTally* best_fixed = nullptr;  // null without fixed-g modes
  int32_t best_fixed_draft_max = 0;
};

struct DecodeMode {
  std::string name;  // "plain", "speculative g=4", "policy adaptive", "drafters lookup,suffix"
  int32_t fixed_draft_max = 0;  // > 0: a fixed-g mode (a candidate for the best fixed g)
  // One greedy run of max_new_tokens tokens after `prompt`.
  std::function<GenerationOutput(Generator& generator, std::span<const int32_t> prompt,
                                 int32_t max_new_tokens)>
      run;
  // Appends this mode's point to the report (plain appends none: the
  // runner reports it as decode_tokens_per_second).
  std::function<void(const DecodeTally& tally, const DecodeBaselines& baselines,
                     BenchReport& report)>
      report;
  DecodeTally tally;
};

// The modes of one bench run and the sessions they run with: one session
// with the "model" drafter (a draft given) serves the fixed g's and the
// policies, each policy keeping its own estimates across repeats as the
// Engine keeps them across requests; each drafter set has a session of its
// own (adaptive policy, a bandit for several drafters, its own suffix cache).
class DecodeModeList {
 public:
  // `target`, `draft` (may be null: no fixed-g or policy modes) and `pool`
  // must outlive the list. n_ctx: the context of every run.
  DecodeModeList(const Model& target, const Model* draft, ThreadPool& pool,
                 const BenchOptions& options, int32_t n_ctx);
  ~DecodeModeList();

  // Plain first, then the fixed g's, the policies and the drafter sets.
  std::vector<DecodeMode>& modes() { return modes_; }
  const std::vector<DecodeMode>& modes() const { return modes_; }

  // Every mode's point from its tally, and the draft model's memory (its
  // file and KV cache) into report.memory.
  void report(BenchReport& report) const;

 private:
  void add_plain();
  void add_fixed(int32_t draft_max);
  void add_policy(PolicyKind kind, int32_t draft_max);
  void add_drafter_set(const std::string& set, int32_t draft_max);
  DecodeBaselines baselines() const;

  const Model& target_;
  const Model* draft_;
  ThreadPool& pool_;
  int32_t n_ctx_;
  // Greedy generation of n tokens drafting at most draft_max per step.
  GeneratorOptions greedy_options(int32_t n, int32_t draft_max) const {
    GeneratorOptions o = greedy_;
    o.max_new_tokens = n;
    o.draft_max = draft_max;
    return o;
  }
  GeneratorOptions greedy_;                            // greedy, plain
  std::unique_ptr<SpeculationSession> model_session_;  // null without a draft
  std::vector<std::unique_ptr<DraftLengthPolicy>> policies_;
  std::vector<std::unique_ptr<SpeculationSession>> set_sessions_;
  std::vector<DecodeMode> modes_;
};

}  // namespace specula

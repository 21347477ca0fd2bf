// One speculation setup, assembled in one place for the Engine and the
// benchmarks: the drafters a --drafter list names, the draft-length policy
// that chooses g, the bandit that chooses among several drafters, the suffix
// cache the "suffix" drafter reads, and the online distiller that trains a
// learning "model" drafter. It hands the Generator a Speculation and
// reports what each drafter holds in memory.
//
// Drafters are sized for one context (their KV caches hold n_ctx rows), so
// a request with another context size rebuilds them with prepare(); what
// the session learned is kept across that: the policy's estimates, the
// bandit's state, the suffix cache's contents and the distiller (with the
// weights it learned).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "drafters/suffix_cache.h"
#include "model/model.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "specula/engine.h"
#include "specula/stats.h"
#include "speculative/drafter.h"
#include "speculative/generator.h"

namespace specula {

class OnlineDistiller;
class LearningModelDrafter;

struct SpeculationSessionOptions {
  // Drafter specs (engine/drafter_factory.h), one per slot; each once.
  std::vector<std::string> drafters;
  // The suffix cache's budget in stored tokens (SuffixCacheOptions).
  int64_t suffix_cache_tokens = SuffixCacheOptions{}.max_tokens;
  PolicyOptions policy;  // the first policy; set_policy() replaces it
  // When enabled, the "model" drafter learns while drafting (it needs a
  // draft model with F32, F16 or BF16 weights, and "model" among drafters).
  OnlineDistillConfig online_distill;
};

class SpeculationSession {
 public:
  // `target`, `draft` (may be null) and `pool` (may be null: one thread)
  // must outlive the session. Checks every spec and starts the online
  // learner when asked; builds no drafter until prepare(). Throws Error
  // for an unknown or repeated spec, one that needs what is missing (a
  // draft file for "model"), or bad online-distillation options (naming
  // the EngineConfig field).
  SpeculationSession(const Model& target, const Model* draft, ThreadPool* pool,
                     const SpeculationSessionOptions& options);
  ~SpeculationSession();
  SpeculationSession(const SpeculationSession&) = delete;
  SpeculationSession& operator=(const SpeculationSession&) = delete;

  // Builds the drafters for a context of n_ctx tokens (>= 1), or does
  // nothing when they are built for it already.
  void prepare(int32_t n_ctx);
  int32_t n_ctx() const { return n_ctx_; }  // 0 before prepare()

  // Replaces the policy when `options` ask for another kind or threshold
  // (the new one starts without estimates); keeps it otherwise. Throws
  // Error for options out of range.
  void set_policy(const PolicyOptions& options);

  // The drafters (in spec order), the policy and the bandit (null with one
  // drafter), for Generator::generate. prepare() first.
  Speculation speculation() const;

  const std::vector<std::string>& drafter_names() const { return specs_; }
  DraftLengthPolicy& policy() { return *policy_; }
  const DraftLengthPolicy& policy() const { return *policy_; }
  const DrafterBandit* bandit() const { return bandit_.get(); }
  SuffixCache& suffix_cache() { return *suffix_cache_; }
  const SuffixCache& suffix_cache() const { return *suffix_cache_; }

  // Each built drafter's memory, named by its spec, in spec order (empty
  // before prepare()).
  std::vector<DrafterMemory> memory() const;
  // The memory() list and its file and KV sums into `stats` (the target's
  // fields are left as they are).
  void add_memory(MemoryStats& stats) const;

  // Online distillation: the learner's counters (enabled = false without
  // it), and the learned draft written to `path` (Error without it).
  OnlineLearningStats learning_stats() const;
  void save_learned_draft(const std::string& path) const;

 private:
  void check_specs() const;
  void start_online_distillation(const OnlineDistillConfig& config);

  const Model& target_;
  const Model* draft_;
  ThreadPool* pool_;
  std::vector<std::string> specs_;
  int32_t n_ctx_ = 0;
  std::unique_ptr<SuffixCache> suffix_cache_;
  std::shared_ptr<OnlineDistiller> distiller_;  // null without online distillation
  std::vector<std::unique_ptr<Drafter>> drafters_;
  LearningModelDrafter* learning_drafter_ = nullptr;  // among drafters_, if any
  std::unique_ptr<DraftLengthPolicy> policy_;
  PolicyOptions policy_options_;
  std::unique_ptr<DrafterBandit> bandit_;
};

// The Generator's options for a request: its sampling, lengths and draft
// bound, and `stop_tokens` unless options.ignore_eos. The Generator checks
// them. (The Engine's and specula chat's requests alike.)
GeneratorOptions generator_options_for(const GenerateOptions& options,
                                       std::vector<int32_t> stop_tokens);

}  // namespace specula

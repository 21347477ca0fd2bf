// One drafter set of `specula bench --drafter-sets`: a --drafter list
// ("lookup", "model,lookup,suffix") with its own suffix cache, adaptive
// policy and, when it names several drafters, bandit, all kept across the
// bench's repeats as an Engine keeps them across requests. So drafters and
// the bandit over them are compared inside one process, interleaved with
// plain decoding, like the fixed g's and the policies.
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
#include "speculative/drafter.h"
#include "speculative/generator.h"

namespace specula {

// "a,b,c" -> {"a", "b", "c"}; throws Error for an empty list or name.
std::vector<std::string> split_drafter_set(const std::string& set);

// Throws Error, before anything is measured, when a name is unknown or
// needs what is missing (a draft model for "model", enough layers for
// "self:K").
void check_drafter_set(const std::string& set, const Model& target, const Model* draft);

class BenchDrafterSet {
 public:
  // n_ctx: the context of every run (prompt + generated tokens).
  BenchDrafterSet(const std::string& set, const Model& target, const Model* draft, int32_t n_ctx,
                  ThreadPool* pool);
  const std::string& set() const { return set_; }
  // The drafters, the adaptive policy and the bandit (null for one drafter).
  Speculation speculation() const;

 private:
  std::string set_;
  std::unique_ptr<SuffixCache> suffix_cache_;
  std::vector<std::unique_ptr<Drafter>> drafters_;
  std::unique_ptr<DraftLengthPolicy> policy_;
  std::unique_ptr<DrafterBandit> bandit_;
};

}  // namespace specula

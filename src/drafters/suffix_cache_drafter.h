// The suffix-cache drafter: one request's view of a SuffixCache shared by
// the engine. Its sequence (prompt and output) is added to the cache as it
// grows, so later requests, and this one, can draft from it; it proposes
// the cache's likeliest continuation of the sequence's longest known suffix.
//
// Cost: no model; a proposal of g tokens costs about g * max_order hash
// look-ups under the cache's mutex, accepting k tokens k * max_order
// insertions. Memory is the cache's (bounded by its token budget).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "drafters/suffix_cache.h"
#include "speculative/drafter.h"

namespace specula {

class SuffixCacheDrafter : public Drafter {
 public:
  // `cache` must outlive the drafter; several drafters may share it.
  explicit SuffixCacheDrafter(SuffixCache& cache, SuffixProposalOptions options = {});

  // "suffix".
  std::string name() const override;
  const SuffixProposalOptions& options() const { return options_; }

  // Starts a new sequence in the cache holding `context` (the prompt).
  void begin(std::span<const int32_t> context) override;
  // Adds the tokens `context` gained to the cache, then proposes up to g
  // tokens (see SuffixCache::propose). Deterministic: probs stay empty;
  // out.confidence holds each token's frequency after its context, and the
  // draft stops after a token below out.stop_confidence.
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Adds the tokens `context` gained to the cache.
  void accept(std::span<const int32_t> context, int32_t n_accepted) override;
  // Look-ups in the cache; what propose() adds to it accept() would add too.
  bool proposes_for_free() const override { return true; }
  // The shared cache's estimate (cache_bytes).
  DrafterMemory memory() const override;

 private:
  // Appends context[added_..) to this drafter's sequence; starts a new one
  // when `context` does not extend what was added (checked by its length
  // and the last token added: the interface promises an extension).
  void sync(std::span<const int32_t> context);

  SuffixCache& cache_;
  SuffixProposalOptions options_;
  SuffixCache::SequenceId sequence_ = 0;
  bool begun_ = false;
  size_t added_ = 0;        // tokens of the sequence given to the cache
  int32_t last_added_ = 0;  // the last of them
};

}  // namespace specula

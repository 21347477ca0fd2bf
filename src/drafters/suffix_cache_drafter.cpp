#include "drafters/suffix_cache_drafter.h"

namespace specula {

SuffixCacheDrafter::SuffixCacheDrafter(SuffixCache& cache, SuffixProposalOptions options)
    : cache_(cache), options_(options) {
  validate(options_);
}

std::string SuffixCacheDrafter::name() const {
  return "suffix";
}

void SuffixCacheDrafter::begin(std::span<const int32_t> context) {
  sequence_ = cache_.begin_sequence();
  begun_ = true;
  added_ = 0;
  sync(context);
}

void SuffixCacheDrafter::sync(std::span<const int32_t> context) {
  if (!begun_ || context.size() < added_ || (added_ > 0 && context[added_ - 1] != last_added_)) {
    sequence_ = cache_.begin_sequence();
    begun_ = true;
    added_ = 0;
  }
  if (context.size() == added_) return;
  cache_.append(sequence_, context.subspan(added_));
  added_ = context.size();
  last_added_ = context.back();
}

void SuffixCacheDrafter::propose(std::span<const int32_t> context, int32_t g,
                                 const SamplingParams& /*params*/, Rng& /*rng*/,
                                 DraftProposal& out) {
  out.clear();
  sync(context);
  if (g <= 0) return;
  cache_.propose(context, g, options_, out.tokens, &out.confidence);
  // A token the cache doubts ends the draft (it is still proposed).
  for (size_t i = 0; i < out.confidence.size(); ++i) {
    if (out.confidence[i] < out.stop_confidence) {
      out.tokens.resize(i + 1);
      out.confidence.resize(i + 1);
      break;
    }
  }
}

void SuffixCacheDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  sync(context);
}

DrafterMemory SuffixCacheDrafter::memory() const {
  DrafterMemory memory;
  memory.cache_bytes = cache_.memory_bytes();
  return memory;
}

}  // namespace specula

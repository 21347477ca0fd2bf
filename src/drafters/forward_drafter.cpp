#include "drafters/forward_drafter.h"

#include <algorithm>
#include <utility>

#include "sampling/sampling.h"

namespace specula {

void ForwardDrafter::replace_cache(KvCache cache) {
  cache_ = std::move(cache);
  cache_.clear();
  cached_tokens_.clear();
  cached_tokens_.reserve(static_cast<size_t>(cache_.n_ctx()));
}

void ForwardDrafter::begin(std::span<const int32_t> context) {
  // The rows of the prefix this context shares with the cached tokens stay:
  // a row's keys and values depend only on the tokens up to it (and the
  // weights, whose change clears the cache: replace_cache). A chat's next
  // turn, which repeats the conversation so far, then prefills only what
  // is new.
  roll_back(context, context.empty() ? 0 : context.size() - 1);
  if (context.size() > 1) feed(context.first(context.size() - 1), false);
}

void ForwardDrafter::roll_back(std::span<const int32_t> context, size_t max_length) {
  const size_t limit = std::min({cached_tokens_.size(), context.size(), max_length});
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  cached_tokens_.resize(same);
  cache_.truncate(0, static_cast<int32_t>(same));
}

void ForwardDrafter::feed(std::span<const int32_t> context, bool want_logits) {
  rows_.clear();
  for (size_t i = cached_tokens_.size(); i < context.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), context[i], false});
    cached_tokens_.push_back(context[i]);
  }
  if (rows_.empty()) return;
  rows_.back().want_logits = want_logits;
  run_forward(rows_, cache_, logits_);
}

void ForwardDrafter::propose(std::span<const int32_t> context, int32_t g,
                             const SamplingParams& params, Rng& rng, DraftProposal& out) {
  out.clear();
  if (context.empty() || g <= 0) return;
  // No room for even the last token's row: nothing to draft with.
  if (context.size() > static_cast<size_t>(cache_.n_ctx())) return;
  // The last token runs (again) to give the logits of the next position.
  roll_back(context, context.size() - 1);
  feed(context, true);
  // Each drafted token but the last needs a row too: never past the cache.
  g = std::min<int32_t>(g, cache_.n_ctx() - static_cast<int32_t>(context.size()) + 1);

  const bool greedy = params.greedy();
  if (!greedy) out.probs.resize(static_cast<size_t>(g));
  for (int32_t i = 0; i < g; ++i) {
    int32_t token = 0;
    float confidence = 1.0f;
    if (greedy) {
      token = argmax(logits_);
      confidence = softmax_probability(logits_, token);
    } else {
      std::vector<float>& probs = out.probs[static_cast<size_t>(i)];
      logits_to_probs(logits_, params, probs);
      token = sample(probs, rng);
      confidence = probs[static_cast<size_t>(token)];
    }
    out.tokens.push_back(token);
    out.confidence.push_back(confidence);
    // A token the drafter itself doubts ends the draft (it is still
    // proposed: the policy learns from its fate).
    if (confidence < out.stop_confidence) break;
    if (i + 1 < g) {
      rows_.assign(1, {0, static_cast<int32_t>(cached_tokens_.size()), token, true});
      cached_tokens_.push_back(token);
      run_forward(rows_, cache_, logits_);
    }
  }
  if (!greedy) out.probs.resize(out.tokens.size());
}

DrafterMemory ForwardDrafter::memory() const {
  DrafterMemory memory;
  memory.kv_bytes = cache_.bytes();
  return memory;
}

void ForwardDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  roll_back(context, context.size());
}

}  // namespace specula

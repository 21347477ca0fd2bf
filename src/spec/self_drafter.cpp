#include "spec/self_drafter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace specula {
namespace {

// softmax(logits)[token] at temperature 1: the early exit's own belief in a
// greedy pick (whose transformed distribution is one-hot). One O(V) pass.
float softmax_probability(std::span<const float> logits, int32_t token) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit - max_logit));
  return static_cast<float>(std::exp(static_cast<double>(logits[token] - max_logit)) / sum);
}

}  // namespace

int32_t default_self_draft_layers(int32_t n_layer) {
  return std::max(1, (n_layer + 3) / 4);
}

SelfDrafter::SelfDrafter(const Model& target, int32_t n_layers, int32_t n_ctx, ThreadPool* pool)
    : model_(target), n_layers_(n_layers), pool_(pool) {
  const ModelConfig& config = target.config();
  if (n_layers_ == 0) n_layers_ = default_self_draft_layers(config.n_layer);
  if (n_layers_ < 1 || n_layers_ > config.n_layer) {
    fail("self-drafting with ", n_layers, " layers of ", target.file().path(), ", which has ",
         config.n_layer, ": give 1..", config.n_layer,
         " (e.g. self:", default_self_draft_layers(config.n_layer), ")");
  }
  if (n_ctx < 1) fail("the self drafter's context size is ", n_ctx, ": it must be at least 1");
  cache_ = KvCache(n_layers_, 1, n_ctx, config.n_head_kv * config.head_dim);
  cached_tokens_.reserve(static_cast<size_t>(n_ctx));
}

std::string SelfDrafter::name() const {
  return str_cat("self:", n_layers_);
}

void SelfDrafter::begin(std::span<const int32_t> context) {
  cache_.clear();
  cached_tokens_.clear();
  if (context.size() > 1) feed(context.first(context.size() - 1), false);
}

void SelfDrafter::roll_back(std::span<const int32_t> context, size_t max_length) {
  const size_t limit = std::min({cached_tokens_.size(), context.size(), max_length});
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  cached_tokens_.resize(same);
  cache_.truncate(0, static_cast<int32_t>(same));
}

void SelfDrafter::forward() {
  model_.forward_first_layers(rows_, n_layers_, cache_, logits_, pool_);
}

void SelfDrafter::feed(std::span<const int32_t> context, bool want_logits) {
  rows_.clear();
  for (size_t i = cached_tokens_.size(); i < context.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), context[i], false});
    cached_tokens_.push_back(context[i]);
  }
  if (rows_.empty()) return;
  rows_.back().want_logits = want_logits;
  forward();
}

void SelfDrafter::propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params,
                          Rng& rng, DraftProposal& out) {
  out.clear();
  if (context.empty() || g <= 0) return;
  // No room for even the last token's row: nothing to draft with.
  if (context.size() > static_cast<size_t>(cache_.n_ctx())) return;
  // The last token runs (again) to give the logits of the next position.
  roll_back(context, context.size() - 1);
  feed(context, true);
  // Drafted tokens need rows too: never past the cache.
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
      logits_to_probs(logits_, params, out.probs[static_cast<size_t>(i)]);
      token = sample(out.probs[static_cast<size_t>(i)], rng);
      confidence = out.probs[static_cast<size_t>(i)][static_cast<size_t>(token)];
    }
    out.tokens.push_back(token);
    out.confidence.push_back(confidence);
    // A token the early exit itself doubts ends the draft (still proposed).
    if (confidence < out.stop_confidence) break;
    if (i + 1 < g) {
      rows_.assign(1, {0, static_cast<int32_t>(cached_tokens_.size()), token, true});
      cached_tokens_.push_back(token);
      forward();
    }
  }
  if (!greedy) out.probs.resize(out.tokens.size());
}

void SelfDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  roll_back(context, context.size());
}

}  // namespace specula

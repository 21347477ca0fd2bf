#include "spec/learning_model_drafter.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace specula {
namespace {

// softmax(logits)[token] at temperature 1: the draft's belief in a greedy
// pick (whose transformed distribution is one-hot).
float softmax_probability(std::span<const float> logits, int32_t token) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max_logit));
  return static_cast<float>(std::exp(static_cast<double>(logits[token] - max_logit)) / sum);
}

}  // namespace

LearningModelDrafter::LearningModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool,
                                           std::shared_ptr<OnlineDistiller> distiller)
    : original_(draft),
      n_ctx_(n_ctx),
      pool_(pool),
      distiller_(std::move(distiller)),
      model_(&draft),
      cache_(draft.make_cache(n_ctx, 1)) {
  if (!distiller_) fail("a learning drafter needs a distiller");
  cached_tokens_.reserve(static_cast<size_t>(n_ctx));
}

std::string LearningModelDrafter::name() const {
  return "learning draft model " + original_.file().path();
}

void LearningModelDrafter::pick_up_weights() {
  if (distiller_->published_version() == version_) return;
  uint64_t version = 0;
  std::shared_ptr<const Model> model = distiller_->published(&version);
  if (!model || version == version_) return;
  published_ = std::move(model);
  model_ = published_.get();
  version_ = version;
  ++swaps_;
  // Keys and values of the old weights are useless to the new ones.
  cache_ = model_->make_cache(n_ctx_, 1);
  cached_tokens_.clear();
}

void LearningModelDrafter::begin(std::span<const int32_t> context) {
  distiller_->end_sequence();
  pick_up_weights();
  cache_.clear();
  cached_tokens_.clear();
  if (context.size() > 1) feed(context.first(context.size() - 1), false);
}

void LearningModelDrafter::roll_back(std::span<const int32_t> context, size_t max_length) {
  const size_t limit = std::min({cached_tokens_.size(), context.size(), max_length});
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  cached_tokens_.resize(same);
  cache_.truncate(0, static_cast<int32_t>(same));
}

void LearningModelDrafter::feed(std::span<const int32_t> context, bool want_logits) {
  rows_.clear();
  for (size_t i = cached_tokens_.size(); i < context.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), context[i], false});
    cached_tokens_.push_back(context[i]);
  }
  if (rows_.empty()) return;
  rows_.back().want_logits = want_logits;
  model_->forward(rows_, cache_, logits_, pool_);
}

void LearningModelDrafter::propose(std::span<const int32_t> context, int32_t g,
                                   const SamplingParams& params, Rng& rng, DraftProposal& out) {
  out.clear();
  if (context.empty() || g <= 0) return;
  pick_up_weights();
  // The last token must run (again) to give the logits of the next position.
  roll_back(context, context.size() - 1);
  feed(context, true);

  const bool greedy = params.greedy();
  if (!greedy) out.probs.resize(static_cast<size_t>(g));
  for (int32_t i = 0; i < g; ++i) {
    int32_t token = 0;
    float confidence = 1.0f;
    if (greedy) {
      token = argmax(logits_);
      confidence = softmax_probability(logits_, token);
    } else {
      logits_to_probs(logits_, params, out.probs[i]);
      token = sample(out.probs[i], rng);
      confidence = out.probs[i][token];
    }
    out.tokens.push_back(token);
    out.confidence.push_back(confidence);
    if (confidence < out.stop_confidence) break;
    if (i + 1 < g) {
      rows_.assign(1, {0, static_cast<int32_t>(cached_tokens_.size()), token, true});
      cached_tokens_.push_back(token);
      model_->forward(rows_, cache_, logits_, pool_);
    }
  }
  if (!greedy) out.probs.resize(out.tokens.size());
}

void LearningModelDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  roll_back(context, context.size());
}

void LearningModelDrafter::observe_target(std::span<const int32_t> context, int32_t first_position,
                                          std::span<const float> target_logits, int32_t n_rows,
                                          int32_t n_vocab) {
  distiller_->observe(context, first_position, target_logits, n_rows, n_vocab);
}

std::unique_ptr<LearningModelDrafter> make_learning_model_drafter(
    const Model& draft, int32_t n_ctx, ThreadPool* pool, const OnlineDistillOptions& options,
    bool start_learning) {
  auto drafter = std::make_unique<LearningModelDrafter>(
      draft, n_ctx, pool, std::make_shared<OnlineDistiller>(draft, options));
  if (start_learning) drafter->distiller().start();
  return drafter;
}

}  // namespace specula

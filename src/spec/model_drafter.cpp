#include "spec/model_drafter.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "core/error.h"

namespace specula {
namespace {

// softmax(logits)[token] at temperature 1: the draft's own belief in a
// greedy pick, whose transformed distribution is one-hot. One O(V) pass.
float softmax_probability(std::span<const float> logits, int32_t token) {
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max_logit));
  return static_cast<float>(std::exp(static_cast<double>(logits[token] - max_logit)) / sum);
}

}  // namespace

void check_same_vocabulary(const Model& target, const Model& draft) {
  const std::string& target_path = target.file().path();
  const std::string& draft_path = draft.file().path();
  const int32_t target_vocab = target.config().n_vocab;
  const int32_t draft_vocab = draft.config().n_vocab;
  if (target_vocab != draft_vocab) {
    fail("the draft model ", draft_path, " has ", draft_vocab, " tokens but the target ",
         target_path, " has ", target_vocab,
         ": a draft must share the target's vocabulary; use a draft made for this target");
  }
  const char* key = "tokenizer.ggml.tokens";
  const auto target_tokens = target.file().get_string_array(key);
  const auto draft_tokens = draft.file().get_string_array(key);
  if (!target_tokens || !draft_tokens) return;
  if (target_tokens->size() != draft_tokens->size()) {
    fail("the draft model ", draft_path, " lists ", draft_tokens->size(), " tokens in ", key,
         " but the target ", target_path, " lists ", target_tokens->size(),
         ": a draft must share the target's vocabulary");
  }
  for (size_t id = 0; id < target_tokens->size(); ++id) {
    if ((*target_tokens)[id] != (*draft_tokens)[id]) {
      fail("the draft model ", draft_path, " and the target ", target_path,
           " have different tokens at id ", id,
           ": a draft must share the target's vocabulary; use a draft made for this target");
    }
  }
}

ModelDrafter::ModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool)
    : model_(draft), pool_(pool), cache_(draft.make_cache(n_ctx, 1)) {
  cached_tokens_.reserve(n_ctx);
}

std::string ModelDrafter::name() const {
  return "draft model " + model_.file().path();
}

void ModelDrafter::begin(std::span<const int32_t> context) {
  cache_.clear();
  cached_tokens_.clear();
  if (context.size() > 1) feed(context.first(context.size() - 1), false);
}

void ModelDrafter::roll_back(std::span<const int32_t> context, size_t max_length) {
  const size_t limit = std::min({cached_tokens_.size(), context.size(), max_length});
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  cached_tokens_.resize(same);
  cache_.truncate(0, static_cast<int32_t>(same));
}

void ModelDrafter::feed(std::span<const int32_t> context, bool want_logits) {
  rows_.clear();
  for (size_t i = cached_tokens_.size(); i < context.size(); ++i) {
    rows_.push_back({0, static_cast<int32_t>(i), context[i], false});
    cached_tokens_.push_back(context[i]);
  }
  if (rows_.empty()) return;
  rows_.back().want_logits = want_logits;
  model_.forward(rows_, cache_, logits_, pool_);
}

void ModelDrafter::propose(std::span<const int32_t> context, int32_t g,
                           const SamplingParams& params, Rng& rng, DraftProposal& out) {
  out.clear();
  if (context.empty() || g <= 0) return;
  // The last token must run (again) to give the logits of the next position.
  roll_back(context, context.size() - 1);
  feed(context, true);

  const bool greedy = params.greedy();
  if (!greedy) out.probs.resize(g);
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
    // A token the draft itself doubts ends the draft (it is still proposed).
    if (confidence < out.stop_confidence) break;
    if (i + 1 < g) {
      rows_.assign(1, {0, static_cast<int32_t>(cached_tokens_.size()), token, true});
      cached_tokens_.push_back(token);
      model_.forward(rows_, cache_, logits_, pool_);
    }
  }
  if (!greedy) out.probs.resize(out.tokens.size());
}

void ModelDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  roll_back(context, context.size());
}

}  // namespace specula

#include "serve/scheduler_draft.h"

#include <algorithm>
#include <cassert>

#include "sampling/sampling.h"

namespace specula {

SlotModelDrafter::SlotModelDrafter(SharedDraftModel& shared, int32_t seq)
    : shared_(shared), seq_(seq) {
  cached_tokens_.reserve(static_cast<size_t>(shared.cache().n_ctx()));
}

std::string SlotModelDrafter::name() const {
  return "draft model " + shared_.model().file().path();
}

void SlotModelDrafter::begin(std::span<const int32_t> /*context*/) {
  cached_tokens_.clear();
  shared_.cache_.truncate(seq_, 0);
}

void SlotModelDrafter::roll_back(std::span<const int32_t> context, size_t max_length) {
  const size_t limit = std::min({cached_tokens_.size(), context.size(), max_length});
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  cached_tokens_.resize(same);
  shared_.cache_.truncate(seq_, static_cast<int32_t>(same));
}

void SlotModelDrafter::propose(std::span<const int32_t> context, int32_t g,
                               const SamplingParams& params, Rng& rng, DraftProposal& out) {
  SharedDraftModel::Job job{this, context, g, &params, &rng, &out};
  shared_.propose(std::span<SharedDraftModel::Job>(&job, 1));
}

void SlotModelDrafter::accept(std::span<const int32_t> context, int32_t /*n_accepted*/) {
  roll_back(context, context.size());
}

int32_t SlotModelDrafter::rows_to_catch_up(std::span<const int32_t> context) const {
  if (context.empty()) return 0;
  const size_t limit = std::min(cached_tokens_.size(), context.size() - 1);
  size_t same = 0;
  while (same < limit && cached_tokens_[same] == context[same]) ++same;
  return static_cast<int32_t>(context.size() - same);
}

DrafterMemory SlotModelDrafter::memory() const {
  DrafterMemory memory;
  memory.file_bytes = shared_.model().file().file_size();
  const KvCache& cache = shared_.cache();
  memory.kv_bytes = cache.n_seq() > 0 ? cache.bytes() / static_cast<uint64_t>(cache.n_seq()) : 0;
  return memory;
}

SharedDraftModel::SharedDraftModel(const Model& draft, int32_t n_ctx, int32_t n_seq,
                                   ThreadPool* pool)
    : model_(draft), pool_(pool), cache_(draft.make_cache(n_ctx, n_seq)) {}

std::unique_ptr<SlotModelDrafter> SharedDraftModel::make_drafter(int32_t seq) {
  assert(seq >= 0 && seq < cache_.n_seq());
  return std::make_unique<SlotModelDrafter>(*this, seq);
}

void SharedDraftModel::propose(std::span<Job> jobs) {
  const size_t n_vocab = static_cast<size_t>(model_.config().n_vocab);
  const int32_t n_ctx = cache_.n_ctx();
  // The first pass: each sequence's missing tokens, the last (the context's
  // own last token, run again after a rollback) wanting the logits of the
  // first draft position.
  rows_.clear();
  active_.clear();
  for (Job& job : jobs) {
    job.out->clear();
    if (job.context.empty() || job.g <= 0) continue;
    if (job.context.size() > static_cast<size_t>(n_ctx)) continue;  // no room for its row
    SlotModelDrafter& d = *job.drafter;
    d.roll_back(job.context, job.context.size() - 1);
    for (size_t i = d.cached_tokens_.size(); i < job.context.size(); ++i) {
      rows_.push_back({d.seq_, static_cast<int32_t>(i), job.context[i], false});
      d.cached_tokens_.push_back(job.context[i]);
    }
    rows_.back().want_logits = true;
    // Each drafted token but the last needs a row too: never past the cache.
    const int32_t g =
        std::min<int32_t>(job.g, n_ctx - static_cast<int32_t>(job.context.size()) + 1);
    if (!job.params->greedy()) job.out->probs.resize(static_cast<size_t>(g));
    active_.push_back({&job, g, 0});
  }
  while (!rows_.empty()) {
    model_.forward(rows_, cache_, logits_, pool_);
    ++passes_;
    rows_run_ += static_cast<int64_t>(rows_.size());
    rows_.clear();
    next_.clear();
    // One wanted row per active sequence, in order.
    for (size_t a = 0; a < active_.size(); ++a) {
      Active& s = active_[a];
      Job& job = *s.job;
      DraftProposal& out = *job.out;
      const std::span<const float> logits(logits_.data() + a * n_vocab, n_vocab);
      int32_t token = 0;
      float confidence = 1.0f;
      if (job.params->greedy()) {
        token = argmax(logits);
        confidence = softmax_probability(logits, token);
      } else {
        std::vector<float>& probs = out.probs[static_cast<size_t>(s.drafted)];
        logits_to_probs(logits, *job.params, probs);
        token = sample(probs, *job.rng);
        confidence = probs[static_cast<size_t>(token)];
      }
      out.tokens.push_back(token);
      out.confidence.push_back(confidence);
      ++s.drafted;
      // A token the drafter doubts ends its draft (still proposed).
      const bool more = confidence >= out.stop_confidence && s.drafted < s.g;
      if (more) {
        SlotModelDrafter& d = *job.drafter;
        rows_.push_back({d.seq_, static_cast<int32_t>(d.cached_tokens_.size()), token, true});
        d.cached_tokens_.push_back(token);
        next_.push_back(s);
      } else if (!job.params->greedy()) {
        out.probs.resize(out.tokens.size());
      }
    }
    active_.swap(next_);
  }
}

}  // namespace specula

#include "online/learning_model_drafter.h"

#include <utility>

#include "core/error.h"

namespace specula {

LearningModelDrafter::LearningModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool,
                                           std::shared_ptr<OnlineDistiller> distiller)
    : original_(draft), pool_(pool), distiller_(std::move(distiller)), model_(&draft) {
  if (!distiller_) fail("a learning drafter needs a distiller");
  replace_cache(draft.make_cache(n_ctx, 1));
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
  replace_cache(model_->make_cache(cache().n_ctx(), 1));
}

void LearningModelDrafter::run_forward(std::span<const BatchRow> rows, KvCache& cache,
                                       std::vector<float>& logits) {
  model_->forward(rows, cache, logits, pool_);
}

void LearningModelDrafter::begin(std::span<const int32_t> context) {
  distiller_->end_sequence();
  pick_up_weights();
  ForwardDrafter::begin(context);
}

void LearningModelDrafter::propose(std::span<const int32_t> context, int32_t g,
                                   const SamplingParams& params, Rng& rng, DraftProposal& out) {
  // Weights change only here, between steps, never while a proposal is
  // drafted or verified (see the header on exactness).
  if (!context.empty() && g > 0) pick_up_weights();
  ForwardDrafter::propose(context, g, params, rng, out);
}

void LearningModelDrafter::observe_target(std::span<const int32_t> context, int32_t first_position,
                                          std::span<const float> target_logits, int32_t n_rows,
                                          int32_t n_vocab) {
  distiller_->observe(context, first_position, target_logits, n_rows, n_vocab);
}

DrafterMemory LearningModelDrafter::memory() const {
  DrafterMemory memory = ForwardDrafter::memory();
  memory.file_bytes = original_.file().file_size();
  memory.learning_bytes = distiller_->parameter_bytes() + distiller_->stats().buffer_bytes;
  if (published_) memory.learning_bytes += published_->file().file_size();
  return memory;
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

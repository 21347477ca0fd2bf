// A draft model that learns while it drafts (online speculative
// distillation): it proposes like ModelDrafter, forwards the target's
// verified distributions to an OnlineDistiller (train/online_distiller.h),
// and switches to the distiller's newest published weights at the start of
// a proposal, rebuilding its KV cache for the current context (the old keys
// and values came from the old weights).
//
// Exactness: weights change only between steps, never while a proposal is
// drafted or verified, so each proposal's q is the distribution its tokens
// were drawn from, and exact speculative sampling keeps the output
// distribution the target's whatever the weights are.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "drafters/forward_drafter.h"
#include "model/model.h"
#include "online/online_distiller.h"

namespace specula {

class LearningModelDrafter : public ForwardDrafter {
 public:
  // `draft` (and `pool`, may be null) must outlive the drafter. The
  // distiller is shared: an Engine keeps it (and what it learned) when it
  // rebuilds its drafters for another context size; its learner thread
  // stops when the last owner lets go. The cache holds n_ctx positions.
  LearningModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool,
                       std::shared_ptr<OnlineDistiller> distiller);

  std::string name() const override;
  // Ends the distiller's sequence and picks up newly published weights
  // before prefilling as ForwardDrafter::begin.
  void begin(std::span<const int32_t> context) override;
  // Picks up newly published weights first (the cache is then rebuilt by
  // one batched forward over the context), then drafts as ForwardDrafter:
  // single-row forwards, q_i = the transformed logits, confidence and
  // out.stop_confidence as documented in drafter.h. accept: ForwardDrafter.
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams& params, Rng& rng,
               DraftProposal& out) override;
  // Hands the rows to the distiller (non-blocking).
  void observe_target(std::span<const int32_t> context, int32_t first_position,
                      std::span<const float> target_logits, int32_t n_rows,
                      int32_t n_vocab) override;
  // The original draft file (file_bytes), the KV cache (kv_bytes), and the
  // learner's trainable copy, replay buffer and the published weights it
  // drafts with (learning_bytes).
  DrafterMemory memory() const override;

  OnlineDistiller& distiller() { return *distiller_; }
  const OnlineDistiller& distiller() const { return *distiller_; }
  // The weights proposals currently come from (the original draft until
  // the first swap).
  const Model& current_model() const { return *model_; }
  uint64_t weight_version() const { return version_; }
  uint64_t swaps() const { return swaps_; }

 private:
  // Switches to the newest published weights when there are newer ones.
  void pick_up_weights();
  // A forward of the current weights (*model_).
  void run_forward(std::span<const BatchRow> rows, KvCache& cache,
                   std::vector<float>& logits) override;

  const Model& original_;
  ThreadPool* pool_;
  std::shared_ptr<OnlineDistiller> distiller_;
  std::shared_ptr<const Model> published_;  // keeps model_ alive after a swap
  const Model* model_;
  uint64_t version_ = 0;
  uint64_t swaps_ = 0;
};

// The drafter with a distiller initialised from `draft` and, when
// `start_learning`, its learner thread started (tests pass false and call
// distiller().step() themselves). Throws Error for bad options or a draft
// the trainer cannot load (not llama, or quantized weights).
std::unique_ptr<LearningModelDrafter> make_learning_model_drafter(
    const Model& draft, int32_t n_ctx, ThreadPool* pool, const OnlineDistillOptions& options,
    bool start_learning = true);

}  // namespace specula

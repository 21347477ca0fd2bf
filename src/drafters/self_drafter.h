// Self-speculation (layer skip, early exit): the target drafts for itself
// with its first k layers followed by its own final norm and output head.
// No second file and no copy of any weight: the drafter runs the target's
// Model with Model::forward_first_layers in a KV cache of its own holding k
// layers.
//
// Cost per drafted token: about k / n_layer of a target decode step plus
// the output head (which a small model's step is dominated by); memory:
// a cache of k layers (k / n_layer of the target's cache per position).
// How often the early exit agrees with the full model depends on the model:
// models trained with early-exit losses (LayerSkip) agree far more often
// than ordinary ones. The policy measures it and turns it off when it does
// not pay.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "drafters/forward_drafter.h"
#include "model/model.h"

namespace specula {

// The default k: a quarter of the layers, rounded up (at least 1).
int32_t default_self_draft_layers(int32_t n_layer);

class SelfDrafter : public ForwardDrafter {
 public:
  // `target` (and `pool`, may be null) must outlive the drafter. n_layers:
  // 1..n_layer (n_layer drafts exactly what the target would); 0 picks
  // default_self_draft_layers. Its cache holds n_ctx positions. Throws Error
  // for an n_layers out of range.
  SelfDrafter(const Model& target, int32_t n_layers, int32_t n_ctx, ThreadPool* pool);

  // "self:K" (the drafter factory's spec for it).
  std::string name() const override;
  int32_t n_layers() const { return n_layers_; }
  // cache(), begin, propose and accept: see ForwardDrafter; each forward
  // runs the first k layers and the output head.

 private:
  void run_forward(std::span<const BatchRow> rows, KvCache& cache,
                   std::vector<float>& logits) override;

  const Model& model_;
  int32_t n_layers_;
  ThreadPool* pool_;
};

}  // namespace specula

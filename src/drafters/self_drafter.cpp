#include "drafters/self_drafter.h"

#include <algorithm>

#include "core/error.h"

namespace specula {

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
  // Only the first k layers ever hold keys and values.
  replace_cache(KvCache(n_layers_, 1, n_ctx, config.n_head_kv * config.head_dim, target.kv_type()));
}

std::string SelfDrafter::name() const {
  return str_cat("self:", n_layers_);
}

void SelfDrafter::run_forward(std::span<const BatchRow> rows, KvCache& cache,
                              std::vector<float>& logits) {
  model_.forward_first_layers(rows, n_layers_, cache, logits, pool_);
}

}  // namespace specula

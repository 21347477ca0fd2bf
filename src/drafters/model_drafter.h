// A draft model: a smaller transformer with the target's vocabulary, run
// one token at a time in its own KV cache.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "drafters/forward_drafter.h"
#include "model/model.h"

namespace specula {

// Throws Error naming both files when the draft cannot propose tokens for
// the target: a different n_vocab, or token lists (tokenizer.ggml.tokens)
// that differ when both files carry one.
void check_same_vocabulary(const Model& target, const Model& draft);

class ModelDrafter : public ForwardDrafter {
 public:
  // `draft` (and `pool`, may be null) must outlive the drafter. Its cache
  // holds n_ctx positions: as many as the target's.
  ModelDrafter(const Model& draft, int32_t n_ctx, ThreadPool* pool);

  std::string name() const override;
  // The draft file (file_bytes) and its KV cache (kv_bytes).
  DrafterMemory memory() const override;
  // cache(), begin, propose and accept: see ForwardDrafter.

 private:
  void run_forward(std::span<const BatchRow> rows, KvCache& cache,
                   std::vector<float>& logits) override;

  const Model& model_;
  ThreadPool* pool_;
};

}  // namespace specula

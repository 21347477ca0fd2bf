#include "learn/loss.h"

#include "learn/layers.h"

namespace specula {

double CrossEntropyLoss::evaluate(std::span<const float> logits, int64_t n_vocab,
                                  const LossBatch& batch, float* d_logits, ThreadPool* pool) {
  return cross_entropy<float>(logits.data(), batch.targets.data(), batch.batch * batch.seq_len,
                              n_vocab, d_logits, pool);
}

}  // namespace specula

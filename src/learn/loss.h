// Training objectives over the logits of a batch. The trainer calls one
// TrainingLoss per step; cross-entropy against the next token is the
// default, and distillation adds losses against a teacher's distributions
// behind the same interface (they get the batch's tokens, so they can run
// the teacher on them).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/thread_pool.h"

namespace specula {

// B sequences of T positions: row b*T + t read inputs[b*T + t] and should
// predict targets[b*T + t] (the next token of the corpus).
struct LossBatch {
  std::span<const int32_t> inputs;
  std::span<const int32_t> targets;
  int64_t batch = 0;
  int64_t seq_len = 0;
};

class TrainingLoss {
 public:
  virtual ~TrainingLoss() = default;
  // Recorded in checkpoints; a resume refuses a different loss.
  virtual std::string_view name() const = 0;
  // The mean loss over the batch's rows. `logits` holds batch * seq_len rows
  // of n_vocab. When d_logits is not null it receives d(loss)/d(logits); it
  // may be logits.data() itself (overwritten). Must be deterministic for
  // any pool.
  virtual double evaluate(std::span<const float> logits, int64_t n_vocab, const LossBatch& batch,
                          float* d_logits, ThreadPool* pool) = 0;
};

// Mean next-token cross-entropy in nats.
class CrossEntropyLoss final : public TrainingLoss {
 public:
  std::string_view name() const override { return "cross_entropy"; }
  double evaluate(std::span<const float> logits, int64_t n_vocab, const LossBatch& batch,
                  float* d_logits, ThreadPool* pool) override;
};

}  // namespace specula

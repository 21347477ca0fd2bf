// Knowledge distillation: a student is trained to match a teacher's
// next-token distributions at every position of the batch, rather than the
// corpus's one-hot next token. Two divergences:
//   forward KL(p || q): the classic distillation loss (mass-covering);
//   total variation TVD(p, q) = 1/2 sum |p - q|: DistillSpec's choice for
//     drafts, because a draft's expected acceptance rate under exact
//     speculative sampling is exactly sum min(p, q) = 1 - TVD(p, q).
// p = softmax(teacher logits / T), q = softmax(student logits / T).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "learn/loss.h"
#include "model/model.h"

namespace specula {

enum class DistillDivergence { kForwardKl, kTotalVariation };

// "kl" / "tvd"; nullopt for anything else.
std::optional<DistillDivergence> distill_divergence_from_name(std::string_view name);
std::string_view distill_divergence_name(DistillDivergence divergence);

// Mean over `rows` rows of n_vocab logits of the divergence between the
// teacher's and the student's distributions at temperature T. When
// d_student is not null it receives d(mean loss)/d(student logits) (it may
// alias student_logits). Gradients, analytically:
//   KL:  (q - p) / (T * rows)
//   TVD: q_j (s_j - sum_i s_i q_i) / (T * rows), s_i = sign(q_i - p_i) / 2
// (TVD is not differentiable where q_i = p_i; sign(0) = 0 there, so equal
// logits give a zero gradient). Deterministic for any pool.
template <typename T>
double distill_divergence(const T* student_logits, const T* teacher_logits, int64_t rows,
                          int64_t n_vocab, DistillDivergence divergence, double temperature,
                          T* d_student, ThreadPool* pool);

// A TrainingLoss that runs the teacher over each batch sequence (a full
// forward of the window from position 0 with a fresh cache, so its context
// is exactly the student's) and compares distributions.
class DistillLoss final : public TrainingLoss {
 public:
  // The teacher must outlive the loss and share the student's vocabulary.
  DistillLoss(const Model* teacher, DistillDivergence divergence, double temperature);
  std::string_view name() const override { return name_; }
  double evaluate(std::span<const float> logits, int64_t n_vocab, const LossBatch& batch,
                  float* d_logits, ThreadPool* pool) override;

 private:
  const Model* teacher_;
  DistillDivergence divergence_;
  double temperature_;
  std::string name_;
  std::vector<float> teacher_logits_;
  std::vector<BatchRow> rows_;
};

}  // namespace specula

#include "learn/distill_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace specula {
namespace {

// softmax(logits / T) into `probs` (double, so both divergences and their
// gradients are computed from the same well-rounded values).
template <typename T>
void tempered_softmax(const T* logits, int64_t n, double temperature, double* probs) {
  const double max_logit = static_cast<double>(*std::max_element(logits, logits + n));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    probs[i] = std::exp((static_cast<double>(logits[i]) - max_logit) / temperature);
    sum += probs[i];
  }
  for (int64_t i = 0; i < n; ++i) probs[i] /= sum;
}

template <typename Task>
void for_rows(ThreadPool* pool, int64_t rows, const Task& task) {
  if (pool == nullptr || rows < 2) {
    for (int64_t row = 0; row < rows; ++row) task(row);
    return;
  }
  pool->parallel_for(rows, task);
}

}  // namespace

std::optional<DistillDivergence> distill_divergence_from_name(std::string_view name) {
  if (name == "kl") return DistillDivergence::kForwardKl;
  if (name == "tvd") return DistillDivergence::kTotalVariation;
  return std::nullopt;
}

std::string_view distill_divergence_name(DistillDivergence divergence) {
  return divergence == DistillDivergence::kForwardKl ? "kl" : "tvd";
}

template <typename T>
double distill_divergence(const T* student_logits, const T* teacher_logits, int64_t rows,
                          int64_t n_vocab, DistillDivergence divergence, double temperature,
                          T* d_student, ThreadPool* pool) {
  if (!(temperature > 0.0)) fail("distill: the temperature must be > 0, not ", temperature);
  std::vector<double> row_loss(static_cast<size_t>(rows));
  const double inverse_rows = 1.0 / static_cast<double>(rows);
  for_rows(pool, rows, [&](int64_t row) {
    // Each row's scratch is its own, so rows can run on any thread.
    std::vector<double> p(static_cast<size_t>(n_vocab)), q(static_cast<size_t>(n_vocab));
    tempered_softmax(teacher_logits + row * n_vocab, n_vocab, temperature, p.data());
    tempered_softmax(student_logits + row * n_vocab, n_vocab, temperature, q.data());
    T* d = d_student == nullptr ? nullptr : d_student + row * n_vocab;
    const double scale = inverse_rows / temperature;
    double loss = 0.0;
    if (divergence == DistillDivergence::kForwardKl) {
      for (int64_t i = 0; i < n_vocab; ++i) {
        if (p[i] > 0.0) loss += p[i] * (std::log(p[i]) - std::log(std::max(q[i], 1e-300)));
      }
      if (d != nullptr) {
        for (int64_t i = 0; i < n_vocab; ++i) d[i] = static_cast<T>((q[i] - p[i]) * scale);
      }
    } else {
      double s_dot_q = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) {
        loss += std::abs(p[i] - q[i]);
        const double s = q[i] > p[i] ? 0.5 : (q[i] < p[i] ? -0.5 : 0.0);
        s_dot_q += s * q[i];
      }
      loss *= 0.5;
      if (d != nullptr) {
        for (int64_t i = 0; i < n_vocab; ++i) {
          const double s = q[i] > p[i] ? 0.5 : (q[i] < p[i] ? -0.5 : 0.0);
          d[i] = static_cast<T>(q[i] * (s - s_dot_q) * scale);
        }
      }
    }
    row_loss[static_cast<size_t>(row)] = loss;
  });
  double total = 0.0;  // fixed order: the same sum for any pool
  for (const double loss : row_loss) total += loss;
  return total * inverse_rows;
}

template double distill_divergence<float>(const float*, const float*, int64_t, int64_t,
                                          DistillDivergence, double, float*, ThreadPool*);
template double distill_divergence<double>(const double*, const double*, int64_t, int64_t,
                                           DistillDivergence, double, double*, ThreadPool*);

DistillLoss::DistillLoss(const Model* teacher, DistillDivergence divergence, double temperature)
    : teacher_(teacher),
      divergence_(divergence),
      temperature_(temperature),
      name_(str_cat("distill_", distill_divergence_name(divergence), "_t", temperature)) {
  if (!(temperature > 0.0)) fail("distill: the temperature must be > 0, not ", temperature);
}

double DistillLoss::evaluate(std::span<const float> logits, int64_t n_vocab, const LossBatch& batch,
                             float* d_logits, ThreadPool* pool) {
  if (teacher_->config().n_vocab != n_vocab) {
    fail("distill: the teacher has ", teacher_->config().n_vocab, " tokens, the student ", n_vocab);
  }
  // Every window from position 0 in its own sequence of a fresh cache: the
  // teacher sees exactly the context the student sees.
  const auto n_seq = static_cast<int32_t>(batch.batch);
  const auto seq_len = static_cast<int32_t>(batch.seq_len);
  rows_.clear();
  for (int32_t b = 0; b < n_seq; ++b) {
    for (int32_t t = 0; t < seq_len; ++t) {
      rows_.push_back({b, t, batch.inputs[static_cast<size_t>(b) * seq_len + t], true});
    }
  }
  KvCache cache = teacher_->make_cache(seq_len, n_seq);
  teacher_->forward(rows_, cache, teacher_logits_, pool);
  return distill_divergence<float>(logits.data(), teacher_logits_.data(), batch.batch * seq_len,
                                   n_vocab, divergence_, temperature_, d_logits, pool);
}

}  // namespace specula

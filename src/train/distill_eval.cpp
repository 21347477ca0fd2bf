#include "train/distill_eval.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "sampling/sampling.h"

namespace specula {
namespace {

void softmax_row(const float* logits, int64_t n, std::vector<double>& probs) {
  probs.resize(static_cast<size_t>(n));
  const double max_logit = static_cast<double>(*std::max_element(logits, logits + n));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    probs[i] = std::exp(static_cast<double>(logits[i]) - max_logit);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;
}

// Logits of every position of `tokens` run as one sequence from position 0.
void forward_all(const Model& model, std::span<const int32_t> tokens, std::vector<float>& logits,
                 ThreadPool* pool) {
  std::vector<BatchRow> rows;
  for (size_t t = 0; t < tokens.size(); ++t) {
    rows.push_back({0, static_cast<int32_t>(t), tokens[t], true});
  }
  KvCache cache = model.make_cache(static_cast<int32_t>(tokens.size()), 1);
  model.forward(rows, cache, logits, pool);
}

}  // namespace

AcceptanceStats measure_acceptance(const Model& teacher, const Model& draft,
                                   std::span<const int32_t> tokens, int64_t window,
                                   int64_t max_windows, ThreadPool* pool) {
  const int64_t n_vocab = teacher.config().n_vocab;
  if (draft.config().n_vocab != n_vocab) {
    fail("distill: the draft has ", draft.config().n_vocab, " tokens, the teacher ", n_vocab);
  }
  const int64_t n_ctx = std::min<int64_t>(teacher.config().n_ctx_train, draft.config().n_ctx_train);
  if (window < 2 || window > n_ctx) {
    fail("distill: the acceptance window of ", window, " tokens must be in [2, ", n_ctx, "]");
  }
  const int64_t windows =
      std::min<int64_t>(max_windows, static_cast<int64_t>(tokens.size()) / window);
  if (windows < 1) {
    fail("distill: the held-out text has ", tokens.size(), " tokens, fewer than one window of ",
         window, "; give more held-out text");
  }
  AcceptanceStats stats;
  double accepted = 0.0;
  int64_t agreed = 0;
  std::vector<float> teacher_logits, draft_logits;
  std::vector<double> p, q;
  for (int64_t w = 0; w < windows; ++w) {
    const std::span<const int32_t> text =
        tokens.subspan(static_cast<size_t>(w * window), static_cast<size_t>(window));
    forward_all(teacher, text, teacher_logits, pool);
    forward_all(draft, text, draft_logits, pool);
    for (int64_t t = 0; t < window; ++t) {
      softmax_row(teacher_logits.data() + t * n_vocab, n_vocab, p);
      softmax_row(draft_logits.data() + t * n_vocab, n_vocab, q);
      double overlap = 0.0;
      for (int64_t i = 0; i < n_vocab; ++i) overlap += std::min(p[i], q[i]);
      accepted += overlap;
    }
    stats.positions += window;

    // Greedy: the teacher continues the first half of the window.
    const int64_t prompt = window / 2;
    std::vector<int32_t> sequence(text.begin(), text.begin() + prompt);
    KvCache cache = teacher.make_cache(static_cast<int32_t>(window), 1);
    std::vector<BatchRow> rows;
    for (int64_t t = 0; t < prompt; ++t) {
      rows.push_back({0, static_cast<int32_t>(t), sequence[t], t == prompt - 1});
    }
    std::vector<float> last;
    while (static_cast<int64_t>(sequence.size()) < window) {
      teacher.forward(rows, cache, last, pool);
      const int32_t next = argmax(last);
      rows = {{0, static_cast<int32_t>(sequence.size()), next, true}};
      sequence.push_back(next);
    }
    forward_all(draft, sequence, draft_logits, pool);
    for (int64_t t = prompt - 1; t + 1 < window; ++t) {
      const std::span<const float> row(draft_logits.data() + t * n_vocab,
                                       static_cast<size_t>(n_vocab));
      agreed += argmax(row) == sequence[static_cast<size_t>(t + 1)] ? 1 : 0;
      ++stats.greedy_positions;
    }
  }
  stats.expected_acceptance = accepted / static_cast<double>(stats.positions);
  stats.greedy_agreement = static_cast<double>(agreed) /
                           static_cast<double>(std::max<int64_t>(1, stats.greedy_positions));
  return stats;
}

}  // namespace specula

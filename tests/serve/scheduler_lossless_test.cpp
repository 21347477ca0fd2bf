// Losslessness in the batched path: 100k requests through the scheduler,
// eight sequences per step, each drafting with the draft model and verified
// on its own rows with its own RNG stream (seeded from its request). The
// three generated tokens of each request must fit the target's exact joint
// distribution over the next three tokens (chi-square, enumerated with
// fresh forwards as in tests/spec/generator_lossless_test.cpp), with a
// fixed g = 2 (so the second draft position, the residual and the bonus
// all occur) and with the adaptive policy choosing g per sequence and step.
// Negative controls: the same test must reject deliberately wrong
// verification rules run through the same scheduler.
#include <gtest/gtest.h>

#include <mutex>
#include <numeric>

#include "serve/scheduler.h"
#include "spec/chi_square.h"
#include "spec/model_files.h"
#include "speculative/verifier.h"

namespace specula {
namespace {

constexpr int kSamples = 100000;
constexpr double kRejectBelow = 1e-4;
constexpr int32_t kNewTokens = 3;
const std::vector<int32_t> kPrompt = {2};

// Keeps every drafted token: the output follows the draft, not the target.
class AcceptEveryDraft : public Verifier {
 protected:
  VerifyResult verify_sampled(const DraftProposal& draft, std::span<const float> p, int32_t n_vocab,
                              Rng& rng) override {
    const size_t g = draft.tokens.size();
    VerifyResult r;
    r.n_accepted = static_cast<int32_t>(g);
    r.next_token = sample(p.subspan(g * static_cast<size_t>(n_vocab), n_vocab), rng);
    return r;
  }
};

// The acceptance test is right, but a rejection is corrected by drawing
// from p instead of norm(max(0, p - q)): a subtle, common mistake.
class CorrectFromTarget : public Verifier {
 protected:
  VerifyResult verify_sampled(const DraftProposal& draft, std::span<const float> p, int32_t n_vocab,
                              Rng& rng) override {
    const size_t v = static_cast<size_t>(n_vocab);
    for (size_t i = 0; i < draft.tokens.size(); ++i) {
      const int32_t x = draft.tokens[i];
      const std::span<const float> pi = p.subspan(i * v, v);
      const double q = draft.deterministic() ? 1.0 : draft.probs[i][static_cast<size_t>(x)];
      if (rng.uniform() * q >= pi[static_cast<size_t>(x)]) {
        return {static_cast<int32_t>(i), sample(pi, rng)};
      }
    }
    return {static_cast<int32_t>(draft.tokens.size()),
            sample(p.subspan(draft.tokens.size() * v, v), rng)};
  }
};

// P(t_1..t_n | prompt) for every n-tuple (cell = the tuple as a base-V
// number), from fresh forwards of the target alone.
std::vector<double> exact_joint(const Model& target, const SamplingParams& params, int32_t n) {
  const int32_t vocab = target.config().n_vocab;
  std::vector<double> joint = {1.0};
  std::vector<std::vector<int32_t>> prefixes = {kPrompt};
  for (int32_t step = 0; step < n; ++step) {
    std::vector<double> next_joint;
    std::vector<std::vector<int32_t>> next_prefixes;
    for (size_t cell = 0; cell < joint.size(); ++cell) {
      std::vector<float> probs;
      logits_to_probs(testing::fresh_last_logits(target, prefixes[cell]), params, probs);
      for (int32_t token = 0; token < vocab; ++token) {
        next_joint.push_back(joint[cell] * probs[static_cast<size_t>(token)]);
        next_prefixes.push_back(prefixes[cell]);
        next_prefixes.back().push_back(token);
      }
    }
    joint = std::move(next_joint);
    prefixes = std::move(next_prefixes);
  }
  return joint;
}

// The scheduler runs of one suite's models.
template <typename Suite, RandomModelOptions (*kOptions)()>
class LosslessRuns : public testing::SuiteModelPair<Suite, kOptions> {
 protected:
  using testing::SuiteModelPair<Suite, kOptions>::target;
  using testing::SuiteModelPair<Suite, kOptions>::draft;

  struct Run {
    testing::GoodnessOfFit fit;
    int64_t drafted = 0;
    int64_t accepted = 0;
    double rows_per_pass = 0;
    std::vector<int64_t> g_steps;
  };

  static Run run(BatchPolicyKind policy, const SamplingParams& params, Verifier* verifier) {
    SchedulerOptions o;
    o.parallel = 8;
    o.n_ctx = static_cast<int32_t>(kPrompt.size()) + kNewTokens;
    o.queue_max = kSamples;
    o.step_rows = 64;
    o.draft_max = 2;
    o.drafters = {"model"};
    o.policy = policy;
    o.verifier = verifier;
    const int32_t vocab = target().config().n_vocab;
    const std::vector<double> expected = exact_joint(target(), params, kNewTokens);
    std::vector<int64_t> counts(expected.size(), 0);
    Run out;
    std::mutex mutex;
    int64_t wrong_length = 0;
    {
      Scheduler scheduler(target(), &draft(), nullptr, o);
      for (int i = 0; i < kSamples; ++i) {
        CompletionRequest r;
        r.prompt = kPrompt;
        r.max_tokens = kNewTokens;
        r.sampling = params;
        r.sampling.seed = 1000003ULL * static_cast<uint64_t>(i) + 17;
        const auto id = scheduler.submit(r, nullptr, [&](CompletionResult result) {
          std::lock_guard<std::mutex> lock(mutex);
          if (result.tokens.size() != static_cast<size_t>(kNewTokens)) {
            ++wrong_length;
            return;
          }
          int32_t cell = 0;
          for (int32_t token : result.tokens) cell = cell * vocab + token;
          ++counts[static_cast<size_t>(cell)];
          out.drafted += result.speculation.drafted;
          out.accepted += result.speculation.accepted;
        });
        EXPECT_TRUE(id.has_value());
      }
      EXPECT_TRUE(scheduler.wait_idle(600.0));
      const SchedulerMetrics m = scheduler.metrics();
      int64_t rows = 0;
      for (size_t r = 0; r < m.rows_per_pass.size(); ++r) {
        rows += static_cast<int64_t>(r) * m.rows_per_pass[r];
      }
      out.rows_per_pass = m.steps > 0 ? static_cast<double>(rows) / m.steps : 0.0;
      out.g_steps = m.g_steps;
    }
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(wrong_length, 0);
    out.fit = testing::chi_square_test(counts, expected);
    return out;
  }
};

class SchedulerLossless : public LosslessRuns<SchedulerLossless, testing::tiny_vocab_model> {};

SamplingParams transform(float temperature, int32_t top_k, float top_p) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = 0.0f;
  return p;
}

TEST_F(SchedulerLossless, FixedDraftLengthManySequencesPerStep) {
  const Run r = run(BatchPolicyKind::kFixed, transform(1.0f, 0, 1.0f), nullptr);
  EXPECT_GT(r.fit.p_value, kRejectBelow) << r.fit.detail;
  // Drafts were both kept and rejected, and passes carried several
  // sequences (a sequence alone has at most 3 rows).
  EXPECT_GT(r.accepted, r.drafted / 10);
  EXPECT_LT(r.accepted, r.drafted * 9 / 10);
  EXPECT_GT(r.rows_per_pass, 6.0);
}

TEST_F(SchedulerLossless, PolicyChosenDraftLengthsWithTopKAndTopP) {
  // The per-sequence adaptive policy: g varies by sequence and step (the
  // capacity-aware policy, on this tiny compute-bound model, rightly
  // chooses g = 0; whichever policy chooses, g is fixed before the step's
  // random draws, which is all exactness needs).
  const Run r = run(BatchPolicyKind::kAdaptive, transform(0.8f, 4, 0.9f), nullptr);
  EXPECT_GT(r.fit.p_value, kRejectBelow) << r.fit.detail;
  ASSERT_EQ(r.g_steps.size(), 3u);
  EXPECT_GT(r.g_steps[0], 0);
  EXPECT_GT(r.g_steps[1] + r.g_steps[2], 0);
  EXPECT_GT(r.drafted, 0);
  EXPECT_GT(r.rows_per_pass, 6.0);
}

TEST_F(SchedulerLossless, AcceptingEveryDraftIsRejected) {
  AcceptEveryDraft wrong;
  const Run r = run(BatchPolicyKind::kFixed, transform(1.0f, 0, 1.0f), &wrong);
  EXPECT_LT(r.fit.p_value, kRejectBelow) << r.fit.detail;
}

TEST_F(SchedulerLossless, CorrectingFromTheTargetIsRejected) {
  CorrectFromTarget wrong;
  const Run r = run(BatchPolicyKind::kFixed, transform(1.0f, 0, 1.0f), &wrong);
  EXPECT_LT(r.fit.p_value, kRejectBelow) << r.fit.detail;
}

}  // namespace
}  // namespace specula

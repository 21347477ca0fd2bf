// The joint draft-length allocation (batch_policy.h) on synthetic cost
// curves and acceptance: while rows are free every sequence drafts what its
// acceptance justifies; when every row costs a full pass nobody drafts; as
// rows get dearer the sequence least likely to be accepted drops first;
// with one sequence it is the single-sequence optimum; floors (probes),
// caps and the row budget hold. Expected values are worked out by hand or
// by exhaustive search, not by the allocator.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "serve/batch_policy.h"

namespace specula {
namespace {

// E(g) for a constant per-position acceptance a, g = 0..cap.
DraftCandidate candidate(double a, int32_t cap, double draft_seconds = 0.0) {
  DraftCandidate c;
  double expected = 1.0, all = 1.0;
  c.expected.push_back(expected);
  for (int32_t g = 1; g <= cap; ++g) {
    all *= a;
    expected += all;
    c.expected.push_back(expected);
  }
  c.draft_seconds_per_token = draft_seconds;
  return c;
}

// t(rows) = base + per_row * rows.
std::function<double(int32_t)> linear(double base, double per_row) {
  return [=](int32_t rows) { return base + per_row * rows; };
}

double rate(const std::vector<DraftCandidate>& cs, const std::vector<int32_t>& g, int32_t base_rows,
            const std::function<double(int32_t)>& t) {
  double tokens = 0, draft = 0;
  int32_t rows = base_rows;
  for (size_t i = 0; i < cs.size(); ++i) {
    tokens += cs[i].expected[static_cast<size_t>(g[i])];
    draft += g[i] * cs[i].draft_seconds_per_token;
    rows += g[i];
  }
  return tokens / (draft + t(rows));
}

// The best rate over every combination (small cases only).
double exhaustive_best(const std::vector<DraftCandidate>& cs, int32_t base_rows,
                       const std::function<double(int32_t)>& t) {
  std::vector<int32_t> g(cs.size(), 0);
  double best = 0;
  for (;;) {
    best = std::max(best, rate(cs, g, base_rows, t));
    size_t i = 0;
    while (i < cs.size() && g[i] == cs[i].cap()) g[i++] = 0;
    if (i == cs.size()) break;
    ++g[i];
  }
  return best;
}

TEST(BatchPolicy, FlatCurveDraftsEverythingWorthDrafting) {
  // Memory-bound: rows are free, drafting is free: every sequence drafts
  // to its cap (each extra token adds expected tokens at no cost).
  const std::vector<DraftCandidate> cs = {candidate(0.8, 4), candidate(0.5, 4), candidate(0.2, 4)};
  const DraftAllocation a = allocate_draft_lengths(cs, 3, 0, 1000, linear(0.01, 0.0));
  EXPECT_EQ(a.g, (std::vector<int32_t>{4, 4, 4}));
  EXPECT_EQ(a.rows, 15);
}

TEST(BatchPolicy, SteepCurveDraftsNothing) {
  // Compute-bound with no fixed cost: a row costs as much as a pass of one
  // row, so a drafted token (accepted with probability < 1) never pays.
  const std::vector<DraftCandidate> cs = {candidate(0.9, 4), candidate(0.7, 4), candidate(0.6, 4)};
  const DraftAllocation a = allocate_draft_lengths(cs, 3, 0, 1000, linear(0.0, 0.001));
  EXPECT_EQ(a.g, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(a.rows, 3);
}

TEST(BatchPolicy, DearerRowsDropTheLeastAcceptedSequenceFirst) {
  const std::vector<DraftCandidate> cs = {candidate(0.9, 4), candidate(0.3, 4)};
  // Fixed pass cost 10 ms; per-row cost from cheap to dear. Worked by hand
  // for 2 ms per row (base rows 2, pass 14 ms, 2 tokens: 0.143 tokens/ms):
  // the 0.3 sequence's first token adds 0.3 tokens for 2 ms (0.15/ms, barely
  // worth it alone, but not once the 0.9 sequence has raised the rate),
  // while the 0.9 sequence's first adds 0.9 for 2 ms.
  const DraftAllocation cheap = allocate_draft_lengths(cs, 2, 0, 1000, linear(0.010, 0.0002));
  EXPECT_GT(cheap.g[0], 0);
  EXPECT_GT(cheap.g[1], 0);
  const DraftAllocation dearer = allocate_draft_lengths(cs, 2, 0, 1000, linear(0.010, 0.002));
  EXPECT_GT(dearer.g[0], 0);
  EXPECT_EQ(dearer.g[1], 0);
  const DraftAllocation dearest = allocate_draft_lengths(cs, 2, 0, 1000, linear(0.002, 0.02));
  EXPECT_EQ(dearest.g, (std::vector<int32_t>{0, 0}));
  // Along a sweep of the row cost (to past 45 ms, where even the 0.9
  // sequence's first token stops paying: 0.9 / t_row < 2 / t(2)) g never rises, and the
  // low-acceptance sequence is never drafting more than the high one.
  int32_t last0 = 5, last1 = 5;
  for (double per_row = 0.0; per_row < 0.06; per_row += 0.0005) {
    const DraftAllocation a = allocate_draft_lengths(cs, 2, 0, 1000, linear(0.010, per_row));
    EXPECT_LE(a.g[0], last0) << per_row;
    EXPECT_LE(a.g[1], last1) << per_row;
    EXPECT_LE(a.g[1], a.g[0]) << per_row;
    last0 = a.g[0];
    last1 = a.g[1];
  }
  EXPECT_EQ(last0, 0);
}

TEST(BatchPolicy, OneSequenceIsTheSingleSequenceOptimum) {
  // The adaptive policy's rule: argmax_g E(g) / (g t_draft + t(1 + g)).
  for (double a : {0.3, 0.6, 0.8, 0.95}) {
    for (double per_row : {0.0001, 0.001, 0.003}) {
      const std::vector<DraftCandidate> cs = {candidate(a, 6, 0.0005)};
      const auto t = linear(0.01, per_row);
      int32_t best_g = 0;
      double best = 0;
      for (int32_t g = 0; g <= 6; ++g) {
        const double r = cs[0].expected[static_cast<size_t>(g)] / (g * 0.0005 + t(1 + g));
        if (r > best * (1.0 + 1e-9)) {
          best = r;
          best_g = g;
        }
      }
      const DraftAllocation alloc = allocate_draft_lengths(cs, 1, 0, 1000, t);
      EXPECT_EQ(alloc.g[0], best_g) << "a " << a << ", per row " << per_row;
    }
  }
}

TEST(BatchPolicy, GreedyReachesTheExhaustiveOptimumOnMixedBatches) {
  const std::vector<DraftCandidate> cs = {candidate(0.95, 4, 0.0003), candidate(0.7, 4, 0.0003),
                                          candidate(0.5, 4, 0.0001), candidate(0.2, 4, 0.0)};
  for (double per_row : {0.0, 0.0002, 0.0006, 0.0015, 0.004}) {
    // A curve flat up to 8 rows, then rising: the shape of a target that
    // turns compute-bound.
    const auto t = [per_row](int32_t rows) {
      return 0.01 + per_row * std::max(0, rows - 8) + 0.00005 * rows;
    };
    const DraftAllocation a = allocate_draft_lengths(cs, 4, 0, 1000, t);
    EXPECT_NEAR(a.tokens_per_second(), exhaustive_best(cs, 4, t), 1e-6 * a.tokens_per_second())
        << per_row;
    EXPECT_NEAR(a.tokens_per_second(), rate(cs, a.g, 4, t), 1e-9);
  }
}

TEST(BatchPolicy, ACatchUpCostKeepsAnIdleDrafterOff) {
  // Two equal sequences; the second's draft model sat out 30 steps and
  // must run 30 rows (1 ms each) before drafting again. Worked by hand: pass
  // 10 ms + 0.5 ms per row, base rows 2 (2 tokens in 11 ms = 0.18/ms). The
  // first sequence's first token: +0.8 tokens for 1.5 ms; the second's
  // first: +0.8 for 31.5 ms (0.025/ms), far below the rate: it stays at 0.
  std::vector<DraftCandidate> cs = {candidate(0.8, 4, 0.001), candidate(0.8, 4, 0.001)};
  cs[1].start_seconds = 0.030;
  const auto t = linear(0.010, 0.0005);
  const DraftAllocation a = allocate_draft_lengths(cs, 2, 0, 1000, t);
  EXPECT_GT(a.g[0], 0);
  EXPECT_EQ(a.g[1], 0);
  // Without the catch-up both draft (alike, up to the last token, whose
  // worth depends on what the other already drafts).
  cs[1].start_seconds = 0.0;
  const DraftAllocation b = allocate_draft_lengths(cs, 2, 0, 1000, t);
  EXPECT_LE(std::abs(b.g[0] - b.g[1]), 1);
  EXPECT_GT(b.g[1], 0);
  // The start cost counts in the predicted seconds once.
  cs[1].start_seconds = 0.002;
  const DraftAllocation c = allocate_draft_lengths(cs, 2, 0, 1000, t);
  if (c.g[1] > 0) {
    EXPECT_NEAR(c.seconds, (c.g[0] + c.g[1]) * 0.001 + 0.002 + t(2 + c.g[0] + c.g[1]), 1e-12);
  }
}

TEST(BatchPolicy, PromptChunksDoNotMakeDraftsLookCheap) {
  // Compute-bound: every row costs 1 ms. Four decoding sequences (a = 0.6)
  // share the pass with 100 prompt rows. A draft row adds at most 0.6
  // tokens for the 1 ms a row costs, where a prompt or plain row is one
  // unit of work per row: (104 + 0.6) / 107 ms < 104 / 106 ms, so nobody
  // drafts (worked by hand).
  const std::vector<DraftCandidate> cs(4, candidate(0.6, 4));
  const auto dear = linear(0.002, 0.001);
  DraftAllocation a = allocate_draft_lengths(cs, 104, 100, 1000, dear);
  EXPECT_EQ(a.g, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_NEAR(a.expected_tokens, 104.0, 1e-12);
  // Counting the prompt rows as no work (the formula without P) makes the
  // 4 tokens look as dear as 106 ms and a draft row cheap beside them:
  // 4.6 / 107 ms > 4 / 106 ms. This is what the credit prevents.
  a = allocate_draft_lengths(cs, 104, 0, 1000, dear);
  EXPECT_GT(a.g[0] + a.g[1] + a.g[2] + a.g[3], 0);
  // While rows are free, prompt chunks change nothing: all draft to the cap.
  a = allocate_draft_lengths(cs, 104, 100, 1000, linear(0.05, 0.0));
  EXPECT_EQ(a.g, (std::vector<int32_t>{4, 4, 4, 4}));
}

TEST(BatchPolicy, FloorsCapsAndTheRowBudgetHold) {
  std::vector<DraftCandidate> cs = {candidate(0.9, 4), candidate(0.9, 2), candidate(0.9, 0)};
  cs[2].expected = {1.0};
  // Free rows: capped at 4, 2 and 0.
  DraftAllocation a = allocate_draft_lengths(cs, 3, 0, 1000, linear(0.01, 0.0));
  EXPECT_EQ(a.g, (std::vector<int32_t>{4, 2, 0}));
  // A budget of 6 rows: 3 base rows leave 3 for drafts.
  a = allocate_draft_lengths(cs, 3, 0, 6, linear(0.01, 0.0));
  EXPECT_EQ(a.rows, 6);
  EXPECT_EQ(a.g[0] + a.g[1], 3);
  // A floor (a probe) is kept even when rows are dear.
  cs[1].floor = 2;
  a = allocate_draft_lengths(cs, 3, 0, 1000, linear(0.0, 0.01));
  EXPECT_EQ(a.g, (std::vector<int32_t>{0, 2, 0}));
  // No candidates: nothing to do.
  a = allocate_draft_lengths({}, 5, 0, 10, linear(0.01, 0.0));
  EXPECT_TRUE(a.g.empty());
  EXPECT_EQ(a.rows, 5);
}

}  // namespace
}  // namespace specula

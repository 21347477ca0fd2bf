// Capacity-aware speculation (docs/serving.md): each step the draft lengths
// g_i of all decoding sequences are chosen together to maximise the batch's
// expected tokens per second,
//
//   rate(g) = (P + sum_i E_i(g_i)) / (sum_i d_i(g_i) + t_target(R + sum_i g_i)),
//   d_i(g) = g * t_draft,i + [g > 0] * s_i,
//
// where E_i(g) = 1 + sum_{j=1..g} prod_{k<j} a_i,k is sequence i's expected
// tokens from a step drafting g (from its own acceptance estimates),
// t_draft,i its drafter's seconds per drafted token, s_i what catching its
// drafter up costs before the first drafted token (a draft model that sat
// out k steps must first run the k tokens it missed), R the rows the pass
// carries anyway (one per decoding sequence and the prefill chunks), P the
// prefill rows among them, and t_target the measured cost curve
// (cost_curve.h). A prefill row counts as one unit of work done, as a plain
// decoding row's token does: without it, a pass carrying prompt chunks
// makes every decoded token look dear (the chunks' time over the few
// tokens) and draft rows cheap beside it, and a busy server drafted on a
// compute-bound target (the shipped pair at 16-32 clients: 0.87-0.91x
// plain decoding). While extra rows are
// nearly free (a memory-bound target) every sequence drafts what its own
// estimates justify; as rows get dear, g falls, first for the sequences
// whose drafts are least likely to be accepted, down to 0.
//
// The search is greedy by marginal gain: from every g_i at its floor, it
// repeatedly takes the single change (one sequence's g_i raised to any
// longer length up to its cap) that raises the rate most, until none does.
// E_i has diminishing increments (acceptance products only shrink) and
// t_target is non-decreasing, so this reaches the optimum or stops close
// to it; looking past the next length lets a sequence cross a flat stretch.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace specula {

// One decoding sequence's options this step.
struct DraftCandidate {
  // expected[g] = E(g) for g = 0..cap (expected[0] = 1: the target's own
  // token); its size - 1 is the most the sequence may draft (0: none).
  std::vector<double> expected;
  double draft_seconds_per_token = 0;  // 0 when unmeasured
  // Paid once when it drafts at all (g >= 1): catching the drafter up with
  // the tokens generated since it last drafted (a draft model's rows).
  double start_seconds = 0;
  int32_t floor = 0;  // the least it drafts (a probe the policy insists on)

  int32_t cap() const { return static_cast<int32_t>(expected.size()) - 1; }
};

struct DraftAllocation {
  std::vector<int32_t> g;  // one per candidate
  double expected_tokens = 0;
  double seconds = 0;  // predicted seconds of the step
  int32_t rows = 0;    // rows of the pass
  double tokens_per_second() const { return seconds > 0 ? expected_tokens / seconds : 0.0; }
};

// `base_rows`: rows of the pass besides the drafted ones (>= the number of
// candidates); `prefill_rows`: those of them that are prompt chunks (P);
// `max_rows`: the pass's row budget (drafts stop there; floors and base
// rows may exceed it); `target_seconds(rows)`: the cost curve.
// expected_tokens in the result counts the P units of prefill work too.
DraftAllocation allocate_draft_lengths(std::span<const DraftCandidate> candidates,
                                       int32_t base_rows, int32_t prefill_rows, int32_t max_rows,
                                       const std::function<double(int32_t)>& target_seconds);

}  // namespace specula

// How the engine decides how many tokens to draft per step (docs/speculative.md).
#pragma once

#include <string>
#include <string_view>

namespace specula {

enum class PolicyKind {
  // Cost-aware: the g that maximises expected tokens per second from online
  // acceptance and cost estimates, 0 (plain decoding) when no g pays, with
  // re-probing; the draft stops early below a learned confidence. Default.
  kAdaptive,
  kFixed,       // g = draft_max every step (the classic behaviour)
  kHeuristic,   // +2 after a fully accepted draft, -1 otherwise, in 1..draft_max
  kConfidence,  // g = draft_max, stopping below a fixed confidence threshold
};

// "adaptive", "fixed", "heuristic", "confidence".
std::string_view policy_name(PolicyKind kind);
// The inverse; throws Error naming the accepted values for anything else.
PolicyKind parse_policy(std::string_view name);

}  // namespace specula

// Scripted stand-ins for a drafter and a draft-length policy, for the tests
// of the decoding steps (generation_step.h): they do what the test says and
// record what the pipeline told them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "policies/policy.h"
#include "speculative/drafter.h"

namespace specula::testing {

// Proposes the first g tokens of its script.
class ScriptedDrafter : public Drafter {
 public:
  explicit ScriptedDrafter(std::vector<int32_t> script = {}, std::string name = "scripted")
      : script(std::move(script)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void begin(std::span<const int32_t>) override { ++begins; }
  void propose(std::span<const int32_t>, int32_t g, const SamplingParams&, Rng&,
               DraftProposal& out) override {
    out.clear();
    for (int32_t i = 0; i < g && i < static_cast<int32_t>(script.size()); ++i) {
      out.tokens.push_back(script[i]);
    }
    ++proposals;
  }
  void accept(std::span<const int32_t> context, int32_t n_accepted) override {
    accepted.push_back(n_accepted);
    accept_lengths.push_back(static_cast<int32_t>(context.size()));
  }
  void observe_target(std::span<const int32_t>, int32_t first_position, std::span<const float>,
                      int32_t n_rows, int32_t) override {
    observed_first.push_back(first_position);
    observed_rows.push_back(n_rows);
  }
  bool proposes_for_free() const override { return free; }

  std::vector<int32_t> script;
  bool free = false;  // proposes_for_free()
  int begins = 0;
  int proposals = 0;
  std::vector<int32_t> accepted;        // n_accepted of each accept()
  std::vector<int32_t> accept_lengths;  // context size at each accept()
  std::vector<int32_t> observed_first;  // first_position of each observe_target()
  std::vector<int32_t> observed_rows;   // n_rows of each observe_target()

 private:
  std::string name_;
};

// Plans lengths[slot] tokens for drafter `slot` (the Generator caps it at
// the limit) and records the limits it was asked with.
class ScriptedPolicy : public DraftLengthPolicy {
 public:
  explicit ScriptedPolicy(std::vector<int32_t> lengths)
      : DraftLengthPolicy(PolicyOptions{.kind = PolicyKind::kFixed}), lengths(std::move(lengths)) {}
  PolicyKind kind() const override { return PolicyKind::kFixed; }
  StepPlan plan(int32_t slot, int32_t limit) const override {
    limits.push_back(limit);
    return {lengths[slot], 0.0f, false};
  }

  std::vector<int32_t> lengths;
  mutable std::vector<int32_t> limits;
};

}  // namespace specula::testing

#include "benchmark/bench_decode_modes.h"

#include <algorithm>
#include <utility>

#include "benchmark/bench_drafter_set.h"

namespace specula {
namespace {

// dst[i] += src[i], growing dst as needed.
void add_counts(std::vector<int64_t>& dst, const std::vector<int64_t>& src) {
  dst.resize(std::max(dst.size(), src.size()), 0);
  for (size_t i = 0; i < src.size(); ++i) dst[i] += src[i];
}

// Per repeat: a / b of the same repeat (0 where b is 0).
Spread per_repeat_ratio(const DecodeTally& a, const DecodeTally& b) {
  std::vector<double> ratios;
  for (size_t r = 0; r < a.tokens_per_second.size(); ++r) {
    const double base = b.tokens_per_second[r];
    ratios.push_back(base > 0 ? a.tokens_per_second[r] / base : 0);
  }
  return summarize(ratios);
}

}  // namespace

void DecodeTally::add(const GenerationOutput& out) {
  const GenerationStats& s = out.stats;
  if (tokens_per_second.empty()) first_tokens = out.tokens;
  if (out.tokens != first_tokens) consistent = false;
  tokens_per_second.push_back(s.decode_tokens_per_second());
  drafted += s.drafted_tokens;
  accepted += s.accepted_tokens;
  generated += s.generated_tokens;
  passes += s.target_passes;
  add_counts(draft_length_steps, s.draft_length_steps);
  std::vector<int64_t> steps;
  for (const DrafterUsage& d : s.drafters) steps.push_back(d.steps);
  add_counts(drafter_steps, steps);
  estimated_speedup = s.estimated_speedup;
}

double DecodeTally::acceptance_rate() const {
  return drafted > 0 ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0;
}

double DecodeTally::tokens_per_pass() const {
  return passes > 0 ? static_cast<double>(generated) / static_cast<double>(passes) : 0;
}

bool DecodeTally::identical_to(const DecodeTally& plain) const {
  return plain.consistent && consistent && first_tokens == plain.first_tokens;
}

DecodeModeList::DecodeModeList(const Model& target, const Model* draft, ThreadPool& pool,
                               const BenchOptions& options, int32_t n_ctx)
    : target_(target), draft_(draft), pool_(pool), n_ctx_(n_ctx) {
  greedy_.sampling.temperature = 0;
  greedy_.draft_max = 0;
  const int32_t largest_g =
      *std::max_element(options.draft_max_list.begin(), options.draft_max_list.end());
  add_plain();
  if (draft_) {
    SpeculationSessionOptions session;
    session.drafters = {"model"};
    session.policy.kind = PolicyKind::kFixed;  // the policies below bring their own
    model_session_ = std::make_unique<SpeculationSession>(target_, draft_, &pool_, session);
    model_session_->prepare(n_ctx_);
    for (int32_t g : options.draft_max_list) add_fixed(g);
    for (PolicyKind kind : options.policies) add_policy(kind, largest_g);
  }
  for (const std::string& set : options.drafter_sets) add_drafter_set(set, largest_g);
}

DecodeModeList::~DecodeModeList() = default;

void DecodeModeList::add_plain() {
  DecodeMode mode;
  mode.name = "plain";
  mode.run = [this](Generator& generator, std::span<const int32_t> prompt, int32_t n) {
    return generator.generate(prompt, Speculation{}, greedy_options(n, 0));
  };
  mode.report = [](const DecodeTally&, const DecodeBaselines&, BenchReport&) {};
  modes_.push_back(std::move(mode));
}

void DecodeModeList::add_fixed(int32_t draft_max) {
  DecodeMode mode;
  mode.name = "speculative g=" + std::to_string(draft_max);
  mode.fixed_draft_max = draft_max;
  mode.run = [this, draft_max](Generator& generator, std::span<const int32_t> prompt, int32_t n) {
    return generator.generate(prompt, model_session_->speculation(), greedy_options(n, draft_max));
  };
  mode.report = [draft_max](const DecodeTally& t, const DecodeBaselines& b, BenchReport& r) {
    SpeculativePoint point;
    point.draft_max = draft_max;
    point.tokens_per_second = summarize(t.tokens_per_second);
    point.speedup = per_repeat_ratio(t, *b.plain);
    point.acceptance_rate = t.acceptance_rate();
    point.tokens_per_pass = t.tokens_per_pass();
    point.identical_to_plain = t.identical_to(*b.plain);
    r.speculative.push_back(std::move(point));
  };
  modes_.push_back(std::move(mode));
}

void DecodeModeList::add_policy(PolicyKind kind, int32_t draft_max) {
  PolicyOptions policy_options;
  policy_options.kind = kind;
  policies_.push_back(make_policy(policy_options));
  DraftLengthPolicy* policy = policies_.back().get();
  DecodeMode mode;
  mode.name = "policy " + std::string(policy_name(kind));
  mode.run = [this, policy, draft_max](Generator& generator, std::span<const int32_t> prompt,
                                       int32_t n) {
    const GeneratorOptions o = greedy_options(n, draft_max);
    Speculation speculation = model_session_->speculation();
    speculation.policy = policy;
    return generator.generate(prompt, speculation, o);
  };
  mode.report = [kind, draft_max](const DecodeTally& t, const DecodeBaselines& b, BenchReport& r) {
    PolicyPoint point;
    point.policy = kind;
    point.draft_max = draft_max;
    point.tokens_per_second = summarize(t.tokens_per_second);
    point.speedup = per_repeat_ratio(t, *b.plain);
    if (b.best_fixed) {
      point.vs_best_fixed = per_repeat_ratio(t, *b.best_fixed);
      point.best_fixed_draft_max = b.best_fixed_draft_max;
    }
    point.acceptance_rate = t.acceptance_rate();
    point.tokens_per_pass = t.tokens_per_pass();
    point.draft_length_steps = t.draft_length_steps;
    point.estimated_speedup = t.estimated_speedup;
    point.identical_to_plain = t.identical_to(*b.plain);
    r.policies.push_back(std::move(point));
  };
  modes_.push_back(std::move(mode));
}

void DecodeModeList::add_drafter_set(const std::string& set, int32_t draft_max) {
  SpeculationSessionOptions session;
  session.drafters = split_drafter_set(set);  // the adaptive policy, the default
  set_sessions_.push_back(std::make_unique<SpeculationSession>(target_, draft_, &pool_, session));
  SpeculationSession* s = set_sessions_.back().get();
  s->prepare(n_ctx_);
  DecodeMode mode;
  mode.name = "drafters " + set;
  mode.run = [this, s, draft_max](Generator& generator, std::span<const int32_t> prompt,
                                  int32_t n) {
    return generator.generate(prompt, s->speculation(), greedy_options(n, draft_max));
  };
  mode.report = [set, draft_max](const DecodeTally& t, const DecodeBaselines& b, BenchReport& r) {
    DrafterSetPoint point;
    point.drafters = set;
    point.draft_max = draft_max;
    point.tokens_per_second = summarize(t.tokens_per_second);
    point.speedup = per_repeat_ratio(t, *b.plain);
    point.acceptance_rate = t.acceptance_rate();
    point.tokens_per_pass = t.tokens_per_pass();
    point.steps_by_drafter = t.drafter_steps;
    point.identical_to_plain = t.identical_to(*b.plain);
    r.drafter_sets.push_back(std::move(point));
  };
  modes_.push_back(std::move(mode));
}

DecodeBaselines DecodeModeList::baselines() const {
  DecodeBaselines b;
  b.plain = &modes_.front().tally;
  double best_median = -1;
  for (const DecodeMode& mode : modes_) {
    if (mode.fixed_draft_max == 0) continue;
    const double median = summarize(mode.tally.tokens_per_second).median;
    if (median > best_median) {
      best_median = median;
      b.best_fixed = &mode.tally;
      b.best_fixed_draft_max = mode.fixed_draft_max;
    }
  }
  return b;
}

void DecodeModeList::report(BenchReport& report) const {
  const DecodeBaselines b = baselines();
  for (const DecodeMode& mode : modes_) mode.report(mode.tally, b, report);
  if (model_session_) model_session_->add_memory(report.memory);
}

}  // namespace specula

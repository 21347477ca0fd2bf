// Exactness checks that every drafter must pass, on tiny random models:
// greedy speculative output equals plain greedy output, and at T = 1 the
// speculative samples fit the target's exact joint distribution over the
// next few tokens (chi-square; see generator_lossless_test.cpp for the
// method and its negative controls).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spec/chi_square.h"
#include "spec/model_files.h"
#include "spec/wrong_verify_rules.h"
#include "speculative/generator.h"

namespace specula::testing {

inline GeneratorOptions generation_options(float temperature, int32_t n, int32_t g,
                                           uint64_t seed = 0) {
  GeneratorOptions o;
  o.sampling.temperature = temperature;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.min_p = 0.0f;
  o.sampling.seed = seed;
  o.max_new_tokens = n;
  o.draft_max = g;
  return o;
}

// The processed next-token distribution after `sequence`, from a fresh
// forward over the whole sequence (independent of any generator cache).
inline std::vector<float> fresh_next_probs(const Model& target,
                                           const std::vector<int32_t>& sequence,
                                           const SamplingParams& params) {
  std::vector<float> probs;
  logits_to_probs(fresh_last_logits(target, sequence), params, probs);
  return probs;
}

// P(t_1..t_n | prompt) for every n-tuple; cell = the tuple as a base-V number.
inline std::vector<double> exact_joint(const Model& target, const std::vector<int32_t>& prompt,
                                       const SamplingParams& params, int32_t n) {
  const int32_t vocab = target.config().n_vocab;
  std::vector<double> joint = {1.0};
  std::vector<std::vector<int32_t>> prefixes = {prompt};
  for (int32_t step = 0; step < n; ++step) {
    std::vector<double> next_joint;
    std::vector<std::vector<int32_t>> next_prefixes;
    for (size_t cell = 0; cell < joint.size(); ++cell) {
      const std::vector<float> probs = fresh_next_probs(target, prefixes[cell], params);
      for (int32_t token = 0; token < vocab; ++token) {
        next_joint.push_back(joint[cell] * probs[token]);
        next_prefixes.push_back(prefixes[cell]);
        next_prefixes.back().push_back(token);
      }
    }
    joint = std::move(next_joint);
    prefixes = std::move(next_prefixes);
  }
  return joint;
}

// A deterministic drafter (q one-hot): proposes the last token g times, the
// way a trivial n-gram drafter would.
class RepeatLastDrafter : public Drafter {
 public:
  std::string name() const override { return "repeat-last"; }
  void begin(std::span<const int32_t>) override {}
  void propose(std::span<const int32_t> context, int32_t g, const SamplingParams&, Rng&,
               DraftProposal& out) override {
    out.clear();
    out.tokens.assign(g, context.back());
  }
  void accept(std::span<const int32_t>, int32_t) override {}
};

struct FitResult {
  GoodnessOfFit fit;
  int64_t drafted = 0;
  int64_t accepted = 0;
};

// `samples` speculative generations of `n_new` tokens after `prompt` with
// draft length g, each with its own seed (seed_base + 1000003 i), tested
// against the exact joint. Tests that mean to be independent evidence use
// different seed bases (and models and prompts).
inline FitResult speculative_fit(const Model& target, Drafter& drafter,
                                 const std::vector<int32_t>& prompt, const SamplingParams& params,
                                 int32_t g, int32_t n_new, int samples,
                                 VerifyRule rule = VerifyRule::kExact, uint64_t seed_base = 17) {
  const int32_t vocab = target.config().n_vocab;
  const std::vector<double> expected = exact_joint(target, prompt, params, n_new);
  std::vector<int64_t> counts(expected.size(), 0);
  Generator generator(target, static_cast<int32_t>(prompt.size()) + n_new, nullptr);
  GeneratorOptions options;
  options.sampling = params;
  options.max_new_tokens = n_new;
  options.draft_max = g;
  const std::unique_ptr<Verifier> verifier = make_verifier(rule);
  options.verifier = verifier.get();
  FitResult result;
  for (int i = 0; i < samples; ++i) {
    options.sampling.seed = 1000003ULL * static_cast<uint64_t>(i) + seed_base;
    const GenerationOutput out = generator.generate(prompt, &drafter, options);
    EXPECT_EQ(out.tokens.size(), static_cast<size_t>(n_new));
    int32_t cell = 0;
    for (int32_t token : out.tokens) cell = cell * vocab + token;
    ++counts[static_cast<size_t>(cell)];
    result.drafted += out.stats.drafted_tokens;
    result.accepted += out.stats.accepted_tokens;
  }
  result.fit = chi_square_test(counts, expected);
  return result;
}

struct GreedyIdentityResult {
  int64_t drafted = 0;
  int64_t accepted = 0;
};

// For each prompt and g in {1, 2, 4}: greedy speculative tokens == greedy
// plain tokens (gtest failures name the prompt and g).
inline GreedyIdentityResult expect_greedy_identity(const Model& target, Drafter& drafter,
                                                   const std::vector<std::vector<int32_t>>& prompts,
                                                   int32_t n_new) {
  GreedyIdentityResult result;
  const int32_t n_ctx = 96;
  Generator generator(target, n_ctx, nullptr);
  for (size_t p = 0; p < prompts.size(); ++p) {
    const GenerationOutput plain =
        generator.generate(prompts[p], nullptr, generation_options(0.0f, n_new, 0));
    for (int32_t g : {1, 2, 4}) {
      const GenerationOutput spec =
          generator.generate(prompts[p], &drafter, generation_options(0.0f, n_new, g));
      EXPECT_EQ(spec.tokens, plain.tokens) << drafter.name() << ", prompt " << p << ", g = " << g;
      result.drafted += spec.stats.drafted_tokens;
      result.accepted += spec.stats.accepted_tokens;
    }
  }
  return result;
}

}  // namespace specula::testing

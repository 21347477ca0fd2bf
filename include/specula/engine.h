// specula's public C++ API for front ends (the CLI now, the server later):
// load a target model and an optional draft, then generate, plainly or by
// exact speculative decoding, with per-run statistics.
//
//   auto engine = specula::Engine::load({.model_path = "target.gguf",
//                                        .draft_path = "draft.gguf"});
//   specula::GenerateOptions options;  // temperature, top-k, ..., draft_max
//   auto result = engine->generate("Once upon a time", options,
//       [](int32_t, std::string_view text) { std::fputs(std::string(text).c_str(), stdout); });
//   // result.tokens, result.text, result.stats (acceptance, tokens/s, ...)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "specula/policy_kind.h"
#include "specula/stats.h"

namespace specula {

// Online distillation (docs/online-distillation.md): the "model" drafter
// keeps learning from the target's verified distributions while it drafts.
// A background learner thread trains a float copy of the draft and swaps
// new weights in between steps; generation never waits for it, and the
// output stays exact whatever it learns. The draft must be a llama model
// with F32, F16 or BF16 weights.
struct OnlineDistillConfig {
  bool enabled = false;          // --online-distill
  int32_t threads = 1;           // learner threads, its own included
  int64_t memory_mib = 64;       // replay buffer budget (the trainable copy is extra:
                                 // 16 bytes per draft parameter)
  double cpu_fraction = 0.25;    // share of wall time the learner may compute, (0, 1]
  float learning_rate = 1e-4f;   // AdamW, after a linear warm-up
  int32_t warmup_steps = 32;     // steps of the warm-up
  double replay = 2.0;           // at most this many learner steps per window stored
  double average_decay = 0.995;  // publish a moving average of the weights; 0: the latest
  int32_t publish_every = 16;    // steps between weight swaps
  std::string loss = "tvd";      // "tvd" (total variation) or "kl" (forward KL)
  float temperature = 1.0f;      // of both distributions in the loss
  int32_t top_k = 64;            // ids kept per target distribution; 0: whole rows
  int32_t window = 64;           // tokens of context per training window
  int32_t batch = 4;             // windows per step
  uint64_t seed = 1;             // which stored windows each step draws
};

struct EngineConfig {
  std::string model_path;  // the target GGUF file
  std::string draft_path;  // a draft GGUF sharing its vocabulary; empty: none
  int32_t n_threads = 0;   // 0: every core
  // The drafters to choose among, by spec (src/spec/drafter_factory.h):
  // "model" (the draft file), "lookup[:N|:MIN-MAX]" (prompt lookup),
  // "suffix" (a suffix cache of everything this engine generated),
  // "self[:K]" (the target's first K layers). Empty: "model" when there is
  // a draft file, and "lookup". With more than one, a bandit picks per step.
  std::vector<std::string> drafters;
  // Memory budget of the "suffix" drafter's cache, in stored tokens
  // (~300-900 bytes each); the oldest are evicted beyond it.
  int64_t suffix_cache_tokens = int64_t{1} << 16;
  OnlineDistillConfig online_distill;  // needs the "model" drafter
};

struct GenerateOptions {
  // The sampling transform, applied to the target's and the draft's logits
  // alike. temperature 0 is greedy; top_k 0, top_p 1 and min_p 0 are off.
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  uint64_t seed = 0;  // the same seed and options replay the same tokens
  int32_t max_new_tokens = 128;
  // The most tokens drafted per step (g); the policy chooses within it.
  // 0: plain decoding.
  int32_t draft_max = 4;
  // How g is chosen (docs/speculative.md): adaptive (cost-aware, turns
  // speculation off when it does not pay), fixed (g = draft_max), heuristic
  // (+2/-1), confidence (g = draft_max, stop below confidence_threshold).
  PolicyKind policy = PolicyKind::kAdaptive;
  float confidence_threshold = 0.4f;  // for PolicyKind::kConfidence
  // Context size in tokens (prompt + generated). 0: just enough for the
  // prompt and max_new_tokens, capped at the model's training context.
  int32_t n_ctx = 0;
  bool ignore_eos = false;  // keep generating past end-of-generation tokens
};

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated; an end-of-generation token is not included
  std::string text;             // decoded `tokens` (empty without a tokenizer)
  int32_t n_ctx = 0;            // the context size used
  GenerationStats stats;
  MemoryStats memory;
  OnlineLearningStats learning;  // enabled = false without online distillation
};

// Called for each generated token as soon as it is accepted, with the text
// it completes (empty while a UTF-8 character is incomplete, or without a
// tokenizer). A last call with token -1 delivers any text still held.
using TokenTextCallback = std::function<void(int32_t token, std::string_view text)>;

class Engine {
 public:
  // Loads and checks the files. Throws Error naming the file at fault, or
  // both files when the draft's vocabulary differs from the target's, or
  // for an unknown drafter name ("model" without a draft file included).
  // The policy's estimates and the bandit's state persist across generate
  // calls: what one request learned is the next one's prior.
  static std::unique_ptr<Engine> load(const EngineConfig& config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  bool has_draft() const;
  // The drafters in use, by name (EngineConfig::drafters resolved).
  std::vector<std::string> drafter_names() const;
  // False when the target's tokenizer is missing or unsupported; then only
  // generate_from_tokens works, and tokenize() says why.
  bool has_tokenizer() const;
  int32_t n_vocab() const;
  int32_t n_ctx_train() const;  // 0 when the file does not say
  int32_t n_threads() const;

  // Text -> ids (with BOS when the vocabulary asks for it). Throws Error
  // without a tokenizer.
  std::vector<int32_t> tokenize(std::string_view text) const;
  std::string detokenize(std::span<const int32_t> tokens) const;

  // Online distillation: the learner's counters so far (enabled = false
  // without it), and the learned draft written as a GGUF file that --draft
  // can load later. save_learned_draft throws Error without online
  // distillation or when the file cannot be written.
  OnlineLearningStats online_learning_stats() const;
  void save_learned_draft(const std::string& path);

  GenerateResult generate(std::string_view prompt, const GenerateOptions& options,
                          const TokenTextCallback& on_token = {});
  GenerateResult generate_from_tokens(std::span<const int32_t> prompt_tokens,
                                      const GenerateOptions& options,
                                      const TokenTextCallback& on_token = {});

 private:
  Engine();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specula

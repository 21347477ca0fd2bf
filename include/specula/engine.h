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

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "specula/error.h"
#include "specula/policy_kind.h"
#include "specula/stats.h"

namespace specula {

// Online distillation (docs/online-distillation.md): the "model" drafter
// keeps learning from the target's verified distributions while it drafts.
// A background learner thread trains a float copy of the draft and swaps
// new weights in between steps; generation never waits for it, and the
// output stays exact whatever it learns. The draft must be a llama model
// with F32, F16 or BF16 weights.
//
// This is the one definition of the learner's options and their defaults:
// the distiller takes it as is (src/online/online_distiller.h) and the CLI
// binds its --osd-* flags to these fields (src/cli/online_distill_flags.h).
// Errors name the fields ("EngineConfig::online_distill.cpu_fraction").
struct OnlineDistillConfig {
  bool enabled = false;  // the Engine runs a learner
  int32_t threads = 1;   // learner threads, its own included: 1..256
  // Replay buffer budget, >= 4096 (the trainable copy is extra: 16 bytes
  // per draft parameter).
  int64_t memory_bytes = int64_t{64} << 20;
  // Share of wall time the learner may compute, in (0, 1]: after a step of
  // d seconds it sleeps d (1 - f) / f. With threads > 1 it uses up to
  // threads x f cores.
  double cpu_fraction = 0.25;
  float learning_rate = 1e-4f;  // AdamW, after the warm-up: in (0, 1)
  // Steps over which the rate rises linearly to learning_rate: Adam's first
  // updates move every weight by ~learning_rate whatever its gradient, so
  // small early steps keep the first few windows from pulling the draft off.
  int32_t warmup_steps = 32;
  // The learner waits for new data rather than take more than this many
  // steps per window stored so far, and takes none before the buffer holds
  // `batch` windows: a fast learner on slow generation would otherwise
  // overfit the first windows and draft worse. > 0.
  double replay = 2.0;
  // Publish (and save) an exponential moving average of the weights,
  // average = d * average + (1 - d) * weights after each step, instead of
  // the latest weights: online steps on a few windows are noisy, and the
  // average drafts better than any single step's weights. In [0, 1); 0: off.
  double average_decay = 0.995;
  int32_t publish_every = 16;  // learner steps between weight swaps, >= 1
  std::string loss = "tvd";    // "tvd" (total variation) or "kl" (forward KL)
  float temperature = 1.0f;    // of both distributions in the loss, > 0
  int32_t top_k = 64;          // ids kept per target distribution; 0: whole rows
  // Tokens per training window, >= 2: the draft learns from at most this
  // much context before each observed position.
  int32_t window = 64;
  int32_t batch = 4;  // windows per step, >= 1
  uint64_t seed = 1;  // which stored windows each step draws
};

// Element type of the KV caches' keys and values.
enum class KvCacheType {
  kF16,  // IEEE half, rounded to nearest even: half the memory (llama.cpp's default)
  kF32,  // the values as computed
};

struct EngineConfig {
  std::string model_path;  // the target GGUF file
  std::string draft_path;  // a draft GGUF sharing its vocabulary; empty: none
  int32_t n_threads = 0;   // 0: one per physical core this process may use
  // Of the target's and a draft model's caches. A KV cache holds 2 x
  // layers x KV heads x head size values per token of context (an 8B Llama
  // at 8192 tokens: 1 GiB in F16, 2 GiB in F32).
  KvCacheType kv_cache_type = KvCacheType::kF16;
  // The drafters to choose among, by spec (src/engine/drafter_factory.h):
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
  // 0: plain decoding. 8: on the memory-bound benchmark pair the adaptive
  // policy within 8 was as fast as within 4 or faster, and within 2% of
  // the best fixed g (docs/benchmarks.md); a bound of 4 caps a fully
  // accepted step at 5 tokens where verification is cheap (many cores).
  int32_t draft_max = 8;
  // How g is chosen (docs/speculative.md): adaptive (cost-aware, turns
  // speculation off when it does not pay), fixed (g = draft_max), heuristic
  // (+2/-1), confidence (g = draft_max, stop below confidence_threshold).
  PolicyKind policy = PolicyKind::kAdaptive;
  float confidence_threshold = 0.4f;  // for PolicyKind::kConfidence
  // Context size in tokens (prompt + generated). 0: just enough for the
  // prompt and max_new_tokens, capped at the model's training context.
  int32_t n_ctx = 0;
  bool ignore_eos = false;  // keep generating past end-of-generation tokens
  // When set, generation ends (StopReason::kCancelled) after the token in
  // which this became true: a signal handler or another thread can stop a
  // request cleanly, keeping what was generated. Not owned.
  const std::atomic<bool>* cancel = nullptr;
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

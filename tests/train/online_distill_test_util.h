// Tiny models and target rows for the online distiller's tests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "learn/random.h"
#include "model/make_model.h"
#include "model/model.h"
#include "online/online_distiller.h"

namespace specula::test {

// The vocabulary of every model and token stream below.
constexpr int32_t kVocab = 32;

// A random model of `n_layer` layers, width 32, built in memory.
inline std::unique_ptr<Model> random_model(uint64_t seed, int32_t n_layer = 1) {
  RandomModelOptions o;
  o.n_vocab = kVocab;
  o.n_embd = 32;
  o.n_layer = n_layer;
  o.n_head = 2;
  o.n_ctx = 64;
  o.seed = seed;
  return model_from_gguf_bytes(build_random_model(o).to_bytes(), "random model");
}

inline std::vector<int32_t> random_tokens(size_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng.below(kVocab));
  return tokens;
}

// Logits of every position of `tokens` (row i scores the token after tokens[i]).
inline std::vector<float> all_logits(const Model& model, const std::vector<int32_t>& tokens) {
  KvCache cache = model.make_cache(static_cast<int32_t>(tokens.size()));
  std::vector<BatchRow> rows;
  for (size_t i = 0; i < tokens.size(); ++i) {
    rows.push_back({0, static_cast<int32_t>(i), tokens[i], true});
  }
  std::vector<float> logits;
  model.forward(rows, cache, logits, nullptr);
  return logits;
}

// Hands the distiller the target's rows for every position of `context`
// after the first, as the Generator would over a whole sequence, and ends
// the sequence (one window in the buffer).
inline void observe_whole(OnlineDistiller& distiller, const Model& target,
                          const std::vector<int32_t>& context) {
  const std::vector<float> logits = all_logits(target, context);
  const auto n_rows = static_cast<int32_t>(context.size()) - 1;
  distiller.observe(context, 1, std::span<const float>(logits).first(n_rows * kVocab), n_rows,
                    kVocab);
  distiller.end_sequence();
}

// Small, fast-learning options; the tests publish themselves.
inline OnlineDistillOptions small_options() {
  OnlineDistillOptions o;
  o.memory_bytes = 1 << 20;
  o.window = 16;
  o.batch = 4;
  o.top_k = 0;
  o.learning_rate = 1e-2f;
  o.publish_every = 1000;
  return o;
}

}  // namespace specula::test

// A Llama-family decoder (GGUF architectures `llama` and `qwen2`) whose
// weights are used in place from the mapped GGUF file.
//
// The Model holds weights only and is immutable after load; the state of a
// generation lives in a KvCache, so one Model can serve several caches
// (the target and, for self-drafting, a cheaper view of it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "gguf/gguf_reader.h"
#include "kernels/ops.h"
#include "model/kv_cache.h"
#include "model/model_config.h"

namespace specula {

// One row of a forward pass: the token at `position` of sequence `seq`.
// A row's position must equal the sequence's current cache length plus the
// number of earlier rows of the same sequence in the batch.
struct BatchRow {
  int32_t seq = 0;
  int32_t position = 0;
  int32_t token = 0;
  bool want_logits = false;
};

// The element type of the KV caches a Model makes unless told otherwise:
// F16, as llama.cpp's default cache, at half the memory of F32.
inline constexpr DType kDefaultKvType = DType::kF16;

class Model {
 public:
  // Loads and validates `path`. Throws Error naming the file and the
  // missing/misshapen tensor or inconsistent hyperparameter. kv_type: the
  // element type of the caches make_cache makes (kF16 or kF32).
  static std::unique_ptr<Model> load(const std::string& path, DType kv_type = kDefaultKvType);
  // The same, over an already opened file (the Model keeps it alive).
  static std::unique_ptr<Model> from_gguf(std::shared_ptr<const GgufReader> file,
                                          DType kv_type = kDefaultKvType);
  ~Model();

  const ModelConfig& config() const;
  const GgufReader& file() const;
  // Bytes of weights read by one forward pass (all matrices once).
  uint64_t weight_bytes() const;

  // A cache for up to n_seq sequences of up to n_ctx positions each, of
  // kv_type() values.
  KvCache make_cache(int32_t n_ctx, int32_t n_seq = 1) const;
  DType kv_type() const;

  // Runs the rows through the model, appending their keys and values to
  // `cache`, and writes n_vocab logits for each row with want_logits, in row
  // order, to `logits` (resized to n_wanted * n_vocab). Each weight matrix is
  // read once for all rows. Throws Error when a row's position does not
  // follow its sequence's cache, a token id is outside the vocabulary, or a
  // sequence would exceed the cache's n_ctx.
  void forward(std::span<const BatchRow> rows, KvCache& cache, std::vector<float>& logits,
               ThreadPool* pool) const;

  // Self-speculation (layer skip, early exit): the same as forward, but the
  // rows go through only the first n_layers blocks (1 <= n_layers <=
  // n_layer) before the final norm and output head, as if the model ended
  // there. `cache` holds either every layer (make_cache) or exactly the
  // first n_layers (KvCache(n_layers, n_seq, n_ctx, n_head_kv * head_dim,
  // any type));
  // only layers [0, n_layers) are written. n_layers = n_layer is forward.
  void forward_first_layers(std::span<const BatchRow> rows, int32_t n_layers, KvCache& cache,
                            std::vector<float>& logits, ThreadPool* pool) const;

 private:
  Model();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specula

// Checkpoints: one GGUF file holding a llama model (F32 weights and, when
// given, the tokenizer: `specula generate` runs it as is), plus
//   train.*  keys: the options, the step, the data RNG's state, tokens
//            seen, the corpus fingerprint and the loss's name;
//   adam_m.<tensor>, adam_v.<tensor>: Adam's moments, F32.
// Written to a temporary file and renamed, so a crash never leaves a
// half-written checkpoint where a good one was.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "gguf/gguf_reader.h"
#include "train/trainer.h"

namespace specula {

struct TrainState {
  int64_t step = 0;
  uint64_t rng_state = 0;
  uint64_t tokens_seen = 0;
  uint64_t corpus_fingerprint = 0;
  std::string loss_name;
};

void write_checkpoint(const std::string& path, const ParameterLayout& layout,
                      const TrainOptions& options, const TrainState& state,
                      std::span<const float> params, std::span<const float> m,
                      std::span<const float> v, const GgufReader* tokenizer);

struct Checkpoint {
  std::unique_ptr<GgufReader> file;
  TrainOptions options;
  TrainState state;
};

// Opens a checkpoint and reads its keys; throws Error naming the file and
// the missing key when it is not a specula checkpoint.
Checkpoint read_checkpoint(const std::string& path);

// Reads the parameters and moments (each layout.total() floats).
void read_checkpoint_tensors(const Checkpoint& checkpoint, const ParameterLayout& layout,
                             std::span<float> params, std::span<float> m, std::span<float> v);

}  // namespace specula

// Hyperparameters of a Llama-family model, read from GGUF metadata.
#pragma once

#include <cstdint>
#include <string>

#include "gguf/gguf_reader.h"
#include "kernels/ops.h"

namespace specula {

struct ModelConfig {
  std::string architecture;  // "llama" or "qwen2"
  std::string name;          // general.name, may be empty
  int32_t n_vocab = 0;
  int32_t n_embd = 0;  // model width
  int32_t n_layer = 0;
  int32_t n_head = 0;     // query heads
  int32_t n_head_kv = 0;  // key/value heads (grouped-query attention)
  int32_t head_dim = 0;   // n_embd / n_head unless the file says otherwise
  int32_t n_ff = 0;       // feed-forward width
  int32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  RopeStyle rope_style = RopeStyle::kNormal;
  bool qkv_bias = false;     // qwen2
  bool tied_output = false;  // output matrix is token_embd
};

// Reads and checks the config. Throws Error naming the file and key.
ModelConfig read_model_config(const GgufReader& file);

}  // namespace specula

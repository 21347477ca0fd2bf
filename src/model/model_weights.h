// The tensors of a Llama-family model, bound in place to the mapped GGUF
// file (zero copy), with every name, shape and type checked at load.
// Internal to the model part.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/aligned_buffer.h"
#include "gguf/gguf_reader.h"
#include "kernels/matmul.h"
#include "model/model_config.h"

namespace specula {

// Shapes in ggml order [n_in, n_out]; a matrix of n_out rows of n_in values.
struct LayerWeights {
  const float* attn_norm = nullptr;    // [n_embd]
  WeightMatrix attn_q;                 // [n_embd, n_head * head_dim]
  WeightMatrix attn_k;                 // [n_embd, n_head_kv * head_dim]
  WeightMatrix attn_v;                 // [n_embd, n_head_kv * head_dim]
  const float* attn_q_bias = nullptr;  // [n_head * head_dim], qkv_bias only
  const float* attn_k_bias = nullptr;  // [n_head_kv * head_dim]
  const float* attn_v_bias = nullptr;  // [n_head_kv * head_dim]
  WeightMatrix attn_output;            // [n_head * head_dim, n_embd]
  const float* ffn_norm = nullptr;     // [n_embd]
  WeightMatrix ffn_gate;               // [n_embd, n_ff]
  WeightMatrix ffn_up;                 // [n_embd, n_ff]
  WeightMatrix ffn_down;               // [n_ff, n_embd]
};

struct ModelWeights {
  WeightMatrix token_embd;             // [n_embd, n_vocab]; rows looked up
  std::vector<LayerWeights> layers;    // n_layer
  const float* output_norm = nullptr;  // [n_embd]
  WeightMatrix output;                 // [n_embd, n_vocab]; token_embd when tied
  uint64_t bytes_per_forward = 0;      // bytes of every tensor a pass reads whole
  // Packed copies of the integer matrices (pack_model_weights), which the
  // matrices' `packed` pointers point into.
  std::vector<AlignedBuffer<uint8_t>> packed_storage;
};

// Binds every tensor `config` calls for. Throws Error naming the file and the
// missing, misshapen or unsupported tensor.
ModelWeights bind_model_weights(const GgufReader& file, const ModelConfig& config);

// Packs every integer matrix a pass reads whole (kernels/weight_packing.h)
// when this CPU's kernels read packed rows, unless SPECULA_PACKED_WEIGHTS=0
// or the copy would take more than 60% of the available memory
// (available_memory, or the system's: available_memory_bytes()); token_embd
// only when the output is tied to it. Costs one copy of those matrices in
// memory, and one read of them at load. Returns the bytes packed.
uint64_t pack_model_weights(ModelWeights* weights,
                            std::optional<uint64_t> available_memory = std::nullopt);

}  // namespace specula

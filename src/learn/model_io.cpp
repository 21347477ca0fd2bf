#include "learn/model_io.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/f16.h"
#include "model/model_config.h"

namespace specula {
namespace {

constexpr std::string_view kArch = "llama";

std::string arch_key(std::string_view suffix) {
  return str_cat(kArch, ".", suffix);
}

}  // namespace

void add_tensors_to_gguf(GgufWriter& writer, const ParameterLayout& layout,
                         std::span<const float> values, std::string_view prefix) {
  for (const ParameterTensor& tensor : layout.tensors()) {
    writer.add_tensor_f32(str_cat(prefix, tensor.name), tensor.dims,
                          values.subspan(tensor.offset, tensor.size));
  }
}

void add_model_to_gguf(GgufWriter& writer, const ParameterLayout& layout,
                       std::span<const float> params, DType type,
                       const GgufReader* tokenizer_source, std::string_view name) {
  if (type != DType::kF32 && type != DType::kF16) {
    fail("train: model type ", dtype_name(type), " is not supported; use f32 or f16");
  }
  const TransformerShape& s = layout.shape();
  writer.set_string("general.architecture", kArch);
  writer.set_string("general.name", name);
  writer.set_uint32("general.file_type", type == DType::kF32 ? 0u : 1u);
  writer.set_uint32(arch_key("vocab_size"), static_cast<uint32_t>(s.n_vocab));
  writer.set_uint32(arch_key("context_length"), static_cast<uint32_t>(s.n_ctx));
  writer.set_uint32(arch_key("embedding_length"), static_cast<uint32_t>(s.n_embd));
  writer.set_uint32(arch_key("block_count"), static_cast<uint32_t>(s.n_layer));
  writer.set_uint32(arch_key("feed_forward_length"), static_cast<uint32_t>(s.n_ff));
  writer.set_uint32(arch_key("attention.head_count"), static_cast<uint32_t>(s.n_head));
  writer.set_uint32(arch_key("attention.head_count_kv"), static_cast<uint32_t>(s.n_head_kv));
  writer.set_float32(arch_key("attention.layer_norm_rms_epsilon"), s.rms_eps);
  writer.set_float32(arch_key("rope.freq_base"), s.rope_freq_base);
  writer.set_uint32(arch_key("rope.dimension_count"), static_cast<uint32_t>(s.head_dim()));
  if (tokenizer_source != nullptr) {
    const GgufValue* tokens = tokenizer_source->find("tokenizer.ggml.tokens");
    if (tokens == nullptr || tokens->type != GgufType::kArray) {
      fail("train: ", tokenizer_source->path(),
           " has no tokenizer.ggml.tokens; the vocabulary must come from a file written by "
           "`specula tokenizer train` (BpeTrainer)");
    }
    if (tokens->array_size != static_cast<uint64_t>(s.n_vocab)) {
      fail("train: ", tokenizer_source->path(), " has ", tokens->array_size,
           " tokens but the model's vocabulary is ", s.n_vocab);
    }
    for (const GgufKv& kv : tokenizer_source->metadata()) {
      if (std::string_view(kv.key).starts_with("tokenizer.")) writer.set_value(kv.key, kv.value);
    }
  }
  for (const ParameterTensor& tensor : layout.tensors()) {
    const std::span<const float> values = params.subspan(tensor.offset, tensor.size);
    if (type == DType::kF16 && tensor.dims.size() == 2) {
      writer.add_tensor_f16(tensor.name, tensor.dims, values);
    } else {
      writer.add_tensor_f32(tensor.name, tensor.dims, values);
    }
  }
}

TransformerShape read_transformer_shape(const GgufReader& file) {
  const ModelConfig config = read_model_config(file);
  if (config.architecture != kArch) {
    fail("train: ", file.path(), " is a ", config.architecture,
         " model; the trainer handles llama models");
  }
  TransformerShape shape;
  shape.n_vocab = config.n_vocab;
  shape.n_embd = config.n_embd;
  shape.n_layer = config.n_layer;
  shape.n_head = config.n_head;
  shape.n_head_kv = config.n_head_kv;
  shape.n_ff = config.n_ff;
  shape.n_ctx = config.n_ctx_train;
  shape.rms_eps = config.rms_eps;
  shape.rope_freq_base = config.rope_freq_base;
  shape.tied_output = config.tied_output;
  if (config.head_dim * config.n_head != config.n_embd || config.rope_freq_scale != 1.0f ||
      config.qkv_bias) {
    fail("train: ", file.path(),
         " uses a head width, RoPE scaling or biases the trainer does not handle");
  }
  return resolve_transformer_shape(shape);
}

void read_tensors_from_gguf(const GgufReader& file, const ParameterLayout& layout,
                            std::string_view prefix, std::span<float> out) {
  if (out.size() != layout.total()) fail("train: internal: parameter buffer size mismatch");
  for (const ParameterTensor& tensor : layout.tensors()) {
    const std::string name = str_cat(prefix, tensor.name);
    const GgufTensorInfo* info = file.find_tensor(name);
    if (info == nullptr) fail(file.path(), ": tensor ", name, " is missing");
    if (info->dims != tensor.dims) {
      fail(file.path(), ": tensor ", name, " has a different shape than the model needs");
    }
    float* values = out.data() + tensor.offset;
    if (info->type == DType::kF32) {
      std::memcpy(values, info->data, tensor.size * sizeof(float));
    } else if (info->type == DType::kF16 || info->type == DType::kBF16) {
      const auto* halves = reinterpret_cast<const uint16_t*>(info->data);
      for (size_t i = 0; i < tensor.size; ++i) {
        values[i] = info->type == DType::kF16 ? f16_to_f32(halves[i]) : bf16_to_f32(halves[i]);
      }
    } else {
      fail(file.path(), ": tensor ", name, " has type ", dtype_name(info->type),
           "; the trainer reads F32, F16 or BF16");
    }
  }
}

}  // namespace specula

#include "model/model_weights.h"

#include <string>

#include "core/error.h"

namespace specula {
namespace {

std::string shape_string(const std::vector<uint64_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

class Binder {
 public:
  Binder(const GgufReader& file) : file_(file) {}

  // A tensor that must exist with exactly `dims` (ggml order).
  const GgufTensorInfo& require(const std::string& name, std::vector<uint64_t> dims) {
    const GgufTensorInfo* info = file_.find_tensor(name);
    if (info == nullptr) {
      fail(file_.path(), ": tensor ", name, " is missing (expected shape ", shape_string(dims),
           "); the file is incomplete or not a llama-family model");
    }
    if (info->dims != dims) {
      fail(file_.path(), ": tensor ", name, " has wrong shape ", shape_string(info->dims),
           ", expected ", shape_string(dims), " (ggml order) from the model's hyperparameters");
    }
    return *info;
  }

  WeightMatrix matrix(const std::string& name, int64_t n_in, int64_t n_out, bool counted = true) {
    const GgufTensorInfo& info =
        require(name, {static_cast<uint64_t>(n_in), static_cast<uint64_t>(n_out)});
    if (!matmul_supports(info.type)) {
      fail(file_.path(), ": tensor ", name, " has type ", dtype_name(info.type), ": type ",
           dtype_name(info.type), " not supported yet (supported: F32, F16, BF16)");
    }
    if (!dtype_row_bytes(info.type, static_cast<uint64_t>(n_in))) {
      fail(file_.path(), ": tensor ", name, " has rows of ", n_in,
           " values, not a whole number of ", dtype_name(info.type), " blocks");
    }
    if (counted) bytes_ += info.n_bytes;
    return make_weight_matrix(info.data, info.type, n_in, n_out);
  }

  // Norm weights and biases: F32 vectors used in place.
  const float* vector(const std::string& name, int64_t n) {
    const GgufTensorInfo& info = require(name, {static_cast<uint64_t>(n)});
    if (info.type != DType::kF32) {
      fail(file_.path(), ": tensor ", name, " has type ", dtype_name(info.type),
           "; norm weights and biases must be F32");
    }
    if (reinterpret_cast<uintptr_t>(info.data) % alignof(float) != 0) {
      fail(file_.path(), ": tensor ", name, " data is not 4-byte aligned");
    }
    bytes_ += info.n_bytes;
    return reinterpret_cast<const float*>(info.data);
  }

  uint64_t bytes() const { return bytes_; }

 private:
  const GgufReader& file_;
  uint64_t bytes_ = 0;
};

}  // namespace

ModelWeights bind_model_weights(const GgufReader& file, const ModelConfig& config) {
  Binder bind(file);
  ModelWeights weights;
  const int64_t n_embd = config.n_embd;
  const int64_t q_dim = static_cast<int64_t>(config.n_head) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.n_head_kv) * config.head_dim;
  const int64_t n_ff = config.n_ff;

  // Only the looked-up rows of the embeddings are read, unless tied.
  weights.token_embd = bind.matrix("token_embd.weight", n_embd, config.n_vocab, config.tied_output);
  weights.layers.resize(static_cast<size_t>(config.n_layer));
  for (int32_t l = 0; l < config.n_layer; ++l) {
    const std::string prefix = "blk." + std::to_string(l) + ".";
    LayerWeights& layer = weights.layers[static_cast<size_t>(l)];
    layer.attn_norm = bind.vector(prefix + "attn_norm.weight", n_embd);
    layer.attn_q = bind.matrix(prefix + "attn_q.weight", n_embd, q_dim);
    layer.attn_k = bind.matrix(prefix + "attn_k.weight", n_embd, kv_dim);
    layer.attn_v = bind.matrix(prefix + "attn_v.weight", n_embd, kv_dim);
    if (config.qkv_bias) {
      layer.attn_q_bias = bind.vector(prefix + "attn_q.bias", q_dim);
      layer.attn_k_bias = bind.vector(prefix + "attn_k.bias", kv_dim);
      layer.attn_v_bias = bind.vector(prefix + "attn_v.bias", kv_dim);
    }
    layer.attn_output = bind.matrix(prefix + "attn_output.weight", q_dim, n_embd);
    layer.ffn_norm = bind.vector(prefix + "ffn_norm.weight", n_embd);
    layer.ffn_gate = bind.matrix(prefix + "ffn_gate.weight", n_embd, n_ff);
    layer.ffn_up = bind.matrix(prefix + "ffn_up.weight", n_embd, n_ff);
    layer.ffn_down = bind.matrix(prefix + "ffn_down.weight", n_ff, n_embd);
  }
  weights.output_norm = bind.vector("output_norm.weight", n_embd);
  weights.output = config.tied_output ? weights.token_embd
                                      : bind.matrix("output.weight", n_embd, config.n_vocab);
  weights.bytes_per_forward = bind.bytes();
  return weights;
}

}  // namespace specula

// The trainable Llama-family model: its shape, where each parameter tensor
// lives in one flat buffer, random initialisation, and the forward pass
// over a batch (activations kept) with its backward pass.
//
// All parameters sit in one contiguous buffer (and so do their gradients
// and Adam moments), in the order of ParameterLayout::tensors; each tensor
// is row-major with GGUF's shape, [n_out rows of n_in]. That makes the
// optimizer, the gradient norm and checkpoints loops over one array.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "learn/gemm.h"
#include "learn/layers.h"

namespace specula {

struct TransformerShape {
  int32_t n_vocab = 0;
  int32_t n_embd = 256;
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_head_kv = 0;  // 0: n_head (resolve)
  int32_t n_ff = 0;       // 0: about 8/3 n_embd, rounded up to a multiple of 32 (resolve)
  int32_t n_ctx = 512;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  bool tied_output = false;  // logits use token_embd: no separate output matrix

  int32_t head_dim() const { return n_embd / n_head; }
  int32_t q_dim() const { return n_embd; }
  int32_t kv_dim() const { return head_dim() * n_head_kv; }
};

// Fills n_ff (and n_head_kv when 0) and checks every field; throws Error
// naming the flag (--embd, --heads, ...) that is out of range.
TransformerShape resolve_transformer_shape(TransformerShape shape);

struct ParameterTensor {
  std::string name;            // GGUF tensor name, e.g. "blk.0.attn_q.weight"
  std::vector<uint64_t> dims;  // GGUF order: dims[0] = n_in (fastest)
  size_t offset = 0;           // in the flat buffer, in elements
  size_t size = 0;             // elements
  bool weight_decay = false;   // matrices decay; embeddings and norms do not
};

struct LayerOffsets {
  size_t attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
};

class ParameterLayout {
 public:
  explicit ParameterLayout(const TransformerShape& resolved);

  const TransformerShape& shape() const { return shape_; }
  const std::vector<ParameterTensor>& tensors() const { return tensors_; }
  size_t total() const { return total_; }

  size_t token_embd() const { return token_embd_; }
  const LayerOffsets& layer(int32_t l) const { return layers_[static_cast<size_t>(l)]; }
  size_t output_norm() const { return output_norm_; }
  size_t output() const { return output_; }  // token_embd() when tied

 private:
  size_t add(const std::string& name, std::vector<uint64_t> dims, bool weight_decay);
  TransformerShape shape_;
  std::vector<ParameterTensor> tensors_;
  std::vector<LayerOffsets> layers_;
  size_t total_ = 0;
  size_t token_embd_ = 0, output_norm_ = 0, output_ = 0;
};

// GPT-2's initialisation: matrices and embeddings N(0, 0.02^2), the
// projections back into the residual stream (attn_output, ffn_down) shrunk
// by 1/sqrt(2 n_layer), norms 1. Each tensor draws from its own stream
// seeded by (seed, name), so the values do not depend on the platform.
void init_parameters(const ParameterLayout& layout, uint64_t seed, std::span<float> params);

// Forward and backward over B sequences of T tokens (T <= n_ctx), each
// starting at position 0. T is float (training) or double (gradient checks).
template <typename T>
class Transformer {
 public:
  explicit Transformer(const ParameterLayout& layout);
  ~Transformer();

  // Logits [B*T, n_vocab] for tokens [B*T] (row b*T + t is position t of
  // sequence b). Keeps the activations for backward. The returned span
  // stays valid until the next forward; backward may overwrite it.
  std::span<T> forward(const T* params, std::span<const int32_t> tokens, int64_t batch,
                       int64_t seq_len, ThreadPool* pool);

  // Adds d(loss)/d(params) to `grads` given d(loss)/d(logits) of the last
  // forward (which may be the span forward returned, overwritten in place).
  void backward(const T* params, const T* d_logits, T* grads, ThreadPool* pool);

  // The kernel of the linear layers' products (forward, both backward
  // products, the output layer): kF32 or kBf16, resolved (see gemm_dnnl.h).
  // Attention and the small products stay f32. Ignored for double.
  void set_gemm_backend(GemmBackend resolved) { gemm_backend_ = resolved; }
  GemmBackend gemm_backend() const { return gemm_backend_; }

 private:
  struct Activations;
  const ParameterLayout& layout_;
  std::unique_ptr<Activations> act_;
  GemmBackend gemm_backend_ = GemmBackend::kF32;
};

}  // namespace specula

#include "learn/transformer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "learn/random.h"

namespace specula {
namespace {

void check_range(const char* field, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) {
    fail("train: ", field, " ", value, " is outside [", low, ", ", high, "]");
  }
}

}  // namespace

TransformerShape resolve_transformer_shape(TransformerShape s) {
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;
  if (s.n_ff == 0) s.n_ff = (s.n_embd * 8 / 3 + 31) / 32 * 32;
  check_range("vocabulary size", s.n_vocab, 2, 1 << 22);
  check_range("TransformerShape::n_embd", s.n_embd, 2, 1 << 16);
  check_range("TransformerShape::n_layer", s.n_layer, 1, 1024);
  check_range("TransformerShape::n_head", s.n_head, 1, s.n_embd);
  check_range("TransformerShape::n_head_kv", s.n_head_kv, 1, s.n_head);
  check_range("TransformerShape::n_ff", s.n_ff, 1, 1 << 18);
  check_range("TransformerShape::n_ctx", s.n_ctx, 1, 1 << 20);
  if (s.n_embd % s.n_head != 0 || (s.n_embd / s.n_head) % 2 != 0) {
    fail("train: TransformerShape::n_embd ", s.n_embd, " must be TransformerShape::n_head ",
         s.n_head, " times an even head width (RoPE rotates pairs)");
  }
  if (s.n_head % s.n_head_kv != 0) {
    fail("train: TransformerShape::n_head ", s.n_head,
         " must be a multiple of TransformerShape::n_head_kv ", s.n_head_kv);
  }
  if (!(s.rms_eps > 0.0f) || !(s.rope_freq_base > 0.0f)) {
    fail("train: rms epsilon and RoPE base must be positive");
  }
  return s;
}

ParameterLayout::ParameterLayout(const TransformerShape& resolved) : shape_(resolved) {
  const auto d = static_cast<uint64_t>(shape_.n_embd);
  const auto q = static_cast<uint64_t>(shape_.q_dim());
  const auto kv = static_cast<uint64_t>(shape_.kv_dim());
  const auto ff = static_cast<uint64_t>(shape_.n_ff);
  const auto vocab = static_cast<uint64_t>(shape_.n_vocab);
  token_embd_ = add("token_embd.weight", {d, vocab}, false);
  for (int32_t l = 0; l < shape_.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.attn_norm = add(p + "attn_norm.weight", {d}, false);
    o.wq = add(p + "attn_q.weight", {d, q}, true);
    o.wk = add(p + "attn_k.weight", {d, kv}, true);
    o.wv = add(p + "attn_v.weight", {d, kv}, true);
    o.wo = add(p + "attn_output.weight", {q, d}, true);
    o.ffn_norm = add(p + "ffn_norm.weight", {d}, false);
    o.w_gate = add(p + "ffn_gate.weight", {d, ff}, true);
    o.w_up = add(p + "ffn_up.weight", {d, ff}, true);
    o.w_down = add(p + "ffn_down.weight", {ff, d}, true);
    layers_.push_back(o);
  }
  output_norm_ = add("output_norm.weight", {d}, false);
  output_ = shape_.tied_output ? token_embd_ : add("output.weight", {d, vocab}, true);
}

size_t ParameterLayout::add(const std::string& name, std::vector<uint64_t> dims,
                            bool weight_decay) {
  size_t size = 1;
  for (const uint64_t dim : dims) size *= static_cast<size_t>(dim);
  tensors_.push_back(ParameterTensor{name, std::move(dims), total_, size, weight_decay});
  total_ += size;
  return total_ - size;
}

void init_parameters(const ParameterLayout& layout, uint64_t seed, std::span<float> params) {
  constexpr double kStd = 0.02;
  const double residual_std = kStd / std::sqrt(2.0 * layout.shape().n_layer);
  for (const ParameterTensor& tensor : layout.tensors()) {
    float* values = params.data() + tensor.offset;
    if (tensor.dims.size() == 1) {  // norms
      std::fill_n(values, tensor.size, 1.0f);
      continue;
    }
    const bool residual =
        tensor.name.ends_with("attn_output.weight") || tensor.name.ends_with("ffn_down.weight");
    const double std = residual ? residual_std : kStd;
    SplitMix64 rng(stream_seed(seed, tensor.name));
    for (size_t i = 0; i < tensor.size; ++i) values[i] = static_cast<float>(rng.normal() * std);
  }
}

template <typename T>
struct Transformer<T>::Activations {
  struct Layer {
    std::vector<T> x_in;      // N x D: residual stream entering the layer
    std::vector<T> inv_rms1;  // N
    std::vector<T> xn1;       // N x D
    std::vector<T> q;         // N x q_dim, after RoPE
    std::vector<T> k;         // N x kv_dim, after RoPE
    std::vector<T> v;         // N x kv_dim
    std::vector<T> probs;     // B x H x T x T
    std::vector<T> att;       // N x q_dim: attention output before attn_output
    std::vector<T> x_mid;     // N x D: stream after attention
    std::vector<T> inv_rms2;  // N
    std::vector<T> xn2;       // N x D
    std::vector<T> gate;      // N x F, before the activation
    std::vector<T> up;        // N x F
    std::vector<T> h;         // N x F: silu(gate) * up
  };
  int64_t batch = 0;
  int64_t seq_len = 0;
  std::vector<int32_t> tokens;
  std::vector<Layer> layers;
  std::vector<T> x_final, inv_rms_final, xn_final;  // N x D, N, N x D
  std::vector<T> logits;                            // N x V
  std::vector<T> projected;                         // N x D scratch
  // Backward scratch.
  std::vector<T> d_x, d_xn, d_att, d_q, d_k, d_v, d_h, d_gate, d_up;
  std::unique_ptr<RopeTable<T>> rope;
};

template <typename T>
Transformer<T>::Transformer(const ParameterLayout& layout)
    : layout_(layout), act_(std::make_unique<Activations>()) {}

template <typename T>
Transformer<T>::~Transformer() = default;

namespace {
template <typename T>
void ensure(std::vector<T>& buffer, int64_t size) {
  buffer.resize(static_cast<size_t>(size));
}

// The linear layers' products run on the chosen backend (gemm.h); the
// scope covers only them, so attention's products stay f32.
template <typename T>
void linear_forward_on(GemmBackend backend, const T* x, const T* w, int64_t rows, int64_t n_in,
                       int64_t n_out, T* y, ThreadPool* pool) {
  const ScopedGemmBackend scope(backend);
  linear_forward(x, w, rows, n_in, n_out, y, pool);
}

template <typename T>
void linear_backward_on(GemmBackend backend, const T* x, const T* w, const T* d_y, int64_t rows,
                        int64_t n_in, int64_t n_out, T* d_x, bool accumulate_d_x, T* d_w,
                        ThreadPool* pool) {
  const ScopedGemmBackend scope(backend);
  linear_backward(x, w, d_y, rows, n_in, n_out, d_x, accumulate_d_x, d_w, pool);
}
}  // namespace

template <typename T>
std::span<T> Transformer<T>::forward(const T* params, std::span<const int32_t> tokens,
                                     int64_t batch, int64_t seq_len, ThreadPool* pool) {
  const TransformerShape& s = layout_.shape();
  Activations& a = *act_;
  const int64_t n = batch * seq_len;
  if (static_cast<int64_t>(tokens.size()) != n || seq_len < 1 || seq_len > s.n_ctx) {
    fail("train: a batch of ", tokens.size(), " tokens is not ", batch, " x ", seq_len,
         " with 1 <= seq_len <= n_ctx ", s.n_ctx);
  }
  for (const int32_t token : tokens) {
    if (token < 0 || token >= s.n_vocab) {
      fail("train: token id ", token, " is outside the vocabulary [0, ", s.n_vocab, ")");
    }
  }
  const int64_t d = s.n_embd, ff = s.n_ff, v = s.n_vocab;
  const int64_t q_dim = s.q_dim(), kv_dim = s.kv_dim();
  if (a.rope == nullptr || a.seq_len != seq_len) {
    a.rope = std::make_unique<RopeTable<T>>(seq_len, s.head_dim(), s.rope_freq_base, 1.0f);
  }
  a.batch = batch;
  a.seq_len = seq_len;
  a.tokens.assign(tokens.begin(), tokens.end());
  a.layers.resize(static_cast<size_t>(s.n_layer));
  const AttentionDims dims{batch, seq_len, s.n_head, s.n_head_kv, s.head_dim()};
  ensure(a.projected, n * d);

  for (int32_t l = 0; l < s.n_layer; ++l) {
    typename Activations::Layer& L = a.layers[static_cast<size_t>(l)];
    const LayerOffsets& o = layout_.layer(l);
    ensure(L.x_in, n * d);
    ensure(L.inv_rms1, n);
    ensure(L.xn1, n * d);
    ensure(L.q, n * q_dim);
    ensure(L.k, n * kv_dim);
    ensure(L.v, n * kv_dim);
    ensure(L.probs, batch * s.n_head * seq_len * seq_len);
    ensure(L.att, n * q_dim);
    ensure(L.x_mid, n * d);
    ensure(L.inv_rms2, n);
    ensure(L.xn2, n * d);
    ensure(L.gate, n * ff);
    ensure(L.up, n * ff);
    ensure(L.h, n * ff);
    if (l == 0) embedding_forward(params + layout_.token_embd(), d, tokens, L.x_in.data(), pool);

    rms_norm_forward(L.x_in.data(), params + o.attn_norm, n, d, s.rms_eps, L.xn1.data(),
                     L.inv_rms1.data(), pool);
    linear_forward_on(gemm_backend_, L.xn1.data(), params + o.wq, n, d, q_dim, L.q.data(), pool);
    linear_forward_on(gemm_backend_, L.xn1.data(), params + o.wk, n, d, kv_dim, L.k.data(), pool);
    linear_forward_on(gemm_backend_, L.xn1.data(), params + o.wv, n, d, kv_dim, L.v.data(), pool);
    rope_forward(L.q.data(), n, seq_len, s.n_head, *a.rope, pool);
    rope_forward(L.k.data(), n, seq_len, s.n_head_kv, *a.rope, pool);
    attention_forward(dims, L.q.data(), L.k.data(), L.v.data(), L.probs.data(), L.att.data(), pool);
    linear_forward_on(gemm_backend_, L.att.data(), params + o.wo, n, q_dim, d, a.projected.data(),
                      pool);
    for (int64_t i = 0; i < n * d; ++i) L.x_mid[i] = L.x_in[i] + a.projected[i];

    rms_norm_forward(L.x_mid.data(), params + o.ffn_norm, n, d, s.rms_eps, L.xn2.data(),
                     L.inv_rms2.data(), pool);
    linear_forward_on(gemm_backend_, L.xn2.data(), params + o.w_gate, n, d, ff, L.gate.data(),
                      pool);
    linear_forward_on(gemm_backend_, L.xn2.data(), params + o.w_up, n, d, ff, L.up.data(), pool);
    swiglu_forward(L.gate.data(), L.up.data(), n * ff, L.h.data(), pool);
    linear_forward_on(gemm_backend_, L.h.data(), params + o.w_down, n, ff, d, a.projected.data(),
                      pool);
    std::vector<T>& x_out =
        l + 1 < s.n_layer ? a.layers[static_cast<size_t>(l + 1)].x_in : a.x_final;
    ensure(x_out, n * d);
    for (int64_t i = 0; i < n * d; ++i) x_out[i] = L.x_mid[i] + a.projected[i];
  }
  ensure(a.inv_rms_final, n);
  ensure(a.xn_final, n * d);
  ensure(a.logits, n * v);
  rms_norm_forward(a.x_final.data(), params + layout_.output_norm(), n, d, s.rms_eps,
                   a.xn_final.data(), a.inv_rms_final.data(), pool);
  linear_forward_on(gemm_backend_, a.xn_final.data(), params + layout_.output(), n, d, v,
                    a.logits.data(), pool);
  return std::span<T>(a.logits.data(), a.logits.size());
}

template <typename T>
void Transformer<T>::backward(const T* params, const T* d_logits, T* grads, ThreadPool* pool) {
  const TransformerShape& s = layout_.shape();
  Activations& a = *act_;
  const int64_t n = a.batch * a.seq_len;
  const int64_t d = s.n_embd, ff = s.n_ff, v = s.n_vocab;
  const int64_t q_dim = s.q_dim(), kv_dim = s.kv_dim();
  const AttentionDims dims{a.batch, a.seq_len, s.n_head, s.n_head_kv, s.head_dim()};
  ensure(a.d_x, n * d);
  ensure(a.d_xn, n * d);
  ensure(a.d_att, n * q_dim);
  ensure(a.d_q, n * q_dim);
  ensure(a.d_k, n * kv_dim);
  ensure(a.d_v, n * kv_dim);
  ensure(a.d_h, n * ff);
  ensure(a.d_gate, n * ff);
  ensure(a.d_up, n * ff);

  linear_backward_on(gemm_backend_, a.xn_final.data(), params + layout_.output(), d_logits, n, d, v,
                     a.d_xn.data(), false, grads + layout_.output(), pool);
  std::fill(a.d_x.begin(), a.d_x.end(), T(0));
  rms_norm_backward_accumulate(a.x_final.data(), params + layout_.output_norm(),
                               a.inv_rms_final.data(), a.d_xn.data(), n, d, a.d_x.data(),
                               grads + layout_.output_norm(), pool);
  // d_x holds d(loss)/d(stream) leaving the current layer; each block adds
  // its branch's contribution to it on the way down.
  for (int32_t l = s.n_layer - 1; l >= 0; --l) {
    const typename Activations::Layer& L = a.layers[static_cast<size_t>(l)];
    const LayerOffsets& o = layout_.layer(l);
    linear_backward_on(gemm_backend_, L.h.data(), params + o.w_down, a.d_x.data(), n, ff, d,
                       a.d_h.data(), false, grads + o.w_down, pool);
    swiglu_backward(L.gate.data(), L.up.data(), a.d_h.data(), n * ff, a.d_gate.data(),
                    a.d_up.data(), pool);
    linear_backward_on(gemm_backend_, L.xn2.data(), params + o.w_gate, a.d_gate.data(), n, d, ff,
                       a.d_xn.data(), false, grads + o.w_gate, pool);
    linear_backward_on(gemm_backend_, L.xn2.data(), params + o.w_up, a.d_up.data(), n, d, ff,
                       a.d_xn.data(), true, grads + o.w_up, pool);
    rms_norm_backward_accumulate(L.x_mid.data(), params + o.ffn_norm, L.inv_rms2.data(),
                                 a.d_xn.data(), n, d, a.d_x.data(), grads + o.ffn_norm, pool);

    linear_backward_on(gemm_backend_, L.att.data(), params + o.wo, a.d_x.data(), n, q_dim, d,
                       a.d_att.data(), false, grads + o.wo, pool);
    attention_backward(dims, L.q.data(), L.k.data(), L.v.data(), L.probs.data(), a.d_att.data(),
                       a.d_q.data(), a.d_k.data(), a.d_v.data(), pool);
    rope_backward(a.d_q.data(), n, a.seq_len, s.n_head, *a.rope, pool);
    rope_backward(a.d_k.data(), n, a.seq_len, s.n_head_kv, *a.rope, pool);
    linear_backward_on(gemm_backend_, L.xn1.data(), params + o.wq, a.d_q.data(), n, d, q_dim,
                       a.d_xn.data(), false, grads + o.wq, pool);
    linear_backward_on(gemm_backend_, L.xn1.data(), params + o.wk, a.d_k.data(), n, d, kv_dim,
                       a.d_xn.data(), true, grads + o.wk, pool);
    linear_backward_on(gemm_backend_, L.xn1.data(), params + o.wv, a.d_v.data(), n, d, kv_dim,
                       a.d_xn.data(), true, grads + o.wv, pool);
    rms_norm_backward_accumulate(L.x_in.data(), params + o.attn_norm, L.inv_rms1.data(),
                                 a.d_xn.data(), n, d, a.d_x.data(), grads + o.attn_norm, pool);
  }
  embedding_backward(a.d_x.data(), d, a.tokens, grads + layout_.token_embd(), pool);
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace specula

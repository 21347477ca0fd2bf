// Forward and backward of each layer kind of the Llama family, on plain
// row-major arrays, templated on the scalar type: float for training,
// double for the finite-difference gradient checks. Instantiated for float
// and double in layers.cpp.
//
// Conventions: a batch is B sequences of T positions, N = B*T rows, row
// b*T + t holding position t of sequence b. Backward functions take the
// gradient of the loss with respect to a layer's output (`d_out`); they
// overwrite input gradients unless the name says `accumulate`, and always
// add into parameter gradients (which the caller zeroes once per step).
// Every reduction runs in a fixed order that does not depend on the pool,
// so results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"

namespace specula {

// Embedding: out[i] = table[tokens[i]] (rows of `dim`).
template <typename T>
void embedding_forward(const T* table, int64_t dim, std::span<const int32_t> tokens, T* out,
                       ThreadPool* pool);
// d_table[tokens[i]] += d_out[i], rows added in ascending i.
template <typename T>
void embedding_backward(const T* d_out, int64_t dim, std::span<const int32_t> tokens, T* d_table,
                        ThreadPool* pool);

// RMSNorm of `rows` rows of `dim`: out = x * r * weight, r = 1/sqrt(mean(x^2) + eps).
// inv_rms[row] = r is kept for the backward pass.
template <typename T>
void rms_norm_forward(const T* x, const T* weight, int64_t rows, int64_t dim, float eps, T* out,
                      T* inv_rms, ThreadPool* pool);
// d_x += dx (accumulate: the residual stream's gradient), d_weight += dw.
template <typename T>
void rms_norm_backward_accumulate(const T* x, const T* weight, const T* inv_rms, const T* d_out,
                                  int64_t rows, int64_t dim, T* d_x, T* d_weight, ThreadPool* pool);

// Linear map y = x W^T with W stored [n_out rows of n_in] (GGUF's layout).
template <typename T>
void linear_forward(const T* x, const T* w, int64_t rows, int64_t n_in, int64_t n_out, T* y,
                    ThreadPool* pool);
// d_x (= or +=, by accumulate_d_x) d_y W; d_w += d_y^T x.
template <typename T>
void linear_backward(const T* x, const T* w, const T* d_y, int64_t rows, int64_t n_in,
                     int64_t n_out, T* d_x, bool accumulate_d_x, T* d_w, ThreadPool* pool);

// cos/sin of RoPE's angles for positions [0, n_positions), computed exactly
// as kernels/ops.h's rope does (angles in double, then rounded to T), so
// the float path matches inference.
template <typename T>
struct RopeTable {
  int64_t head_dim = 0;
  std::vector<T> cos;  // [position][head_dim / 2]
  std::vector<T> sin;
  RopeTable(int64_t n_positions, int64_t head_dim, float freq_base, float freq_scale);
};
// GGUF llama's "normal" RoPE (adjacent pairs) in place, row at position
// row % seq_len, n_heads heads of head_dim per row.
template <typename T>
void rope_forward(T* x, int64_t rows, int64_t seq_len, int64_t n_heads, const RopeTable<T>& table,
                  ThreadPool* pool);
// The transpose (inverse rotation), applied to a gradient in place.
template <typename T>
void rope_backward(T* d_x, int64_t rows, int64_t seq_len, int64_t n_heads,
                   const RopeTable<T>& table, ThreadPool* pool);

struct AttentionDims {
  int64_t batch = 0;
  int64_t seq_len = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // query head h reads key/value head h / (n_head / n_head_kv)
  int64_t head_dim = 0;
  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};
// Causal grouped-query attention with scale 1/sqrt(head_dim).
// q: [N, q_dim], k, v: [N, kv_dim]; out: [N, q_dim];
// probs: [batch][n_head][seq_len][seq_len] softmax rows kept for backward
// (zero above the diagonal).
template <typename T>
void attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, T* probs,
                       T* out, ThreadPool* pool);
// Overwrites d_q, d_k, d_v.
template <typename T>
void attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v,
                        const T* probs, const T* d_out, T* d_q, T* d_k, T* d_v, ThreadPool* pool);

// SwiGLU: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)); n values.
template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out, ThreadPool* pool);
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* d_out, int64_t n, T* d_gate, T* d_up,
                     ThreadPool* pool);

// Mean cross-entropy of `rows` rows of logits against targets, in nats.
// When d_logits is not null it receives d(mean loss)/d(logits); it may be
// the logits buffer itself (overwritten row by row).
template <typename T>
double cross_entropy(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                     T* d_logits, ThreadPool* pool);

}  // namespace specula

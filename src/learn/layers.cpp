#include "learn/layers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "learn/gemm.h"

namespace specula {
namespace {

// Calls body(begin, end) over [0, n) in chunks of `chunk`, on the pool when
// there is one. Chunks are fixed by n and chunk only, never by the pool.
template <typename Body>
void for_chunks(ThreadPool* pool, int64_t n, int64_t chunk, const Body& body) {
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  const auto run = [&](int64_t c) { body(c * chunk, std::min(n, (c + 1) * chunk)); };
  if (pool == nullptr || n_chunks <= 1) {
    for (int64_t c = 0; c < n_chunks; ++c) run(c);
  } else {
    pool->parallel_for(n_chunks, run);
  }
}

template <typename Body>
void for_each(ThreadPool* pool, int64_t n, const Body& body) {
  if (pool == nullptr) {
    for (int64_t i = 0; i < n; ++i) body(i);
  } else {
    pool->parallel_for(n, body);
  }
}

constexpr int64_t kRowChunk = 16;
constexpr int64_t kColumnChunk = 64;
constexpr int64_t kElementChunk = 1 << 14;

}  // namespace

template <typename T>
void embedding_forward(const T* table, int64_t dim, std::span<const int32_t> tokens, T* out,
                       ThreadPool* pool) {
  for_chunks(pool, static_cast<int64_t>(tokens.size()), kRowChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::copy_n(table + static_cast<int64_t>(tokens[static_cast<size_t>(i)]) * dim, dim,
                  out + i * dim);
    }
  });
}

template <typename T>
void embedding_backward(const T* d_out, int64_t dim, std::span<const int32_t> tokens, T* d_table,
                        ThreadPool* pool) {
  for_chunks(pool, dim, kColumnChunk, [&](int64_t b, int64_t e) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      T* row = d_table + static_cast<int64_t>(tokens[i]) * dim;
      const T* grad = d_out + static_cast<int64_t>(i) * dim;
      for (int64_t j = b; j < e; ++j) row[j] += grad[j];
    }
  });
}

template <typename T>
void rms_norm_forward(const T* x, const T* weight, int64_t rows, int64_t dim, float eps, T* out,
                      T* inv_rms, ThreadPool* pool) {
  for_chunks(pool, rows, kRowChunk, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const T* xr = x + row * dim;
      double sum_squares = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum_squares += static_cast<double>(xr[i]) * xr[i];
      // As kernels/ops.h's rms_norm: the mean in T, then eps, then the root.
      const T r = T(1) / std::sqrt(static_cast<T>(sum_squares / static_cast<double>(dim)) +
                                   static_cast<T>(eps));
      inv_rms[row] = r;
      T* o = out + row * dim;
      for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * r * weight[i];
    }
  });
}

template <typename T>
void rms_norm_backward_accumulate(const T* x, const T* weight, const T* inv_rms, const T* d_out,
                                  int64_t rows, int64_t dim, T* d_x, T* d_weight,
                                  ThreadPool* pool) {
  // dx_i = r w_i dy_i - x_i r^3 / dim * sum_j dy_j w_j x_j
  for_chunks(pool, rows, kRowChunk, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const T* xr = x + row * dim;
      const T* dy = d_out + row * dim;
      double dot = 0.0;
      for (int64_t i = 0; i < dim; ++i) dot += static_cast<double>(dy[i]) * weight[i] * xr[i];
      const T r = inv_rms[row];
      const T coefficient = static_cast<T>(dot / static_cast<double>(dim)) * r * r * r;
      T* dx = d_x + row * dim;
      for (int64_t i = 0; i < dim; ++i) dx[i] += r * weight[i] * dy[i] - xr[i] * coefficient;
    }
  });
  // dw_i = sum over rows of dy_i x_i r, rows in ascending order.
  for_chunks(pool, dim, kColumnChunk, [&](int64_t b, int64_t e) {
    for (int64_t row = 0; row < rows; ++row) {
      const T* xr = x + row * dim;
      const T* dy = d_out + row * dim;
      const T r = inv_rms[row];
      for (int64_t i = b; i < e; ++i) d_weight[i] += dy[i] * xr[i] * r;
    }
  });
}

template <typename T>
void linear_forward(const T* x, const T* w, int64_t rows, int64_t n_in, int64_t n_out, T* y,
                    ThreadPool* pool) {
  gemm(GemmShape{Transpose::kNo, Transpose::kYes, rows, n_out, n_in}, x, n_in, w, n_in, y, n_out,
       false, pool);
}

template <typename T>
void linear_backward(const T* x, const T* w, const T* d_y, int64_t rows, int64_t n_in,
                     int64_t n_out, T* d_x, bool accumulate_d_x, T* d_w, ThreadPool* pool) {
  gemm(GemmShape{Transpose::kNo, Transpose::kNo, rows, n_in, n_out}, d_y, n_out, w, n_in, d_x, n_in,
       accumulate_d_x, pool);
  gemm(GemmShape{Transpose::kYes, Transpose::kNo, n_out, n_in, rows}, d_y, n_out, x, n_in, d_w,
       n_in, true, pool);
}

template <typename T>
RopeTable<T>::RopeTable(int64_t n_positions, int64_t head_dim_, float freq_base, float freq_scale)
    : head_dim(head_dim_) {
  const int64_t half = head_dim / 2;
  cos.resize(static_cast<size_t>(n_positions * half));
  sin.resize(cos.size());
  for (int64_t p = 0; p < n_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(static_cast<double>(freq_base), -2.0 * i / head_dim);
      const double theta = static_cast<double>(p) * freq_scale * inv_freq;
      cos[static_cast<size_t>(p * half + i)] = static_cast<T>(std::cos(theta));
      sin[static_cast<size_t>(p * half + i)] = static_cast<T>(std::sin(theta));
    }
  }
}

namespace {
// Rotates each adjacent pair by +theta (forward) or -theta (backward).
template <typename T>
void rotate_pairs(T* x, int64_t rows, int64_t seq_len, int64_t n_heads, const RopeTable<T>& table,
                  bool inverse, ThreadPool* pool) {
  const int64_t head_dim = table.head_dim;
  const int64_t half = head_dim / 2;
  for_chunks(pool, rows, kRowChunk, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const int64_t position = row % seq_len;
      const T* c = table.cos.data() + position * half;
      const T* s = table.sin.data() + position * half;
      for (int64_t h = 0; h < n_heads; ++h) {
        T* head = x + (row * n_heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const T x0 = head[2 * i];
          const T x1 = head[2 * i + 1];
          const T sin_i = inverse ? -s[i] : s[i];
          head[2 * i] = x0 * c[i] - x1 * sin_i;
          head[2 * i + 1] = x0 * sin_i + x1 * c[i];
        }
      }
    }
  });
}
}  // namespace

template <typename T>
void rope_forward(T* x, int64_t rows, int64_t seq_len, int64_t n_heads, const RopeTable<T>& table,
                  ThreadPool* pool) {
  rotate_pairs(x, rows, seq_len, n_heads, table, false, pool);
}

template <typename T>
void rope_backward(T* d_x, int64_t rows, int64_t seq_len, int64_t n_heads,
                   const RopeTable<T>& table, ThreadPool* pool) {
  rotate_pairs(d_x, rows, seq_len, n_heads, table, true, pool);
}

template <typename T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* probs, T* out,
                       ThreadPool* pool) {
  const int64_t n_t = d.seq_len;
  const int64_t group = d.n_head / d.n_head_kv;
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  // One task per (sequence, query head); each writes its own probs block
  // and its own columns of `out`.
  for_each(pool, d.batch * d.n_head, [&](int64_t task) {
    const int64_t b = task / d.n_head;
    const int64_t h = task % d.n_head;
    const int64_t g = h / group;
    const T* q_bh = q + b * n_t * d.q_dim() + h * d.head_dim;
    const T* k_bg = k + b * n_t * d.kv_dim() + g * d.head_dim;
    const T* v_bg = v + b * n_t * d.kv_dim() + g * d.head_dim;
    T* p = probs + task * n_t * n_t;
    // Scores of all (t, s) pairs; the part above the diagonal is discarded.
    gemm(GemmShape{Transpose::kNo, Transpose::kYes, n_t, n_t, d.head_dim}, q_bh, d.q_dim(), k_bg,
         d.kv_dim(), p, n_t, false, nullptr);
    for (int64_t t = 0; t < n_t; ++t) {
      T* row = p + t * n_t;
      T max_score = -std::numeric_limits<T>::infinity();
      for (int64_t s = 0; s <= t; ++s) {
        row[s] *= scale;
        max_score = std::max(max_score, row[s]);
      }
      double sum = 0.0;
      for (int64_t s = 0; s <= t; ++s) {
        row[s] = std::exp(row[s] - max_score);
        sum += row[s];
      }
      const T inverse = static_cast<T>(1.0 / sum);
      for (int64_t s = 0; s <= t; ++s) row[s] *= inverse;
      std::fill(row + t + 1, row + n_t, T(0));
    }
    gemm(GemmShape{Transpose::kNo, Transpose::kNo, n_t, d.head_dim, n_t}, p, n_t, v_bg, d.kv_dim(),
         out + b * n_t * d.q_dim() + h * d.head_dim, d.q_dim(), false, nullptr);
  });
}

template <typename T>
void attention_backward(const AttentionDims& d, const T* q, const T* k, const T* v, const T* probs,
                        const T* d_out, T* d_q, T* d_k, T* d_v, ThreadPool* pool) {
  const int64_t n_t = d.seq_len;
  const int64_t group = d.n_head / d.n_head_kv;
  const T scale = T(1) / std::sqrt(static_cast<T>(d.head_dim));
  // One task per (sequence, key/value head): the query heads of a group add
  // into the same d_k and d_v columns, in ascending head order.
  for_each(pool, d.batch * d.n_head_kv, [&](int64_t task) {
    const int64_t b = task / d.n_head_kv;
    const int64_t g = task % d.n_head_kv;
    const int64_t kv_offset = b * n_t * d.kv_dim() + g * d.head_dim;
    thread_local std::vector<T> scratch;
    scratch.resize(static_cast<size_t>(n_t * n_t));
    T* d_s = scratch.data();
    for (int64_t j = 0; j < group; ++j) {
      const int64_t h = g * group + j;
      const int64_t q_offset = b * n_t * d.q_dim() + h * d.head_dim;
      const T* p = probs + (b * d.n_head + h) * n_t * n_t;
      // dP = dO V^T, then dS = P * (dP - rowsum(P * dP)) * scale.
      gemm(GemmShape{Transpose::kNo, Transpose::kYes, n_t, n_t, d.head_dim}, d_out + q_offset,
           d.q_dim(), v + kv_offset, d.kv_dim(), d_s, n_t, false, nullptr);
      for (int64_t t = 0; t < n_t; ++t) {
        const T* p_row = p + t * n_t;
        T* row = d_s + t * n_t;
        double dot = 0.0;
        for (int64_t s = 0; s <= t; ++s) dot += static_cast<double>(p_row[s]) * row[s];
        const T centre = static_cast<T>(dot);
        for (int64_t s = 0; s <= t; ++s) row[s] = p_row[s] * (row[s] - centre) * scale;
        std::fill(row + t + 1, row + n_t, T(0));
      }
      gemm(GemmShape{Transpose::kNo, Transpose::kNo, n_t, d.head_dim, n_t}, d_s, n_t, k + kv_offset,
           d.kv_dim(), d_q + q_offset, d.q_dim(), false, nullptr);
      gemm(GemmShape{Transpose::kYes, Transpose::kNo, n_t, d.head_dim, n_t}, d_s, n_t, q + q_offset,
           d.q_dim(), d_k + kv_offset, d.kv_dim(), j > 0, nullptr);
      gemm(GemmShape{Transpose::kYes, Transpose::kNo, n_t, d.head_dim, n_t}, p, n_t,
           d_out + q_offset, d.q_dim(), d_v + kv_offset, d.kv_dim(), j > 0, nullptr);
    }
  });
}

template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out, ThreadPool* pool) {
  for_chunks(pool, n, kElementChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = gate[i] / (T(1) + std::exp(-gate[i])) * up[i];
  });
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* d_out, int64_t n, T* d_gate, T* d_up,
                     ThreadPool* pool) {
  // silu'(g) = sigma(g) * (1 + g * (1 - sigma(g))).
  for_chunks(pool, n, kElementChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T g = gate[i];
      const T sigma = T(1) / (T(1) + std::exp(-g));
      const T dy = d_out[i];
      d_up[i] = dy * g * sigma;
      d_gate[i] = dy * up[i] * sigma * (T(1) + g * (T(1) - sigma));
    }
  });
}

template <typename T>
double cross_entropy(const T* logits, const int32_t* targets, int64_t rows, int64_t vocab,
                     T* d_logits, ThreadPool* pool) {
  std::vector<double> row_loss(static_cast<size_t>(rows));
  const double inverse_rows = 1.0 / static_cast<double>(rows);
  for_chunks(pool, rows, kRowChunk, [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      const T* l = logits + row * vocab;
      const T max_logit = *std::max_element(l, l + vocab);
      double sum = 0.0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(l[i] - max_logit));
      const int32_t target = targets[row];
      row_loss[static_cast<size_t>(row)] =
          std::log(sum) - static_cast<double>(l[target] - max_logit);
      if (d_logits == nullptr) continue;
      T* d = d_logits + row * vocab;
      const double scale = inverse_rows / sum;
      for (int64_t i = 0; i < vocab; ++i) {
        d[i] = static_cast<T>(std::exp(static_cast<double>(l[i] - max_logit)) * scale);
      }
      d[target] -= static_cast<T>(inverse_rows);
    }
  });
  double total = 0.0;
  for (const double loss : row_loss) total += loss;
  return total * inverse_rows;
}

#define SPECULA_INSTANTIATE_LAYERS(T)                                                              \
  template void embedding_forward<T>(const T*, int64_t, std::span<const int32_t>, T*,              \
                                     ThreadPool*);                                                 \
  template void embedding_backward<T>(const T*, int64_t, std::span<const int32_t>, T*,             \
                                      ThreadPool*);                                                \
  template void rms_norm_forward<T>(const T*, const T*, int64_t, int64_t, float, T*, T*,           \
                                    ThreadPool*);                                                  \
  template void rms_norm_backward_accumulate<T>(const T*, const T*, const T*, const T*, int64_t,   \
                                                int64_t, T*, T*, ThreadPool*);                     \
  template void linear_forward<T>(const T*, const T*, int64_t, int64_t, int64_t, T*, ThreadPool*); \
  template void linear_backward<T>(const T*, const T*, const T*, int64_t, int64_t, int64_t, T*,    \
                                   bool, T*, ThreadPool*);                                         \
  template struct RopeTable<T>;                                                                    \
  template void rope_forward<T>(T*, int64_t, int64_t, int64_t, const RopeTable<T>&, ThreadPool*);  \
  template void rope_backward<T>(T*, int64_t, int64_t, int64_t, const RopeTable<T>&, ThreadPool*); \
  template void attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, T*, T*,   \
                                     ThreadPool*);                                                 \
  template void attention_backward<T>(const AttentionDims&, const T*, const T*, const T*,          \
                                      const T*, const T*, T*, T*, T*, ThreadPool*);                \
  template void swiglu_forward<T>(const T*, const T*, int64_t, T*, ThreadPool*);                   \
  template void swiglu_backward<T>(const T*, const T*, const T*, int64_t, T*, T*, ThreadPool*);    \
  template double cross_entropy<T>(const T*, const int32_t*, int64_t, int64_t, T*, ThreadPool*);

SPECULA_INSTANTIATE_LAYERS(float)
SPECULA_INSTANTIATE_LAYERS(double)

}  // namespace specula

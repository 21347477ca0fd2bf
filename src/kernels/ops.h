// Element-wise and per-row operations of the transformer forward pass.
// Shapes are given per call; all buffers are float32 and row-major.
#pragma once

#include <cstdint>

namespace specula {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], for one row of n values.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i], silu(v) = v / (1 + exp(-v)).
void silu_mul(float* gate, const float* up, int64_t n);

// y[i] += x[i].
void add_in_place(float* y, const float* x, int64_t n);

enum class RopeStyle {
  kNormal,  // rotates adjacent pairs (x[2i], x[2i+1]): GGUF `llama`
  kNeox,    // rotates (x[i], x[i + d/2]): GGUF `qwen2`
};

// Rotates n_heads heads of head_dim values at `position`, in place.
// theta_i = position * freq_scale * freq_base^(-2i / head_dim).
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float freq_base,
          float freq_scale, RopeStyle style);

}  // namespace specula

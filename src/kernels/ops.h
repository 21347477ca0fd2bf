// Element-wise and per-row operations of the transformer forward pass.
// Shapes are given per call; all buffers are float32 and row-major.
//
// rms_norm, softmax, silu_mul and add_in_place run SIMD code for the best
// instruction set of this CPU (ops_simd.cpp, chosen like matmul's: see
// kernels/dispatch.h). Each has a `_scalar` twin in plain loops, the
// reference the tests compare every target with. The SIMD versions sum in
// float lanes, so they differ from the twins by float rounding (~1e-6
// relative), never by which thread runs them.
#pragma once

#include <cstdint>
#include <vector>

namespace specula {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], for one row of n values.
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
void rms_norm_scalar(const float* x, const float* weight, int64_t n, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);
void softmax_scalar(float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i], silu(v) = v / (1 + exp(-v)).
void silu_mul(float* gate, const float* up, int64_t n);
void silu_mul_scalar(float* gate, const float* up, int64_t n);

// y[i] += x[i].
void add_in_place(float* y, const float* x, int64_t n);
void add_in_place_scalar(float* y, const float* x, int64_t n);

enum class RopeStyle {
  kNormal,  // rotates adjacent pairs (x[2i], x[2i+1]): GGUF `llama`
  kNeox,    // rotates (x[i], x[i + d/2]): GGUF `qwen2`
};

// The rotation angles of RoPE, theta_i = position * freq_scale *
// freq_base^(-2i / head_dim) for i < head_dim / 2. The powers are computed
// once here, so a forward pass needs only one cos/sin per pair and row
// (shared by every layer and by queries and keys), and no pow at all.
class RopeAngles {
 public:
  RopeAngles() = default;
  RopeAngles(int64_t head_dim, float freq_base, float freq_scale);

  int64_t head_dim() const { return head_dim_; }
  // Writes cos(theta_i) and sin(theta_i) at `position`: head_dim / 2 each.
  void cos_sin(int64_t position, float* cos_out, float* sin_out) const;

 private:
  int64_t head_dim_ = 0;
  float freq_scale_ = 1.0f;
  std::vector<double> inverse_frequencies_;  // head_dim / 2
};

// Rotates n_heads heads of head_dim values in place by the angles whose
// cosines and sines are given (head_dim / 2 each, from RopeAngles).
void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                 RopeStyle style);

// Rotates n_heads heads of head_dim values at `position`, in place:
// RopeAngles and rope_rotate in one call (recomputes the powers each time).
void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float freq_base,
          float freq_scale, RopeStyle style);

}  // namespace specula

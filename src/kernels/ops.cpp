// The scalar twins of the SIMD row operations (ops_simd.cpp), and RoPE.
#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

namespace specula {

void rms_norm_scalar(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_squares = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_squares += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum_squares / n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void softmax_scalar(float* x, int64_t n) {
  const float max_value = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_value);
    sum += x[i];
  }
  const float inverse = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inverse;
}

void silu_mul_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add_in_place_scalar(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

RopeAngles::RopeAngles(int64_t head_dim, float freq_base, float freq_scale)
    : head_dim_(head_dim), freq_scale_(freq_scale) {
  inverse_frequencies_.resize(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    inverse_frequencies_[static_cast<size_t>(i)] =
        std::pow(static_cast<double>(freq_base), -2.0 * static_cast<double>(i) / head_dim);
  }
}

void RopeAngles::cos_sin(int64_t position, float* cos_out, float* sin_out) const {
  // Double angles: at position 1e5 a float angle would be off by ~0.01 rad.
  for (size_t i = 0; i < inverse_frequencies_.size(); ++i) {
    const double theta = static_cast<double>(position) * freq_scale_ * inverse_frequencies_[i];
    cos_out[i] = static_cast<float>(std::cos(theta));
    sin_out[i] = static_cast<float>(std::sin(theta));
  }
}

void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                 RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    if (style == RopeStyle::kNormal) {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = head[2 * i];
        const float x1 = head[2 * i + 1];
        head[2 * i] = x0 * cos[i] - x1 * sin[i];
        head[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
      }
    } else {
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = head[i];
        const float x1 = head[i + half];
        head[i] = x0 * cos[i] - x1 * sin[i];
        head[i + half] = x0 * sin[i] + x1 * cos[i];
      }
    }
  }
}

void rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, float freq_base,
          float freq_scale, RopeStyle style) {
  const RopeAngles angles(head_dim, freq_base, freq_scale);
  std::vector<float> cos(static_cast<size_t>(head_dim / 2));
  std::vector<float> sin(cos.size());
  angles.cos_sin(position, cos.data(), sin.data());
  rope_rotate(x, n_heads, head_dim, cos.data(), sin.data(), style);
}

}  // namespace specula

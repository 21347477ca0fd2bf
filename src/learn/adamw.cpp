#include "learn/adamw.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace specula {
namespace {
constexpr int64_t kChunk = 1 << 15;
}  // namespace

float LearningRateSchedule::at(int64_t step) const {
  if (step < warmup_steps) {
    return peak * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  }
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - 1 - warmup_steps);
  const double progress = std::clamp(
      static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
  return static_cast<float>(floor +
                            (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

double gradient_norm(std::span<const float> grads, ThreadPool* pool) {
  const int64_t n = static_cast<int64_t>(grads.size());
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(n_chunks));
  const auto run = [&](int64_t c) {
    double sum = 0.0;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      sum += static_cast<double>(grads[static_cast<size_t>(i)]) * grads[static_cast<size_t>(i)];
    }
    partial[static_cast<size_t>(c)] = sum;
  };
  if (pool == nullptr) {
    for (int64_t c = 0; c < n_chunks; ++c) run(c);
  } else {
    pool->parallel_for(n_chunks, run);
  }
  double total = 0.0;
  for (const double p : partial) total += p;
  return std::sqrt(total);
}

float clip_scale(double norm, float max_norm) {
  if (max_norm <= 0.0f || !(norm > max_norm)) return 1.0f;
  return static_cast<float>(max_norm / (norm + 1e-6));
}

void adamw_update(const ParameterLayout& layout, const AdamWOptions& o, float lr, int64_t t,
                  float grad_scale, std::span<float> params, std::span<const float> grads,
                  std::span<float> m, std::span<float> v, ThreadPool* pool) {
  struct Chunk {
    size_t begin, end;
    bool decay;
  };
  std::vector<Chunk> chunks;
  for (const ParameterTensor& tensor : layout.tensors()) {
    for (size_t b = tensor.offset; b < tensor.offset + tensor.size; b += kChunk) {
      chunks.push_back({b, std::min(tensor.offset + tensor.size, b + kChunk), tensor.weight_decay});
    }
  }
  const double correction1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(t));
  const double correction2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / correction1);
  const float inverse_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(correction2));
  const float decay_factor = 1.0f - lr * o.weight_decay;
  const auto run = [&](int64_t index) {
    const Chunk& c = chunks[static_cast<size_t>(index)];
    for (size_t i = c.begin; i < c.end; ++i) {
      const float g = grads[i] * grad_scale;
      m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * g * g;
      float p = params[i];
      if (c.decay) p *= decay_factor;
      p -= step_size * m[i] / (std::sqrt(v[i]) * inverse_sqrt_correction2 + o.epsilon);
      params[i] = p;
    }
  };
  const int64_t n = static_cast<int64_t>(chunks.size());
  if (pool == nullptr) {
    for (int64_t i = 0; i < n; ++i) run(i);
  } else {
    pool->parallel_for(n, run);
  }
}

}  // namespace specula

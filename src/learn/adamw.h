// AdamW with decoupled weight decay, the learning-rate schedule (linear
// warm-up, then cosine decay to a floor) and global gradient-norm clipping.
#pragma once

#include <cstdint>
#include <span>

#include "core/thread_pool.h"
#include "learn/transformer.h"

namespace specula {

struct AdamWOptions {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float epsilon = 1e-8f;
  // Decoupled (Loshchilov & Hutter): p -= lr * weight_decay * p, applied
  // only to tensors with ParameterTensor::weight_decay (the matrices; not
  // the embeddings, which a tied output shares, nor the norm gains).
  float weight_decay = 0.1f;
};

struct LearningRateSchedule {
  float peak = 1e-3f;
  float floor = 1e-4f;
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;

  // The rate for step `step` (0-based): peak * (step + 1) / warmup_steps
  // during warm-up, then floor + (peak - floor) * (1 + cos(pi * p)) / 2
  // with p = (step - warmup_steps) / (total_steps - 1 - warmup_steps)
  // clamped to [0, 1]; so the last step (total_steps - 1) runs at the floor.
  float at(int64_t step) const;
};

// The L2 norm of all gradients: squares summed in double over fixed
// chunks, chunk sums added in order, so the value does not depend on the
// pool.
double gradient_norm(std::span<const float> grads, ThreadPool* pool);

// The factor clip_gradients multiplies by: max_norm / (norm + 1e-6) when
// norm > max_norm > 0, else 1 (PyTorch's clip_grad_norm_).
float clip_scale(double norm, float max_norm);

// One AdamW step, number t (1-based), every gradient first multiplied by
// grad_scale. m and v are the first and second moments (same layout as the
// parameters). With mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t):
//   p *= 1 - lr * weight_decay           (decaying tensors only)
//   p -= lr * mhat / (sqrt(vhat) + epsilon)
// Element-wise, so results do not depend on the pool.
void adamw_update(const ParameterLayout& layout, const AdamWOptions& options, float lr, int64_t t,
                  float grad_scale, std::span<float> params, std::span<const float> grads,
                  std::span<float> m, std::span<float> v, ThreadPool* pool);

}  // namespace specula

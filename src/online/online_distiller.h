// Online distillation (OSD): a draft model that keeps learning from its
// target while generation runs. The target's distributions at verified
// positions are free teacher signal; the distiller keeps a trainable float
// copy of the draft, a bounded replay buffer of (context window, target
// distributions), and a background thread that takes small distillation
// steps (forward KL or total variation, AdamW) and every few steps
// publishes the weights as a new immutable Model.
//
// Generation never waits for it: observe() does O(rows x n_vocab) work on
// the caller's thread and pushes without blocking (dropping the sample when
// the buffer is busy); the learner's CPU share and memory are bounded by
// OnlineDistillOptions. A drafter picks published weights up between
// steps (see spec/learning_model_drafter.h), which keeps speculative
// sampling exact. docs/online-distillation.md has the whole picture.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "gguf/gguf_writer.h"
#include "learn/adamw.h"
#include "learn/distill_loss.h"
#include "learn/random.h"
#include "learn/transformer.h"
#include "model/model.h"
#include "online/online_replay_buffer.h"
#include "specula/engine.h"

namespace specula {

// The learner's options: the public ones (OnlineDistillConfig, with their
// meaning and defaults, written once there; `enabled` is the Engine's and
// unused here) and what only the library sets.
struct OnlineDistillOptions : OnlineDistillConfig {
  float clip = 1.0f;  // global gradient-norm limit (0: off)
  // No decay by default: decaying towards 0 would erode the trained draft.
  float weight_decay = 0.0f;
  // Matrix type of the published weights (F32 or F16; norms stay F32). The
  // Engine publishes an F16 draft's weights as F16.
  DType publish_type = DType::kF32;
};

// Throws Error naming the field (EngineConfig::online_distill.<field>) when
// an option is out of range.
void validate_online_distill_options(const OnlineDistillOptions& options);

struct OnlineDistillStats {
  uint64_t steps = 0;
  uint64_t publishes = 0;        // published versions
  uint64_t observed_rows = 0;    // target rows received
  uint64_t stored_samples = 0;   // windows pushed into the buffer
  uint64_t dropped_samples = 0;  // windows dropped (buffer busy, or larger than the budget)
  uint64_t evicted_samples = 0;  // windows evicted to make room
  size_t buffer_bytes = 0;
  size_t buffer_samples = 0;
  double last_loss = 0.0;  // of the latest step
};

class OnlineDistiller {
 public:
  // Initialises the trainable copy from `draft`'s file (a llama model with
  // F32, F16 or BF16 tensors; Error otherwise). `draft` must outlive the
  // distiller (its tokenizer keys are copied into each published model).
  // No thread runs until start().
  OnlineDistiller(const Model& draft, const OnlineDistillOptions& options);
  // Stops and joins the learner thread.
  ~OnlineDistiller();
  OnlineDistiller(const OnlineDistiller&) = delete;
  OnlineDistiller& operator=(const OnlineDistiller&) = delete;

  const OnlineDistillOptions& options() const { return options_; }

  // Starts the learner thread (a no-op when it runs); stop() ends it after
  // its current step and joins it (a no-op when it does not run).
  void start();
  void stop();
  bool running() const { return thread_.joinable(); }

  // Teacher signal from the generation thread (the Drafter::observe_target
  // contract: row i of target_logits, raw logits, scores the token at
  // position first_position + i given context[0 .. first_position + i)).
  // Never blocks. Consecutive calls on one growing sequence are merged into
  // one window until it holds `window` tokens. observe() and
  // end_sequence() are for one thread at a time.
  void observe(std::span<const int32_t> context, int32_t first_position,
               std::span<const float> target_logits, int32_t n_rows, int32_t n_vocab);
  // The sequence observed so far ended: its open window goes to the buffer.
  void end_sequence();

  // One distillation step on `batch` windows drawn from the buffer; false
  // (nothing done) while the buffer is empty. Publishes every
  // steps_between_publish steps. The learner thread calls this; tests call
  // it directly (without start()) for deterministic runs.
  bool step();
  // Makes the current weights the newest published Model.
  void publish();
  // Writes the current weights as a draft GGUF file (the draft's tokenizer
  // and metadata kept, matrices as publish_type): what was learned outlives
  // the process. Safe while the learner runs (waits for its current step).
  // Throws Error naming the path when it cannot be written.
  void save(const std::string& path);

  // The newest published weights (null before the first publish) and
  // their version (0 before the first, then 1, 2, ...).
  std::shared_ptr<const Model> published(uint64_t* version = nullptr) const;
  // Cheap (one atomic load): a drafter polls this before each proposal.
  uint64_t published_version() const { return version_.load(std::memory_order_acquire); }

  OnlineDistillStats stats() const;
  const ReplayBuffer& buffer() const { return buffer_; }
  // Bytes held by the trainable copy: weights, gradients, two moments, and
  // the running average.
  size_t parameter_bytes() const { return (params_.size() * 4 + average_.size()) * sizeof(float); }

 private:
  void run();
  // The learner thread's gate: a full batch stored, and fewer steps so far
  // than max_steps_per_window x the windows stored.
  bool has_fresh_data() const;
  void publish_locked();  // train_mutex_ held
  // The current weights as a GGUF model into `writer` (train_mutex_ held).
  void write_locked(GgufWriter& writer) const;
  // Appends rows to the open window (starting a new one when they do not
  // continue it) and flushes it when full.
  void add_rows(std::span<const int32_t> context, int32_t first_position,
                std::span<const float> target_logits, int32_t n_rows, int32_t n_vocab);
  void flush_pending();
  // Fills the top-k ids/probs/tail of one target row into pending_.
  void store_distribution(std::span<const float> logits);

  const Model& draft_;
  OnlineDistillOptions options_;
  DistillDivergence loss_ = DistillDivergence::kTotalVariation;  // options_.loss, parsed
  int32_t n_vocab_ = 0;
  int32_t top_k_ = 0;   // resolved: top_k, or n_vocab for whole rows
  int32_t window_ = 0;  // resolved: <= the draft's context

  // Trainable copy (the learner's; guarded by train_mutex_).
  std::mutex train_mutex_;
  std::unique_ptr<ParameterLayout> layout_;
  std::unique_ptr<Transformer<float>> model_;
  std::unique_ptr<ThreadPool> pool_;  // null when threads == 1
  std::vector<float> params_, grads_, adam_m_, adam_v_;
  std::vector<float> average_;  // empty when average_decay is 0
  SplitMix64 rng_;
  std::vector<ReplaySample> batch_;
  std::vector<int32_t> tokens_;
  std::vector<float> student_rows_, teacher_rows_;
  std::vector<size_t> target_rows_;
  uint64_t steps_ = 0;

  ReplayBuffer buffer_;

  // The observer's side (one thread at a time).
  ReplaySample pending_;
  int64_t pending_start_ = 0;  // position of pending_.tokens[0] in its sequence
  std::vector<double> softmax_;
  std::vector<int32_t> order_;

  // Published weights.
  mutable std::mutex publish_mutex_;
  std::shared_ptr<const Model> published_;
  std::atomic<uint64_t> version_{0};

  // Counters read by stats() from any thread.
  std::atomic<uint64_t> observed_rows_{0}, stored_{0}, dropped_{0}, step_count_{0};
  std::atomic<double> last_loss_{0.0};

  // The learner thread.
  std::mutex thread_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// A Model over GGUF bytes held in memory (an anonymous memory file, mapped
// like any model file; a deleted temporary file where that is unavailable).
// `label` names it in messages.
std::unique_ptr<Model> model_from_gguf_bytes(const std::vector<uint8_t>& bytes,
                                             const std::string& label);

}  // namespace specula

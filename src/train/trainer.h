// One training run: parameters, Adam moments, the data stream and its RNG,
// and the step that ties them together. Deterministic: the same options,
// data and seed give bit-identical parameters after any number of steps,
// whatever the thread count, and a run resumed from a checkpoint continues
// exactly as if it had never stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "gguf/gguf_reader.h"
#include "learn/adamw.h"
#include "learn/loss.h"
#include "learn/random.h"
#include "learn/transformer.h"
#include "train/data.h"

namespace specula {

struct TrainOptions {
  TransformerShape shape;  // resolved by validate_train_options
  int64_t batch = 8;       // sequences per step
  int64_t seq_len = 128;   // tokens per sequence (<= shape.n_ctx)
  int64_t steps = 1000;    // total optimizer steps (also the schedule's length)
  float lr = 1e-3f;        // peak learning rate
  float min_lr = 1e-4f;    // floor of the cosine decay
  int64_t warmup = 100;    // linear warm-up steps
  AdamWOptions adam;
  float clip = 1.0f;  // global gradient-norm limit; 0: no clipping
  uint64_t seed = 1;  // initial weights and data order
  int64_t eval_every = 100;
  int64_t eval_tokens = 8192;
  // Kernel of the linear layers' products (gemm_dnnl.h). Not part of the
  // trajectory a checkpoint fixes: a run may resume on another backend
  // (the continuation then differs slightly from an uninterrupted run).
  // kAuto or an unavailable kBf16 resolve to what the machine offers.
  GemmBackend gemm = GemmBackend::kF32;

  LearningRateSchedule schedule() const { return {lr, min_lr, warmup, steps}; }
};

// Resolves the shape and checks every option; throws Error naming the flag.
TrainOptions validate_train_options(TrainOptions options);

struct StepResult {
  int64_t step = 0;  // steps done after this one (1 after the first)
  double loss = 0.0;
  double grad_norm = 0.0;  // before clipping
  float lr = 0.0f;
};

class Trainer {
 public:
  // A new run: parameters initialised from options.seed.
  Trainer(const TrainOptions& options, TokenCorpus corpus, ThreadPool* pool);
  ~Trainer();

  // Continues the run a checkpoint holds (see checkpoint.h), with the
  // checkpoint's options. Throws Error when `corpus` is not the data it was
  // trained on, or when the checkpoint's loss is not `loss`'s (null: the
  // default cross-entropy; a distillation run passes its loss here, since
  // set_loss after resume would come too late for that check).
  static std::unique_ptr<Trainer> resume(const std::string& checkpoint_path, TokenCorpus corpus,
                                         ThreadPool* pool,
                                         std::unique_ptr<TrainingLoss> loss = nullptr);

  // Starts from a model file's weights instead of the seeded random ones
  // (fine-tuning; distilling a draft that was pretrained on the corpus).
  // Only before the first step. Throws Error naming the file when its shape
  // (vocabulary, width, layers, heads, ff, RoPE base, tied output) is not
  // options().shape or a tensor is missing or not F32/F16/BF16; the context
  // length may differ (RoPE has no learnt positions).
  void load_parameters(const GgufReader& model_file);
  // Replaces the cross-entropy objective (e.g. by a distillation loss).
  void set_loss(std::unique_ptr<TrainingLoss> loss);
  // Options that do not change the trajectory so far: the step count (and
  // with it the schedule's length) and the evaluation settings.
  void set_steps(int64_t steps);
  void set_evaluation(int64_t every, int64_t tokens);
  // Resolves `requested` (resolve_gemm_backend) and uses it from the next
  // step on; returns the notice when bf16 was asked for but is unavailable.
  std::string set_gemm_backend(GemmBackend requested);
  GemmBackend gemm_backend() const { return model_->gemm_backend(); }

  // One optimizer step on a freshly drawn batch.
  StepResult step();
  // Mean loss over the fixed held-out windows; NaN when there are none.
  double evaluate();

  // Writes everything a resume needs (atomically: temporary file + rename).
  // `tokenizer` (may be null) is copied in, so the checkpoint also runs as
  // a model.
  void save_checkpoint(const std::string& path, const GgufReader* tokenizer) const;
  // The trained model for `specula generate` (type F32 or F16).
  void write_model(const std::string& path, DType type, const GgufReader* tokenizer,
                   std::string_view name) const;

  const TrainOptions& options() const { return options_; }
  const ParameterLayout& layout() const { return *layout_; }
  const TokenCorpus& corpus() const { return corpus_; }
  int64_t steps_done() const { return step_; }
  uint64_t tokens_seen() const { return tokens_seen_; }
  std::span<const float> parameters() const { return params_; }
  std::span<const float> adam_m() const { return m_; }
  std::span<const float> adam_v() const { return v_; }

 private:
  Trainer(const TrainOptions& options, TokenCorpus corpus, ThreadPool* pool, bool initialise);

  TrainOptions options_;
  std::unique_ptr<ParameterLayout> layout_;
  TokenCorpus corpus_;
  ThreadPool* pool_;
  std::unique_ptr<Transformer<float>> model_;
  std::unique_ptr<TrainingLoss> loss_;
  std::vector<float> params_, grads_, m_, v_;
  std::vector<int32_t> inputs_, targets_;
  SplitMix64 rng_;
  int64_t step_ = 0;
  uint64_t tokens_seen_ = 0;
};

}  // namespace specula

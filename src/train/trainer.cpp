#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "learn/gemm_dnnl.h"
#include "learn/model_io.h"
#include "train/checkpoint.h"

namespace specula {
namespace {

void check_positive(const char* field, int64_t value) {
  if (value < 1) fail("train: ", field, " ", value, " must be at least 1");
}

void check_rate(const char* field, float value) {
  if (!(value >= 0.0f) || !std::isfinite(value) || value > 10.0f) {
    fail("train: ", field, " ", value, " must be a finite value in [0, 10]");
  }
}

}  // namespace

TrainOptions validate_train_options(TrainOptions o) {
  o.shape = resolve_transformer_shape(o.shape);
  check_positive("TrainOptions::batch", o.batch);
  check_positive("TrainOptions::seq_len", o.seq_len);
  check_positive("TrainOptions::steps", o.steps);
  if (o.seq_len > o.shape.n_ctx) {
    fail("train: TrainOptions::seq_len ", o.seq_len,
         " exceeds the model's context TransformerShape::n_ctx ", o.shape.n_ctx);
  }
  if (o.warmup < 0) fail("train: TrainOptions::warmup ", o.warmup, " must not be negative");
  check_rate("TrainOptions::lr", o.lr);
  check_rate("TrainOptions::min_lr", o.min_lr);
  if (o.min_lr > o.lr)
    fail("train: TrainOptions::min_lr ", o.min_lr, " exceeds TrainOptions::lr ", o.lr);
  check_rate("AdamWOptions::weight_decay", o.adam.weight_decay);
  if (!(o.clip >= 0.0f) || !std::isfinite(o.clip)) {
    fail("train: TrainOptions::clip ", o.clip, " must be a finite value >= 0 (0: no clipping)");
  }
  if (!(o.adam.beta1 >= 0.0f && o.adam.beta1 < 1.0f && o.adam.beta2 >= 0.0f &&
        o.adam.beta2 < 1.0f && o.adam.epsilon > 0.0f)) {
    fail("train: Adam betas must be in [0, 1) and epsilon positive");
  }
  if (o.eval_every < 0 || o.eval_tokens < 0) {
    fail("train: TrainOptions::eval_every and TrainOptions::eval_tokens must not be negative");
  }
  return o;
}

Trainer::Trainer(const TrainOptions& options, TokenCorpus corpus, ThreadPool* pool)
    : Trainer(options, std::move(corpus), pool, true) {}

Trainer::Trainer(const TrainOptions& options, TokenCorpus corpus, ThreadPool* pool, bool initialise)
    : options_(validate_train_options(options)),
      layout_(std::make_unique<ParameterLayout>(options_.shape)),
      corpus_(std::move(corpus)),
      pool_(pool),
      model_(std::make_unique<Transformer<float>>(*layout_)),
      loss_(std::make_unique<CrossEntropyLoss>()),
      params_(layout_->total()),
      grads_(layout_->total()),
      m_(layout_->total(), 0.0f),
      v_(layout_->total(), 0.0f),
      rng_(stream_seed(options_.seed, "data")) {
  for (const int32_t token : corpus_.train) {
    if (token < 0 || token >= options_.shape.n_vocab) {
      fail("train: token id ", token,
           " of the training text is outside the model's vocabulary [0, ", options_.shape.n_vocab,
           ")");
    }
  }
  if (static_cast<int64_t>(corpus_.train.size()) < options_.seq_len + 1) {
    fail("train: the training text has ", corpus_.train.size(),
         " tokens, fewer than one window of TrainOptions::seq_len ", options_.seq_len,
         " + 1; give more text or a shorter TrainOptions::seq_len");
  }
  if (initialise) init_parameters(*layout_, options_.seed, params_);
  set_gemm_backend(options_.gemm);
}

Trainer::~Trainer() = default;

std::unique_ptr<Trainer> Trainer::resume(const std::string& checkpoint_path, TokenCorpus corpus,
                                         ThreadPool* pool, std::unique_ptr<TrainingLoss> loss) {
  const Checkpoint checkpoint = read_checkpoint(checkpoint_path);
  if (corpus.fingerprint() != checkpoint.state.corpus_fingerprint) {
    fail("train: the training text differs from the text ", checkpoint_path,
         " was trained on (token streams differ); resume with the same vocabulary, "
         "CorpusOptions::train_files, CorpusOptions::eval_files and CorpusOptions::eval_fraction");
  }
  std::unique_ptr<Trainer> trainer(
      new Trainer(checkpoint.options, std::move(corpus), pool, /*initialise=*/false));
  if (loss != nullptr) trainer->loss_ = std::move(loss);
  if (checkpoint.state.loss_name != trainer->loss_->name()) {
    fail("train: ", checkpoint_path, " was trained with loss ", checkpoint.state.loss_name,
         ", not ", trainer->loss_->name());
  }
  read_checkpoint_tensors(checkpoint, *trainer->layout_, trainer->params_, trainer->m_,
                          trainer->v_);
  trainer->step_ = checkpoint.state.step;
  trainer->rng_ = SplitMix64(checkpoint.state.rng_state);
  trainer->tokens_seen_ = checkpoint.state.tokens_seen;
  return trainer;
}

void Trainer::load_parameters(const GgufReader& model_file) {
  if (step_ != 0) fail("train: internal: load_parameters after step ", step_);
  const TransformerShape f = read_transformer_shape(model_file);
  const TransformerShape& s = options_.shape;
  if (f.n_vocab != s.n_vocab || f.n_embd != s.n_embd || f.n_layer != s.n_layer ||
      f.n_head != s.n_head || f.n_head_kv != s.n_head_kv || f.n_ff != s.n_ff ||
      f.rope_freq_base != s.rope_freq_base || f.tied_output != s.tied_output) {
    fail("train: ", model_file.path(), " is a ", f.n_layer, "-layer, ", f.n_embd, "-wide model (",
         f.n_head, "/", f.n_head_kv, " heads, ff ", f.n_ff, ", vocabulary ", f.n_vocab,
         f.tied_output ? ", tied output" : "", "), not the ", s.n_layer, "-layer, ", s.n_embd,
         "-wide model (", s.n_head, "/", s.n_head_kv, " heads, ff ", s.n_ff, ", vocabulary ",
         s.n_vocab, s.tied_output ? ", tied output" : "", ") this run trains");
  }
  read_tensors_from_gguf(model_file, *layout_, "", params_);
}

void Trainer::set_loss(std::unique_ptr<TrainingLoss> loss) {
  loss_ = std::move(loss);
}

void Trainer::set_steps(int64_t steps) {
  check_positive("TrainOptions::steps", steps);
  options_.steps = steps;
}

void Trainer::set_evaluation(int64_t every, int64_t tokens) {
  if (every < 0 || tokens < 0) {
    fail("train: TrainOptions::eval_every and TrainOptions::eval_tokens must not be negative");
  }
  options_.eval_every = every;
  options_.eval_tokens = tokens;
}

std::string Trainer::set_gemm_backend(GemmBackend requested) {
  GemmBackendChoice choice = resolve_gemm_backend(requested, bf16_gemm_support());
  options_.gemm = choice.backend;
  model_->set_gemm_backend(choice.backend);
  return std::move(choice.notice);
}

StepResult Trainer::step() {
  const int64_t batch = options_.batch;
  const int64_t seq_len = options_.seq_len;
  sample_windows(corpus_.train, batch, seq_len, rng_, inputs_, targets_);
  const std::span<float> logits = model_->forward(params_.data(), inputs_, batch, seq_len, pool_);
  const LossBatch loss_batch{inputs_, targets_, batch, seq_len};
  StepResult result;
  result.loss = loss_->evaluate(logits, options_.shape.n_vocab, loss_batch, logits.data(), pool_);
  if (!std::isfinite(result.loss)) {
    fail("train: the loss became ", result.loss, " at step ", step_ + 1,
         "; lower TrainOptions::lr or TrainOptions::clip and start again (or resume from an "
         "earlier checkpoint)");
  }
  std::fill(grads_.begin(), grads_.end(), 0.0f);
  model_->backward(params_.data(), logits.data(), grads_.data(), pool_);
  result.grad_norm = gradient_norm(grads_, pool_);
  result.lr = options_.schedule().at(step_);
  adamw_update(*layout_, options_.adam, result.lr, step_ + 1,
               clip_scale(result.grad_norm, options_.clip), params_, grads_, m_, v_, pool_);
  ++step_;
  tokens_seen_ += static_cast<uint64_t>(batch * seq_len);
  result.step = step_;
  return result;
}

double Trainer::evaluate() {
  const int64_t seq_len = options_.seq_len;
  const int64_t windows = evaluation_windows(corpus_.eval, seq_len, options_.eval_tokens);
  if (windows < 1 || options_.eval_tokens == 0) return std::numeric_limits<double>::quiet_NaN();
  double weighted = 0.0;
  for (int64_t first = 0; first < windows; first += options_.batch) {
    const int64_t batch = std::min(options_.batch, windows - first);
    inputs_.resize(static_cast<size_t>(batch * seq_len));
    targets_.resize(inputs_.size());
    for (int64_t b = 0; b < batch; ++b) {
      const auto start = static_cast<ptrdiff_t>((first + b) * (seq_len + 1));
      std::copy_n(corpus_.eval.begin() + start, seq_len, inputs_.begin() + b * seq_len);
      std::copy_n(corpus_.eval.begin() + start + 1, seq_len, targets_.begin() + b * seq_len);
    }
    const std::span<float> logits = model_->forward(params_.data(), inputs_, batch, seq_len, pool_);
    const LossBatch loss_batch{inputs_, targets_, batch, seq_len};
    weighted += loss_->evaluate(logits, options_.shape.n_vocab, loss_batch, nullptr, pool_) *
                static_cast<double>(batch);
  }
  return weighted / static_cast<double>(windows);
}

void Trainer::save_checkpoint(const std::string& path, const GgufReader* tokenizer) const {
  const TrainState state{step_, rng_.state(), tokens_seen_, corpus_.fingerprint(),
                         std::string(loss_->name())};
  write_checkpoint(path, *layout_, options_, state, params_, m_, v_, tokenizer);
}

void Trainer::write_model(const std::string& path, DType type, const GgufReader* tokenizer,
                          std::string_view name) const {
  GgufWriter writer;
  add_model_to_gguf(writer, *layout_, params_, type, tokenizer, name);
  writer.write(path);
}

}  // namespace specula

#include "online/online_distiller.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "gguf/gguf_writer.h"
#include "learn/model_io.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;

// Learner sleep while the buffer is empty.
constexpr auto kIdlePause = std::chrono::milliseconds(10);
// Probabilities below this are stored as this (their log stays finite).
constexpr double kProbabilityFloor = 1e-30;

void write_all(int fd, const std::vector<uint8_t>& bytes, const std::string& where) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(where, ": cannot write ", bytes.size(), " bytes: ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::unique_ptr<Model> model_from_gguf_bytes(const std::vector<uint8_t>& bytes,
                                             const std::string& label) {
  std::unique_ptr<GgufReader> reader;
  // An anonymous memory file: mapped like any model file, gone when unmapped.
  const int fd = ::memfd_create("specula-online-draft", MFD_CLOEXEC);
  if (fd >= 0) {
    try {
      write_all(fd, bytes, label);
      reader = GgufReader::open("/proc/self/fd/" + std::to_string(fd));
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);  // the mapping keeps the memory
  } else {
    // No memfd (an old kernel or a sandbox): a temporary file, deleted as
    // soon as it is mapped.
    std::string path =
        (std::filesystem::temp_directory_path() / "specula-online-draft-XXXXXX").string();
    const int tmp = ::mkstemp(path.data());
    if (tmp < 0) fail(label, ": cannot create a temporary file: ", std::strerror(errno));
    try {
      write_all(tmp, bytes, path);
      reader = GgufReader::open(path);
    } catch (...) {
      ::close(tmp);
      ::unlink(path.c_str());
      throw;
    }
    ::close(tmp);
    ::unlink(path.c_str());
  }
  return Model::from_gguf(std::shared_ptr<const GgufReader>(std::move(reader)));
}

void validate_online_distill_options(const OnlineDistillOptions& o) {
  // The public fields are named as a library user sets them; the CLI maps
  // these names to its --osd-* flags.
  constexpr const char* kField = "EngineConfig::online_distill.";
  if (o.threads < 1 || o.threads > 256) {
    fail(kField, "threads is ", o.threads, ": give 1 to 256 learner threads");
  }
  if (o.memory_bytes < 4096 || o.memory_bytes > (int64_t{1} << 40)) {
    fail(kField, "memory_bytes is ", o.memory_bytes,
         ": the replay buffer needs 4 KiB to 1 TiB (1048576 MiB)");
  }
  if (!(o.cpu_fraction > 0.0 && o.cpu_fraction <= 1.0)) {
    fail(kField, "cpu_fraction is ", o.cpu_fraction, ": give a share of one core in (0, 1]");
  }
  if (!(o.learning_rate > 0.0f && o.learning_rate < 1.0f)) {
    fail(kField, "learning_rate is ", o.learning_rate, ": give a rate in (0, 1)");
  }
  if (o.warmup_steps < 0) fail(kField, "warmup_steps is ", o.warmup_steps, ": give >= 0 steps");
  if (!(o.average_decay >= 0.0 && o.average_decay < 1.0)) {
    fail(kField, "average_decay is ", o.average_decay, ": give a decay in [0, 1) (0: off)");
  }
  if (!(o.replay > 0.0)) {
    fail(kField, "replay is ", o.replay, ": give > 0 steps per stored window");
  }
  if (o.publish_every < 1) {
    fail(kField, "publish_every is ", o.publish_every, ": it must be >= 1 step");
  }
  if (!distill_divergence_from_name(o.loss)) {
    fail(kField, "loss is '", o.loss, "': give kl or tvd");
  }
  if (!(o.temperature > 0.0f)) {
    fail(kField, "temperature is ", o.temperature, ": it must be > 0");
  }
  if (o.top_k < 0) fail(kField, "top_k is ", o.top_k, ": give >= 1 ids, or 0 for whole rows");
  if (o.window < 2) fail(kField, "window is ", o.window, ": a window needs >= 2 tokens");
  if (o.batch < 1) fail(kField, "batch is ", o.batch, ": it must be >= 1 window per step");
  if (!(o.clip >= 0.0f)) fail("the online-distillation gradient clip is ", o.clip, ": give >= 0");
  if (!(o.weight_decay >= 0.0f)) {
    fail("the online-distillation weight decay is ", o.weight_decay, ": give >= 0");
  }
  if (o.publish_type != DType::kF32 && o.publish_type != DType::kF16) {
    fail("online distillation publishes F32 or F16 weights, not ", dtype_name(o.publish_type));
  }
}

OnlineDistiller::OnlineDistiller(const Model& draft, const OnlineDistillOptions& options)
    : draft_(draft),
      options_(options),
      rng_(options.seed),
      buffer_(static_cast<size_t>(std::max<int64_t>(options.memory_bytes, 0))) {
  validate_online_distill_options(options_);
  loss_ = *distill_divergence_from_name(options_.loss);
  const GgufReader& file = draft.file();
  const TransformerShape shape = read_transformer_shape(file);
  layout_ = std::make_unique<ParameterLayout>(shape);
  params_.resize(layout_->total());
  read_tensors_from_gguf(file, *layout_, "", params_);
  grads_.assign(params_.size(), 0.0f);
  adam_m_.assign(params_.size(), 0.0f);
  adam_v_.assign(params_.size(), 0.0f);
  if (options_.average_decay > 0.0) average_ = params_;
  model_ = std::make_unique<Transformer<float>>(*layout_);
  if (options_.threads > 1) pool_ = std::make_unique<ThreadPool>(options_.threads);
  n_vocab_ = shape.n_vocab;
  top_k_ = options_.top_k == 0 ? n_vocab_ : std::min(options_.top_k, n_vocab_);
  window_ = std::min(options_.window, shape.n_ctx);
}

OnlineDistiller::~OnlineDistiller() {
  stop();
}

void OnlineDistiller::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(thread_mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void OnlineDistiller::stop() {
  {
    std::lock_guard<std::mutex> lock(thread_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OnlineDistiller::run() {
  std::unique_lock<std::mutex> lock(thread_mutex_);
  while (!stopping_) {
    lock.unlock();
    const Clock::time_point start = Clock::now();
    bool worked = false;
    try {
      if (has_fresh_data()) worked = step();
    } catch (const std::exception& e) {
      // Learning is an optimisation: generation goes on with the weights it has.
      log_warn("online distillation stopped: ", e.what());
      lock.lock();
      break;
    }
    const std::chrono::duration<double> busy = Clock::now() - start;
    lock.lock();
    if (stopping_) break;
    // Duty cycle: busy / (busy + pause) = cpu_fraction.
    const auto pause = worked ? std::chrono::duration_cast<Clock::duration>(
                                    busy * ((1.0 - options_.cpu_fraction) / options_.cpu_fraction))
                              : std::chrono::duration_cast<Clock::duration>(kIdlePause);
    wake_.wait_for(lock, pause, [this] { return stopping_; });
  }
}

bool OnlineDistiller::has_fresh_data() const {
  const uint64_t stored = stored_.load(std::memory_order_relaxed);
  if (buffer_.size() < static_cast<size_t>(options_.batch)) return false;
  return static_cast<double>(step_count_.load(std::memory_order_relaxed)) <
         options_.replay * static_cast<double>(stored);
}

void OnlineDistiller::observe(std::span<const int32_t> context, int32_t first_position,
                              std::span<const float> target_logits, int32_t n_rows,
                              int32_t n_vocab) {
  if (n_rows <= 0) return;
  if (n_vocab != n_vocab_ ||
      target_logits.size() < static_cast<size_t>(n_rows) * static_cast<size_t>(n_vocab)) {
    fail("online distillation: the target gives rows of ", n_vocab, " logits, the draft has ",
         n_vocab_, " tokens");
  }
  add_rows(context, first_position, target_logits, n_rows, n_vocab);
}

void OnlineDistiller::add_rows(std::span<const int32_t> context, int32_t first_position,
                               std::span<const float> target_logits, int32_t n_rows,
                               int32_t n_vocab) {
  observed_rows_.fetch_add(static_cast<uint64_t>(n_rows), std::memory_order_relaxed);
  // Row i scores the token after the input at index first_position + i - 1;
  // the inputs the rows need are context[0 .. end).
  const int64_t end = static_cast<int64_t>(first_position) + n_rows - 1;
  const int32_t first_row = first_position >= 1 ? 0 : 1;
  if (first_row >= n_rows || static_cast<int64_t>(context.size()) < end) return;
  const int64_t first_input = static_cast<int64_t>(first_position) + first_row - 1;

  const auto pending_size = static_cast<int64_t>(pending_.tokens.size());
  bool continues = pending_size > 0 && first_input >= pending_start_ &&
                   pending_start_ + pending_size <= end && end - pending_start_ <= window_ &&
                   (pending_.target_index.empty() ||
                    first_input - pending_start_ > pending_.target_index.back());
  if (continues) {
    continues = std::equal(pending_.tokens.begin(), pending_.tokens.end(),
                           context.begin() + pending_start_);
  }
  if (!continues) {
    flush_pending();
    // Half a window of context before the first row leaves room for the
    // rows of the next steps of this sequence.
    pending_start_ = std::max<int64_t>(0, std::max(first_input - window_ / 2, end - window_));
  }
  for (int64_t i = pending_start_ + static_cast<int64_t>(pending_.tokens.size()); i < end; ++i) {
    pending_.tokens.push_back(context[static_cast<size_t>(i)]);
  }
  for (int32_t row = first_row; row < n_rows; ++row) {
    const int64_t input = static_cast<int64_t>(first_position) + row - 1;
    if (input < pending_start_) continue;  // more rows than a window holds
    pending_.target_index.push_back(static_cast<int32_t>(input - pending_start_));
    store_distribution(target_logits.subspan(static_cast<size_t>(row) * n_vocab, n_vocab));
  }
  if (static_cast<int64_t>(pending_.tokens.size()) >= window_) flush_pending();
}

void OnlineDistiller::store_distribution(std::span<const float> logits) {
  const auto n_vocab = static_cast<size_t>(n_vocab_);
  softmax_.resize(n_vocab);
  const double inverse_temperature = 1.0 / options_.temperature;
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (size_t i = 0; i < n_vocab; ++i) {
    softmax_[i] = std::exp((static_cast<double>(logits[i]) - max_logit) * inverse_temperature);
    sum += softmax_[i];
  }
  for (double& p : softmax_) p /= sum;

  if (top_k_ >= n_vocab_) {  // whole rows: probs only, ids implicit
    for (double p : softmax_) pending_.probs.push_back(static_cast<float>(p));
    pending_.tail.push_back(0.0f);
    return;
  }
  order_.resize(n_vocab);
  std::iota(order_.begin(), order_.end(), 0);
  const auto more_probable = [this](int32_t a, int32_t b) {
    return softmax_[a] > softmax_[b] || (softmax_[a] == softmax_[b] && a < b);
  };
  std::nth_element(order_.begin(), order_.begin() + top_k_, order_.end(), more_probable);
  double kept = 0.0;
  for (int32_t k = 0; k < top_k_; ++k) {
    const int32_t id = order_[k];
    pending_.ids.push_back(id);
    pending_.probs.push_back(static_cast<float>(softmax_[id]));
    kept += softmax_[id];
  }
  pending_.tail.push_back(static_cast<float>(std::max(0.0, 1.0 - kept)));
}

void OnlineDistiller::flush_pending() {
  if (!pending_.target_index.empty()) {
    pending_.top_k = top_k_ >= n_vocab_ ? 0 : top_k_;
    pending_.tokens.shrink_to_fit();
    pending_.target_index.shrink_to_fit();
    pending_.ids.shrink_to_fit();
    pending_.probs.shrink_to_fit();
    pending_.tail.shrink_to_fit();
    if (buffer_.try_push(std::move(pending_))) {
      stored_.fetch_add(1, std::memory_order_relaxed);
    } else {
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  pending_ = ReplaySample{};
}

void OnlineDistiller::end_sequence() {
  flush_pending();
}

bool OnlineDistiller::step() {
  std::lock_guard<std::mutex> lock(train_mutex_);
  const size_t n_samples = buffer_.draw(static_cast<size_t>(options_.batch), rng_, batch_);
  if (n_samples == 0) return false;
  const auto n_vocab = static_cast<size_t>(n_vocab_);

  // One batch of windows of the longest window's length; shorter ones are
  // padded at the end, which causal attention keeps from the rows before.
  size_t seq_len = 0;
  size_t n_targets = 0;
  for (const ReplaySample& sample : batch_) {
    seq_len = std::max(seq_len, sample.tokens.size());
    n_targets += sample.n_targets();
  }
  tokens_.assign(n_samples * seq_len, 0);
  for (size_t b = 0; b < n_samples; ++b) {
    std::copy(batch_[b].tokens.begin(), batch_[b].tokens.end(), tokens_.begin() + b * seq_len);
  }
  const std::span<float> logits =
      model_->forward(params_.data(), tokens_, static_cast<int64_t>(n_samples),
                      static_cast<int64_t>(seq_len), pool_.get());

  // The rows that have a teacher, gathered; the teacher's distribution p is
  // given to distill_divergence as logits T log p, whose softmax at
  // temperature T is p again.
  const double temperature = options_.temperature;
  student_rows_.resize(n_targets * n_vocab);
  teacher_rows_.resize(n_targets * n_vocab);
  target_rows_.resize(n_targets);
  size_t r = 0;
  for (size_t b = 0; b < n_samples; ++b) {
    const ReplaySample& sample = batch_[b];
    for (size_t t = 0; t < sample.n_targets(); ++t, ++r) {
      const size_t row = b * seq_len + static_cast<size_t>(sample.target_index[t]);
      target_rows_[r] = row;
      std::copy_n(logits.begin() + static_cast<ptrdiff_t>(row * n_vocab), n_vocab,
                  student_rows_.begin() + static_cast<ptrdiff_t>(r * n_vocab));
      float* teacher = teacher_rows_.data() + r * n_vocab;
      if (sample.top_k == 0) {
        const float* probs = sample.probs.data() + t * n_vocab;
        for (size_t i = 0; i < n_vocab; ++i) {
          teacher[i] = static_cast<float>(temperature *
                                          std::log(std::max<double>(probs[i], kProbabilityFloor)));
        }
        continue;
      }
      const auto k = static_cast<size_t>(sample.top_k);
      const double others = static_cast<double>(n_vocab - k);
      const double spread = std::max(sample.tail[t] / others, kProbabilityFloor);
      std::fill_n(teacher, n_vocab, static_cast<float>(temperature * std::log(spread)));
      for (size_t j = 0; j < k; ++j) {
        teacher[sample.ids[t * k + j]] = static_cast<float>(
            temperature * std::log(std::max<double>(sample.probs[t * k + j], kProbabilityFloor)));
      }
    }
  }
  const double loss = distill_divergence<float>(
      student_rows_.data(), teacher_rows_.data(), static_cast<int64_t>(n_targets),
      static_cast<int64_t>(n_vocab), loss_, temperature, student_rows_.data(), pool_.get());

  // d(loss)/d(logits): the gathered gradients, zero at rows without a teacher.
  std::fill(logits.begin(), logits.end(), 0.0f);
  for (size_t t = 0; t < n_targets; ++t) {
    std::copy_n(student_rows_.begin() + static_cast<ptrdiff_t>(t * n_vocab), n_vocab,
                logits.begin() + static_cast<ptrdiff_t>(target_rows_[t] * n_vocab));
  }
  std::fill(grads_.begin(), grads_.end(), 0.0f);
  model_->backward(params_.data(), logits.data(), grads_.data(), pool_.get());
  const float scale = clip_scale(gradient_norm(grads_, pool_.get()), options_.clip);
  AdamWOptions adam;
  adam.weight_decay = options_.weight_decay;
  ++steps_;
  const float lr =
      options_.warmup_steps > 0 && steps_ < static_cast<uint64_t>(options_.warmup_steps)
          ? options_.learning_rate * static_cast<float>(steps_) /
                static_cast<float>(options_.warmup_steps)
          : options_.learning_rate;
  adamw_update(*layout_, adam, lr, static_cast<int64_t>(steps_), scale, params_, grads_, adam_m_,
               adam_v_, pool_.get());
  if (!average_.empty()) {
    const auto keep = static_cast<float>(options_.average_decay);
    for (size_t k = 0; k < params_.size(); ++k) {
      average_[k] = keep * average_[k] + (1.0f - keep) * params_[k];
    }
  }
  step_count_.store(steps_, std::memory_order_relaxed);
  last_loss_.store(loss, std::memory_order_relaxed);

  if (steps_ % static_cast<uint64_t>(options_.publish_every) == 0) {
    publish_locked();
  }
  return true;
}

void OnlineDistiller::publish() {
  std::lock_guard<std::mutex> lock(train_mutex_);
  publish_locked();
}

void OnlineDistiller::write_locked(GgufWriter& writer) const {
  const GgufReader& file = draft_.file();
  // Tiny test models carry no tokenizer; real drafts keep theirs, so that
  // the published model passes the same vocabulary checks.
  const GgufReader* tokenizer = file.find("tokenizer.ggml.tokens") != nullptr ? &file : nullptr;
  const std::string name = str_cat(file.get_string("general.name").value_or("draft"),
                                   " (online distilled, step ", steps_, ")");
  // The running average when there is one: single steps on a few windows
  // are noisy, and drafting with a noisy snapshot costs acceptance.
  add_model_to_gguf(writer, *layout_, average_.empty() ? params_ : average_, options_.publish_type,
                    tokenizer, name);
}

void OnlineDistiller::save(const std::string& path) {
  GgufWriter writer;
  {
    std::lock_guard<std::mutex> lock(train_mutex_);
    write_locked(writer);
  }
  writer.write(path);
}

void OnlineDistiller::publish_locked() {
  GgufWriter writer;
  write_locked(writer);
  std::shared_ptr<const Model> model = model_from_gguf_bytes(
      writer.to_bytes(), str_cat(draft_.file().path(), " (online distilled)"));
  std::lock_guard<std::mutex> lock(publish_mutex_);
  published_ = std::move(model);
  version_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const Model> OnlineDistiller::published(uint64_t* version) const {
  std::lock_guard<std::mutex> lock(publish_mutex_);
  if (version != nullptr) *version = version_.load(std::memory_order_acquire);
  return published_;
}

OnlineDistillStats OnlineDistiller::stats() const {
  OnlineDistillStats s;
  s.steps = step_count_.load(std::memory_order_relaxed);
  s.publishes = version_.load(std::memory_order_acquire);
  s.observed_rows = observed_rows_.load(std::memory_order_relaxed);
  s.stored_samples = stored_.load(std::memory_order_relaxed);
  s.dropped_samples = dropped_.load(std::memory_order_relaxed);
  s.evicted_samples = buffer_.evicted();
  s.buffer_bytes = buffer_.bytes();
  s.buffer_samples = buffer_.size();
  s.last_loss = last_loss_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace specula

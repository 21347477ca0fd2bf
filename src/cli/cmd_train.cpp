// `specula train --vocab VOCAB.gguf --input FILES... --out MODEL.gguf`:
// trains a llama model from scratch on text (see train/trainer.h and
// docs/training.md). Progress on stderr; checkpoints every N steps and on
// SIGINT/SIGTERM; --resume continues a checkpoint exactly.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command_registry.h"
#include "cli/seed_flag.h"
#include "cli/stop_on_signals.h"
#include "cli/train_flags.h"
#include "cli/training_run.h"
#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "learn/gemm_dnnl.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace specula::cli {
namespace {

struct TrainFlags : RunFlags, DataFlags {
  TrainOptions train;
  std::string vocab;
  std::string init;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buffer;
}

// Flags that fix the model or the trajectory: on --resume they come from the
// checkpoint; giving them again is fine (the same command line resumes), but
// a different value is an error.
struct FixedFlag {
  const char* flag;
  double (*value)(const TrainOptions&);
};
constexpr FixedFlag kFixedOnResume[] = {
    {"--embd", [](const TrainOptions& o) { return double(o.shape.n_embd); }},
    {"--layers", [](const TrainOptions& o) { return double(o.shape.n_layer); }},
    {"--heads", [](const TrainOptions& o) { return double(o.shape.n_head); }},
    {"--heads-kv", [](const TrainOptions& o) { return double(o.shape.n_head_kv); }},
    {"--ff", [](const TrainOptions& o) { return double(o.shape.n_ff); }},
    {"--ctx", [](const TrainOptions& o) { return double(o.shape.n_ctx); }},
    {"--rope-base", [](const TrainOptions& o) { return double(o.shape.rope_freq_base); }},
    {"--tied", [](const TrainOptions& o) { return double(o.shape.tied_output); }},
    {"--batch", [](const TrainOptions& o) { return double(o.batch); }},
    {"--seq-len", [](const TrainOptions& o) { return double(o.seq_len); }},
    {"--lr", [](const TrainOptions& o) { return double(o.lr); }},
    {"--min-lr", [](const TrainOptions& o) { return double(o.min_lr); }},
    {"--warmup", [](const TrainOptions& o) { return double(o.warmup); }},
    {"--weight-decay", [](const TrainOptions& o) { return double(o.adam.weight_decay); }},
    {"--clip", [](const TrainOptions& o) { return double(o.clip); }},
    {"--seed", [](const TrainOptions& o) { return double(o.seed); }},
};

// The options of a new run: the flags, with the shape of --init's file.
TrainOptions new_run_options(const TrainFlags& flags, const CLI::App& sub,
                             const GgufReader* init_file, int32_t n_vocab) {
  TrainOptions options = flags.train;
  if (init_file != nullptr) {
    options.shape = shape_for_init(*init_file, sub, options.shape, "train");
    if (options.shape.n_vocab != n_vocab) {
      fail("train: ", flags.init, " has a vocabulary of ", options.shape.n_vocab, " tokens but ",
           flags.vocab, " has ", n_vocab, ": --init needs a model of the same vocabulary");
    }
  }
  options.shape.n_vocab = n_vocab;
  return validate_train_options(options);
}

// --resume: the checkpoint's run, with --steps and the evaluation flags
// when given. The flags that fix the run, when given, must agree with it.
std::unique_ptr<Trainer> resume_trainer(const TrainFlags& flags, const CLI::App& sub,
                                        TokenCorpus corpus, int32_t n_vocab, ThreadPool* pool) {
  std::unique_ptr<Trainer> trainer = Trainer::resume(flags.checkpoint, std::move(corpus), pool);
  TrainOptions given = flags.train;
  given.shape.n_vocab = n_vocab;
  if (given.shape.n_head_kv == 0) given.shape.n_head_kv = given.shape.n_head;
  for (const FixedFlag& fixed : kFixedOnResume) {
    if (sub.count(fixed.flag) == 0) continue;
    if (fixed.flag == std::string_view("--ff") && given.shape.n_ff == 0) continue;
    if (fixed.value(given) != fixed.value(trainer->options())) {
      fail("train: ", fixed.flag, " ", fixed.value(given), " differs from the checkpoint's ",
           fixed.value(trainer->options()),
           ": a resumed run keeps the model's shape and the optimizer settings (only --steps, "
           "--eval-every, --eval-tokens, --threads and the output flags may change)");
    }
  }
  if (trainer->options().shape.n_vocab != n_vocab) {
    fail("train: ", flags.vocab, " has ", n_vocab, " tokens but the checkpoint's model has ",
         trainer->options().shape.n_vocab);
  }
  if (sub.count("--steps") > 0) trainer->set_steps(flags.train.steps);
  trainer->set_evaluation(
      sub.count("--eval-every") > 0 ? flags.train.eval_every : trainer->options().eval_every,
      sub.count("--eval-tokens") > 0 ? flags.train.eval_tokens : trainer->options().eval_tokens);
  return trainer;
}

std::unique_ptr<Trainer> make_trainer(const TrainFlags& flags, const CLI::App& sub,
                                      TokenCorpus corpus, int32_t n_vocab,
                                      const GgufReader* init_file, ThreadPool* pool) {
  if (flags.resume) return resume_trainer(flags, sub, std::move(corpus), n_vocab, pool);
  auto trainer = std::make_unique<Trainer>(new_run_options(flags, sub, init_file, n_vocab),
                                           std::move(corpus), pool);
  if (init_file != nullptr) trainer->load_parameters(*init_file);
  return trainer;
}

// "train: llama 4 layers x 256 embd, ...: 3.21M parameters; 8 x 128 tokens
// per step, from step 0 of 1000, 8 threads".
void print_plan(const Trainer& trainer, const TrainFlags& flags, bool from_init, int32_t threads) {
  const TrainOptions& o = trainer.options();
  const TransformerShape& s = o.shape;
  std::fprintf(stderr,
               "train: llama %d layers x %d embd, %d heads (%d kv), ff %d, vocab %d, ctx %d: "
               "%.2fM parameters; %lld x %lld tokens per step, %s step %lld of %lld, %d threads\n",
               s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab, s.n_ctx,
               static_cast<double>(trainer.layout().total()) / 1e6, static_cast<long long>(o.batch),
               static_cast<long long>(o.seq_len),
               flags.resume ? "resuming after" : (from_init ? "from --init weights at" : "from"),
               static_cast<long long>(trainer.steps_done()), static_cast<long long>(o.steps),
               threads);
}

// The step loop with train's progress lines: the mean loss since the last
// line, the latest held-out loss, tokens per second and the time left.
void train_steps(Trainer& trainer, const TrainFlags& flags, const RunOutput& output,
                 const StopOnSignals& stop) {
  const TrainOptions& o = trainer.options();
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  double train_seconds = 0.0;
  int64_t train_steps = 0;
  run_steps(trainer, flags, output, stop, [&](const ProgressLine& line) {
    train_seconds += line.seconds;
    train_steps += line.steps;
    const double tokens_per_second =
        static_cast<double>(line.steps * o.batch * o.seq_len) / line.seconds;
    const double eta = train_seconds / static_cast<double>(train_steps) *
                       static_cast<double>(line.total - line.result.step);
    if (line.eval_loss) eval_loss = *line.eval_loss;
    char eval_text[32] = "-";
    if (!std::isnan(eval_loss)) std::snprintf(eval_text, sizeof eval_text, "%.4f", eval_loss);
    std::fprintf(stderr,
                 "step %lld/%lld | loss %.4f | eval %s | lr %.2e | |g| %.2f | %.0f tok/s | "
                 "ETA %s\n",
                 static_cast<long long>(line.result.step), static_cast<long long>(line.total),
                 line.mean_loss, eval_text, line.result.lr, line.result.grad_norm,
                 tokens_per_second, format_duration(eta).c_str());
  });
}

void run(const TrainFlags& flags, const CLI::App& sub) {
  const DType type = output_type(flags, "train");
  const GemmBackend gemm = check_run_flags(flags, "train");
  check_output_path(flags.out);
  const std::unique_ptr<GgufReader> vocab_file = GgufReader::open(flags.vocab);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*vocab_file);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<GgufReader> init_file;
  if (!flags.init.empty() && !flags.resume) init_file = GgufReader::open(flags.init);
  // Fail fast, before a large corpus is tokenized.
  if (flags.resume) {
    check_checkpoint_exists(flags, "train");
  } else {
    new_run_options(flags, sub, init_file.get(), tokenizer->n_vocab());
  }
  TokenCorpus corpus = tokenize_corpus(*tokenizer, corpus_options(flags, sub, "train"));
  std::fprintf(stderr, "train: %.1f MB of text -> %zu training + %zu held-out tokens (%.1f s)\n",
               static_cast<double>(corpus.text_bytes) / 1e6, corpus.train.size(),
               corpus.eval.size(), seconds_since(start));

  ThreadPool pool(thread_count(flags));
  std::unique_ptr<Trainer> trainer =
      make_trainer(flags, sub, std::move(corpus), tokenizer->n_vocab(), init_file.get(), &pool);
  use_gemm_backend(*trainer, gemm, "train", "");
  print_plan(*trainer, flags, init_file != nullptr, pool.n_threads());
  const RunOutput output{"train", "model", type, vocab_file.get()};
  const StopOnSignals stop_on_signals;
  train_steps(*trainer, flags, output, stop_on_signals);
  const TransformerShape& s = trainer->options().shape;
  const std::string name =
      flags.name.empty() ? str_cat("specula trained llama ", s.n_layer, "x", s.n_embd) : flags.name;
  save_at_end(*trainer, flags, flags, output, stop_on_signals.stop_requested(), name);
  trainer->write_model(flags.out, type, vocab_file.get(), name);
  std::fprintf(stderr, "train: wrote %s (%s) after %lld steps, %llu tokens seen (%.1f s)\n",
               flags.out.c_str(), flags.type.c_str(), static_cast<long long>(trainer->steps_done()),
               static_cast<unsigned long long>(trainer->tokens_seen()), seconds_since(start));
}

void add_flags(CLI::App& sub, TrainFlags& flags) {
  TrainOptions& t = flags.train;
  sub.add_option("--vocab", flags.vocab, "GGUF vocabulary (from `specula tokenizer train`)")
      ->required();
  add_data_flags(sub, flags, "train", "model");
  add_shape_flags(sub, t.shape, "Model");
  sub.add_option("--ctx", t.shape.n_ctx, "Context length of the model")->capture_default_str();
  add_init_flag(sub, flags.init);
  add_optimizer_flags(sub, t);
  sub.add_option("--seed", t.seed, "Seed of the weights and the data order")
      ->check(seed_value())
      ->capture_default_str();
  add_evaluation_flags(sub, t);
  add_run_flags(sub, flags);
}

const bool registered = register_command_with_flags<TrainFlags>(
    "train", "Train a llama model from scratch on text files (forward/backward in C++, AdamW)",
    add_flags, run_naming_flags<TrainFlags, run>);

}  // namespace
}  // namespace specula::cli

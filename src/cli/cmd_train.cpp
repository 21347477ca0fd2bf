// `specula train --vocab VOCAB.gguf --input FILES... --out MODEL.gguf`:
// trains a llama model from scratch on text (see train/trainer.h and
// docs/training.md). Progress on stderr; checkpoints every N steps and on
// SIGINT/SIGTERM; --resume continues a checkpoint exactly.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/command_registry.h"
#include "cli/stop_on_signals.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "learn/gemm_dnnl.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace specula::cli {
namespace {

struct TrainFlags : RunFlags {
  TrainOptions train;
  std::string vocab;
  std::vector<std::string> inputs;
  std::vector<std::string> eval_inputs;
  double eval_fraction = 0.05;
  std::string out;
  std::string type = "f16";
  std::string name;
  std::string init;
};

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

std::unique_ptr<Trainer> make_trainer(const TrainFlags& flags, const CLI::App& sub,
                                      TokenCorpus corpus, int32_t n_vocab,
                                      const GgufReader* init_file, ThreadPool* pool) {
  if (!flags.resume) {
    auto trainer = std::make_unique<Trainer>(new_run_options(flags, sub, init_file, n_vocab),
                                             std::move(corpus), pool);
    if (init_file != nullptr) trainer->load_parameters(*init_file);
    return trainer;
  }
  if (flags.checkpoint.empty()) fail("train: --resume needs --checkpoint PATH");
  if (!std::filesystem::exists(flags.checkpoint)) {
    fail("train: no checkpoint at ", flags.checkpoint,
         " to resume; run without --resume to start a new run");
  }
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

void run(const TrainFlags& flags, const CLI::App& sub) {
  const auto type = dtype_from_name(flags.type);
  if (!type || (*type != DType::kF32 && *type != DType::kF16)) {
    fail("train: --type ", flags.type, " is not supported; use f32 or f16");
  }
  if (flags.checkpoint_every < 0 || flags.log_every < 1) {
    fail("train: --checkpoint-every must be >= 0 and --log-every >= 1");
  }
  if (flags.checkpoint_every > 0 && flags.checkpoint.empty()) {
    fail("train: --checkpoint-every needs --checkpoint PATH");
  }
  const GemmBackend gemm = parse_gemm_backend(flags.gemm, "train: --gemm");
  const std::unique_ptr<GgufReader> vocab_file = GgufReader::open(flags.vocab);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*vocab_file);
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [](std::chrono::steady_clock::time_point from) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  };

  std::unique_ptr<GgufReader> init_file;
  if (!flags.init.empty() && !flags.resume) init_file = GgufReader::open(flags.init);
  if (!flags.resume) {  // fail fast, before a large corpus is tokenized
    new_run_options(flags, sub, init_file.get(), tokenizer->n_vocab());
  }
  CorpusOptions corpus_options{flags.inputs, flags.eval_inputs, flags.eval_fraction};
  if (!flags.eval_inputs.empty() && sub.count("--eval-fraction") > 0) {
    fail("train: give either --eval-input or --eval-fraction, not both");
  }
  TokenCorpus corpus = tokenize_corpus(*tokenizer, corpus_options);
  std::fprintf(stderr, "train: %.1f MB of text -> %zu training + %zu held-out tokens (%.1f s)\n",
               static_cast<double>(corpus.text_bytes) / 1e6, corpus.train.size(),
               corpus.eval.size(), seconds(start));

  const int32_t threads =
      flags.threads > 0 ? flags.threads : static_cast<int32_t>(std::thread::hardware_concurrency());
  ThreadPool pool(std::max(1, threads));
  std::unique_ptr<Trainer> trainer =
      make_trainer(flags, sub, std::move(corpus), tokenizer->n_vocab(), init_file.get(), &pool);
  const std::string gemm_notice = trainer->set_gemm_backend(gemm);
  if (!gemm_notice.empty()) std::fprintf(stderr, "train: %s\n", gemm_notice.c_str());
  std::fprintf(stderr, "train: %s\n", describe_gemm_backend(trainer->gemm_backend()).c_str());
  const TrainOptions& o = trainer->options();
  const TransformerShape& s = o.shape;
  std::fprintf(stderr,
               "train: llama %d layers x %d embd, %d heads (%d kv), ff %d, vocab %d, ctx %d: "
               "%.2fM parameters; %lld x %lld tokens per step, %s step %lld of %lld, %d threads\n",
               s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff, s.n_vocab, s.n_ctx,
               static_cast<double>(trainer->layout().total()) / 1e6,
               static_cast<long long>(o.batch), static_cast<long long>(o.seq_len),
               flags.resume ? "resuming after" : (init_file ? "from --init weights at" : "from"),
               static_cast<long long>(trainer->steps_done()), static_cast<long long>(o.steps),
               pool.n_threads());

  const StopOnSignals stop_on_signals;
  double eval_loss = std::numeric_limits<double>::quiet_NaN();
  auto window_start = std::chrono::steady_clock::now();
  double train_seconds = 0.0;
  int64_t train_steps = 0;
  int64_t window_steps = 0;
  double window_loss = 0.0;
  while (trainer->steps_done() < trainer->options().steps && !g_stop_requested.load()) {
    const StepResult r = trainer->step();
    ++window_steps;
    window_loss += r.loss;
    const int64_t total = trainer->options().steps;
    const int64_t every = trainer->options().eval_every;
    const bool last = r.step == total;
    const bool evaluate = every > 0 && (r.step % every == 0 || last);
    const bool log = evaluate || r.step % flags.log_every == 0 || last;
    if (log) {
      const double elapsed = seconds(window_start);
      train_seconds += elapsed;
      train_steps += window_steps;
      const double tokens_per_second =
          static_cast<double>(window_steps * o.batch * o.seq_len) / elapsed;
      const double eta =
          train_seconds / static_cast<double>(train_steps) * static_cast<double>(total - r.step);
      if (evaluate) eval_loss = trainer->evaluate();
      char eval_text[32] = "-";
      if (!std::isnan(eval_loss)) std::snprintf(eval_text, sizeof eval_text, "%.4f", eval_loss);
      std::fprintf(stderr,
                   "step %lld/%lld | loss %.4f | eval %s | lr %.2e | |g| %.2f | %.0f tok/s | "
                   "ETA %s\n",
                   static_cast<long long>(r.step), static_cast<long long>(total),
                   window_loss / static_cast<double>(window_steps), eval_text, r.lr, r.grad_norm,
                   tokens_per_second, format_duration(eta).c_str());
      window_steps = 0;
      window_loss = 0.0;
    }
    if (flags.checkpoint_every > 0 && r.step % flags.checkpoint_every == 0 && !last) {
      trainer->save_checkpoint(flags.checkpoint, vocab_file.get());
    }
    if (log) window_start = std::chrono::steady_clock::now();
  }
  const std::string name =
      flags.name.empty() ? str_cat("specula trained llama ", s.n_layer, "x", s.n_embd) : flags.name;
  if (g_stop_requested.load()) {
    if (!flags.checkpoint.empty()) {
      trainer->save_checkpoint(flags.checkpoint, vocab_file.get());
      fail("train: interrupted after step ", trainer->steps_done(), "; checkpoint saved to ",
           flags.checkpoint, ": run the same command with --resume to continue");
    }
    trainer->write_model(flags.out, *type, vocab_file.get(), name);
    fail("train: interrupted after step ", trainer->steps_done(), "; the model so far is in ",
         flags.out, " (give --checkpoint PATH to be able to resume)");
  }
  if (!flags.checkpoint.empty()) trainer->save_checkpoint(flags.checkpoint, vocab_file.get());
  trainer->write_model(flags.out, *type, vocab_file.get(), name);
  std::fprintf(stderr, "train: wrote %s (%s) after %lld steps, %llu tokens seen (%.1f s)\n",
               flags.out.c_str(), flags.type.c_str(), static_cast<long long>(trainer->steps_done()),
               static_cast<unsigned long long>(trainer->tokens_seen()), seconds(start));
}

const bool registered = register_command({
    "train",
    "Train a llama model from scratch on text files (forward/backward in C++, AdamW)",
    [](CLI::App& sub) {
      auto f = std::make_shared<TrainFlags>();
      TrainOptions& t = f->train;
      sub.add_option("--vocab", f->vocab, "GGUF vocabulary (from `specula tokenizer train`)")
          ->required();
      sub.add_option("--input", f->inputs, "Text files to train on")->required();
      sub.add_option("--eval-input", f->eval_inputs, "Text files held out for evaluation");
      sub.add_option("--eval-fraction", f->eval_fraction,
                     "Without --eval-input: the tail fraction of the token stream held out")
          ->capture_default_str();
      sub.add_option("--out", f->out, "Model GGUF file to write")->required();
      sub.add_option("--type", f->type, "Matrix type of --out: f32 or f16")->capture_default_str();
      sub.add_option("--name", f->name, "general.name of the model");
      add_shape_flags(sub, t.shape, "Model");
      sub.add_option("--ctx", t.shape.n_ctx, "Context length of the model")->capture_default_str();
      add_init_flag(sub, f->init);
      add_optimizer_flags(sub, t);
      sub.add_option("--seed", t.seed, "Seed of the weights and the data order")
          ->capture_default_str();
      add_evaluation_flags(sub, t);
      add_run_flags(sub, *f);
      sub.callback([f, &sub] { run(*f, sub); });
    },
});

}  // namespace
}  // namespace specula::cli

// `specula distill --teacher T.gguf --input FILES... --out DRAFT.gguf`:
// trains a small draft (from scratch, or from --init's weights) to match a teacher's next-token
// distributions (train/distill_loss.h) on text, with the teacher's
// vocabulary and tokenizer, and reports the draft's acceptance rate against
// the teacher on held-out text before and after (train/distill_eval.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/command_registry.h"
#include "cli/distill_speed.h"
#include "cli/stop_on_signals.h"
#include "cli/train_flags.h"
#include "core/error.h"
#include "learn/distill_loss.h"
#include "learn/gemm_dnnl.h"
#include "model/model.h"
#include "sampling/sampling.h"
#include "tokenizer/tokenizer.h"
#include "train/distill_eval.h"
#include "train/trainer.h"

namespace specula::cli {
namespace {

struct DistillFlags : RunFlags {
  TrainOptions train;
  std::string teacher;
  std::vector<std::string> inputs;
  std::vector<std::string> eval_inputs;
  double eval_fraction = 0.05;
  std::string out;
  std::string type = "f16";
  std::string name;
  std::string loss = "tvd";
  double temperature = 1.0;
  double on_policy_fraction = 0.0;
  int64_t accept_window = 64;
  int64_t accept_windows = 16;
  std::string init;
  DistillSpeedOptions speed;
};

// Writes the student as it is now to flags.out, measures it against the
// teacher on the held-out stream (acceptance, then the speedup it gives)
// and prints both.
void measure_student(const char* when, const Trainer& trainer, const Model& teacher,
                     const DistillFlags& flags, DType type, ThreadPool* pool) {
  trainer.write_model(flags.out, type, &teacher.file(), "specula distilled draft");
  const std::unique_ptr<Model> student = Model::load(flags.out);
  const AcceptanceStats s = measure_acceptance(teacher, *student, trainer.corpus().eval,
                                               flags.accept_window, flags.accept_windows, pool);
  std::fprintf(stderr,
               "distill: acceptance %s: expected (T=1, 1-TVD) %.4f over %lld positions | greedy "
               "agreement %.4f over %lld positions\n",
               when, s.expected_acceptance, static_cast<long long>(s.positions), s.greedy_agreement,
               static_cast<long long>(s.greedy_positions));
  report_distill_speedup(when, teacher, *student, trainer.corpus().eval, flags.speed, *pool);
}

// Appends teacher continuations of corpus prefixes to the training stream
// until they make up `fraction` of it: each takes a prefix of seq_len / 2
// corpus tokens at a random position and samples seq_len / 2 + 1 more from
// the teacher (T = 1, no filters, seeded), and the whole window is added.
// kParallel continuations run as separate sequences of one batched forward,
// so each teacher weight is read once per kParallel sampled tokens.
void add_teacher_continuations(const Model& teacher, double fraction, const TrainOptions& o,
                               TokenCorpus& corpus, ThreadPool* pool) {
  if (fraction <= 0.0) return;
  constexpr int64_t kParallel = 32;
  const auto corpus_tokens = static_cast<double>(corpus.train.size());
  const auto wanted = static_cast<int64_t>(corpus_tokens * fraction / (1.0 - fraction));
  const int64_t prefix = std::max<int64_t>(1, o.seq_len / 2);
  const int64_t window = o.seq_len + 1;
  const std::vector<int32_t> source = corpus.train;
  if (static_cast<int64_t>(source.size()) <= prefix) {
    fail("distill: the training text has ", source.size(),
         " tokens, too few for teacher continuations of ", prefix, "-token prefixes");
  }
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  const int32_t n_vocab = teacher.config().n_vocab;
  Rng rng(o.seed ^ 0x6f6e706f6c696379ull);
  KvCache cache = teacher.make_cache(static_cast<int32_t>(window), static_cast<int32_t>(kParallel));
  std::vector<float> logits, probs(n_vocab);
  std::vector<BatchRow> rows;
  int64_t added = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  while (added < wanted) {
    const int64_t n = std::min(kParallel, (wanted - added + window - 1) / window);
    std::vector<std::vector<int32_t>> sequences(n);
    cache.clear();
    rows.clear();
    for (int64_t s = 0; s < n; ++s) {
      const auto at = static_cast<size_t>(rng.next_u64() % (source.size() - prefix + 1));
      sequences[s].assign(source.begin() + at, source.begin() + at + prefix);
      for (int64_t t = 0; t < prefix; ++t) {
        rows.push_back(
            {static_cast<int32_t>(s), static_cast<int32_t>(t), sequences[s][t], t == prefix - 1});
      }
    }
    for (int64_t length = prefix; length < window; ++length) {
      teacher.forward(rows, cache, logits, pool);  // n rows of logits, one per sequence
      rows.clear();
      for (int64_t s = 0; s < n; ++s) {
        logits_to_probs(std::span<const float>(logits).subspan(s * n_vocab, n_vocab), params,
                        std::span<float>(probs));
        const int32_t next = sample(probs, rng);
        sequences[s].push_back(next);
        rows.push_back(
            {static_cast<int32_t>(s), static_cast<int32_t>(length), next, length + 1 < window});
      }
    }
    for (const std::vector<int32_t>& sequence : sequences) {
      corpus.train.insert(corpus.train.end(), sequence.begin(), sequence.end());
    }
    added += n * window;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::seconds(10) || added >= wanted) {
      last_report = now;
      std::fprintf(stderr, "distill: teacher continuations %lld / %lld tokens (%.0f s)\n",
                   static_cast<long long>(std::min(added, wanted)), static_cast<long long>(wanted),
                   std::chrono::duration<double>(now - start).count());
    }
  }
  std::fprintf(stderr,
               "distill: added %lld teacher-generated tokens (%.0f%% of the training stream, "
               "%.1f s)\n",
               static_cast<long long>(added),
               100.0 * static_cast<double>(added) / static_cast<double>(corpus.train.size()),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void run(const DistillFlags& flags, const CLI::App& sub) {
  const auto type = dtype_from_name(flags.type);
  if (!type || (*type != DType::kF32 && *type != DType::kF16)) {
    fail("distill: --type ", flags.type, " is not supported; use f32 or f16");
  }
  const auto divergence = distill_divergence_from_name(flags.loss);
  if (!divergence) fail("distill: --loss ", flags.loss, " is not known; use kl or tvd");
  if (!(flags.temperature > 0.0)) fail("distill: --temperature must be > 0");
  if (!(flags.on_policy_fraction >= 0.0 && flags.on_policy_fraction < 1.0)) {
    fail("distill: --on-policy-fraction must be in [0, 1), not ", flags.on_policy_fraction);
  }
  if (flags.accept_windows < 1) fail("distill: --accept-windows must be >= 1");
  if (flags.checkpoint_every < 0 || flags.log_every < 1) {
    fail("distill: --checkpoint-every must be >= 0 and --log-every >= 1");
  }
  if ((flags.checkpoint_every > 0 || flags.resume) && flags.checkpoint.empty()) {
    fail("distill: --checkpoint-every and --resume need --checkpoint PATH");
  }
  const GemmBackend gemm = parse_gemm_backend(flags.gemm, "distill: --gemm");
  const std::unique_ptr<Model> teacher = Model::load(flags.teacher);
  const ModelConfig& tc = teacher->config();
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(teacher->file());
  TrainOptions options = flags.train;
  std::unique_ptr<GgufReader> init_file;
  if (!flags.init.empty() && !flags.resume) {
    init_file = GgufReader::open(flags.init);
    options.shape = shape_for_init(*init_file, sub, options.shape, "distill");
    if (options.shape.n_vocab != tc.n_vocab) {
      fail("distill: ", flags.init, " has a vocabulary of ", options.shape.n_vocab,
           " tokens but the teacher has ", tc.n_vocab,
           ": --init needs a draft of the teacher's vocabulary");
    }
  } else if (sub.count("--ctx") == 0) {
    options.shape.n_ctx = std::min<int32_t>(512, tc.n_ctx_train);
  }
  options.shape.n_vocab = tc.n_vocab;
  if (options.seq_len > tc.n_ctx_train) {
    fail("distill: --seq-len ", options.seq_len, " exceeds the teacher's context ", tc.n_ctx_train);
  }
  options = validate_train_options(options);
  if (flags.accept_window < 2 || flags.accept_window > options.shape.n_ctx ||
      flags.accept_window > tc.n_ctx_train) {
    fail("distill: --accept-window must be in [2, ", std::min(options.shape.n_ctx, tc.n_ctx_train),
         "]");
  }

  const int32_t threads =
      flags.threads > 0 ? flags.threads : static_cast<int32_t>(std::thread::hardware_concurrency());
  ThreadPool pool(std::max(1, threads));
  if (!flags.eval_inputs.empty() && sub.count("--eval-fraction") > 0) {
    fail("distill: give either --eval-input or --eval-fraction, not both");
  }
  TokenCorpus corpus =
      tokenize_corpus(*tokenizer, {flags.inputs, flags.eval_inputs, flags.eval_fraction});
  add_teacher_continuations(*teacher, flags.on_policy_fraction, options, corpus, &pool);
  std::fprintf(stderr, "distill: %zu training + %zu held-out tokens; teacher %s (%d layers x %d)\n",
               corpus.train.size(), corpus.eval.size(), flags.teacher.c_str(), tc.n_layer,
               tc.n_embd);

  auto make_loss = [&] {
    return std::make_unique<DistillLoss>(teacher.get(), *divergence, flags.temperature);
  };
  std::unique_ptr<Trainer> trainer;
  if (flags.resume) {
    if (!std::filesystem::exists(flags.checkpoint)) {
      fail("distill: no checkpoint at ", flags.checkpoint, " to resume");
    }
    trainer = Trainer::resume(flags.checkpoint, std::move(corpus), &pool, make_loss());
    if (sub.count("--steps") > 0) trainer->set_steps(flags.train.steps);
  } else {
    trainer = std::make_unique<Trainer>(options, std::move(corpus), &pool);
    if (init_file) trainer->load_parameters(*init_file);
    trainer->set_loss(make_loss());
  }
  const std::string gemm_notice = trainer->set_gemm_backend(gemm);
  if (!gemm_notice.empty()) std::fprintf(stderr, "distill: %s\n", gemm_notice.c_str());
  std::fprintf(stderr, "distill: student %s\n",
               describe_gemm_backend(trainer->gemm_backend()).c_str());
  const TransformerShape& s = trainer->options().shape;
  std::fprintf(stderr,
               "distill: student llama %d layers x %d embd, %d heads (%d kv), ff %d: %.2fM "
               "parameters; loss %s at T=%g\n",
               s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff,
               static_cast<double>(trainer->layout().total()) / 1e6, flags.loss.c_str(),
               flags.temperature);
  measure_student("before", *trainer, *teacher, flags, *type, &pool);

  const auto start = std::chrono::steady_clock::now();
  double window_loss = 0.0;
  int64_t window_steps = 0;
  const StopOnSignals stop_on_signals;
  while (trainer->steps_done() < trainer->options().steps && !stop_on_signals.stop_requested()) {
    const StepResult r = trainer->step();
    window_loss += r.loss;
    ++window_steps;
    const int64_t total = trainer->options().steps;
    const int64_t every = trainer->options().eval_every;
    const bool last = r.step == total;
    const bool evaluate = every > 0 && (r.step % every == 0 || last);
    if (evaluate || r.step % flags.log_every == 0 || last) {
      char eval_text[32] = "-";
      if (evaluate) std::snprintf(eval_text, sizeof eval_text, "%.4f", trainer->evaluate());
      std::fprintf(stderr, "step %lld/%lld | %s %.4f | eval %s | lr %.2e | |g| %.2f | %.1f s\n",
                   static_cast<long long>(r.step), static_cast<long long>(total),
                   flags.loss.c_str(), window_loss / static_cast<double>(window_steps), eval_text,
                   r.lr, r.grad_norm,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      window_loss = 0.0;
      window_steps = 0;
    }
    if (flags.checkpoint_every > 0 && r.step % flags.checkpoint_every == 0 && !last) {
      trainer->save_checkpoint(flags.checkpoint, &teacher->file());
    }
  }
  if (!flags.checkpoint.empty()) trainer->save_checkpoint(flags.checkpoint, &teacher->file());
  if (stop_on_signals.stop_requested()) {
    if (!flags.checkpoint.empty()) {
      fail("distill: interrupted after step ", trainer->steps_done(), "; checkpoint saved to ",
           flags.checkpoint, ": run the same command with --resume to continue");
    }
    trainer->write_model(flags.out, *type, &teacher->file(), "interrupted distillation");
    fail("distill: interrupted after step ", trainer->steps_done(), "; the draft so far is in ",
         flags.out, " (give --checkpoint PATH to be able to resume)");
  }
  measure_student("after", *trainer, *teacher, flags, *type, &pool);
  const std::string name =
      flags.name.empty() ? str_cat("specula draft distilled from ", flags.teacher) : flags.name;
  trainer->write_model(flags.out, *type, &teacher->file(), name);
  std::fprintf(stderr, "distill: wrote %s after %lld steps\n", flags.out.c_str(),
               static_cast<long long>(trainer->steps_done()));
}

const bool registered = register_command({
    "distill",
    "Distill a small draft model from a teacher GGUF (KL or TVD), reporting acceptance",
    [](CLI::App& sub) {
      auto f = std::make_shared<DistillFlags>();
      TrainOptions& t = f->train;
      t.shape.n_embd = 128;
      t.shape.n_layer = 2;
      sub.add_option("--teacher", f->teacher, "Teacher (target) GGUF model")->required();
      sub.add_option("--input", f->inputs, "Text files to distill on")->required();
      sub.add_option("--eval-input", f->eval_inputs, "Text files held out for evaluation");
      sub.add_option("--eval-fraction", f->eval_fraction,
                     "Without --eval-input: the tail fraction of the token stream held out")
          ->capture_default_str();
      sub.add_option("--out", f->out, "Draft GGUF file to write")->required();
      sub.add_option("--type", f->type, "Matrix type of --out: f32 or f16")->capture_default_str();
      sub.add_option("--name", f->name, "general.name of the draft");
      sub.add_option("--loss", f->loss, "Divergence: kl (forward KL) or tvd (total variation)")
          ->capture_default_str();
      sub.add_option("--temperature", f->temperature, "Temperature of both distributions")
          ->capture_default_str();
      sub.add_option("--on-policy-fraction", f->on_policy_fraction,
                     "Fraction of training tokens that are teacher continuations of corpus "
                     "prefixes")
          ->capture_default_str();
      sub.add_option("--accept-window", f->accept_window,
                     "Tokens per held-out window of the acceptance measurement")
          ->capture_default_str();
      sub.add_option("--accept-windows", f->accept_windows, "Held-out windows measured")
          ->capture_default_str();
      sub.add_option("--speed-repeats", f->speed.repeats,
                     "Interleaved repeats of the before/after speedup measurement (plain vs "
                     "speculative decoding of a held-out prompt; 0: skip it)")
          ->capture_default_str()
          ->check(CLI::Range(0, 100));
      add_shape_flags(sub, t.shape, "Student");
      sub.add_option("--ctx", t.shape.n_ctx, "Student context (default min(512, teacher's))");
      add_init_flag(sub, f->init);
      add_optimizer_flags(sub, t);
      sub.add_option("--seed", t.seed, "Seed of the weights, data order and teacher sampling")
          ->capture_default_str();
      add_evaluation_flags(sub, t);
      add_run_flags(sub, *f);
      sub.callback([f, &sub] { run(*f, sub); });
    },
});

}  // namespace
}  // namespace specula::cli

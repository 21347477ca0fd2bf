// `specula distill --teacher T.gguf --input FILES... --out DRAFT.gguf`:
// trains a small draft (from scratch, or from --init's weights) to match a teacher's next-token
// distributions (train/distill_loss.h) on text, with the teacher's
// vocabulary and tokenizer, and reports the draft's acceptance rate against
// the teacher on held-out text before and after (train/distill_eval.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command_registry.h"
#include "cli/distill_speed.h"
#include "cli/seed_flag.h"
#include "cli/stop_on_signals.h"
#include "cli/train_flags.h"
#include "cli/training_run.h"
#include "core/error.h"
#include "gguf/gguf_writer.h"
#include "learn/distill_loss.h"
#include "learn/gemm_dnnl.h"
#include "model/model.h"
#include "sampling/sampling.h"
#include "tokenizer/tokenizer.h"
#include "train/distill_eval.h"
#include "train/trainer.h"

namespace specula::cli {
namespace {

struct DistillFlags : RunFlags, DataFlags {
  TrainOptions train;
  std::string teacher;
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

// `n` teacher continuations: each starts from `prefix` tokens of `source`
// at a random position and samples (T = 1, no filters) up to `window`
// tokens, the n sequences side by side in one batched forward per token.
std::vector<std::vector<int32_t>> sample_continuations(const Model& teacher,
                                                       const std::vector<int32_t>& source,
                                                       int64_t n, int64_t prefix, int64_t window,
                                                       Rng& rng, KvCache& cache, ThreadPool* pool) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_k = 0;
  params.top_p = 1.0f;
  params.min_p = 0.0f;
  const int32_t n_vocab = teacher.config().n_vocab;
  std::vector<float> logits, probs(n_vocab);
  std::vector<BatchRow> rows;
  std::vector<std::vector<int32_t>> sequences(n);
  cache.clear();
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
  return sequences;
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
  Rng rng(o.seed ^ 0x6f6e706f6c696379ull);
  KvCache cache = teacher.make_cache(static_cast<int32_t>(window), static_cast<int32_t>(kParallel));
  int64_t added = 0;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  while (added < wanted) {
    const int64_t n = std::min(kParallel, (wanted - added + window - 1) / window);
    const std::vector<std::vector<int32_t>> sequences =
        sample_continuations(teacher, source, n, prefix, window, rng, cache, pool);
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

// The distillation flags' own checks, before anything slow runs.
DistillDivergence check_distill_flags(const DistillFlags& flags) {
  const auto divergence = distill_divergence_from_name(flags.loss);
  if (!divergence) fail("distill: --loss ", flags.loss, " is not known; use kl or tvd");
  if (!(flags.temperature > 0.0)) fail("distill: --temperature must be > 0");
  if (!(flags.on_policy_fraction >= 0.0 && flags.on_policy_fraction < 1.0)) {
    fail("distill: --on-policy-fraction must be in [0, 1), not ", flags.on_policy_fraction);
  }
  if (flags.accept_windows < 1) fail("distill: --accept-windows must be >= 1");
  return *divergence;
}

// The options of the student: the flags, with the shape of --init's file
// (then `init_file` is opened) or a context of min(512, the teacher's).
TrainOptions student_options(const DistillFlags& flags, const CLI::App& sub, const ModelConfig& tc,
                             std::unique_ptr<GgufReader>& init_file) {
  TrainOptions options = flags.train;
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
  return options;
}

// The student, resumed from --checkpoint or new (from --init's weights when
// given), learning from the teacher with the distillation loss.
std::unique_ptr<Trainer> make_student(const DistillFlags& flags, const CLI::App& sub,
                                      const TrainOptions& options, const GgufReader* init_file,
                                      TokenCorpus corpus, std::unique_ptr<DistillLoss> loss,
                                      ThreadPool* pool) {
  if (flags.resume) {
    check_checkpoint_exists(flags, "distill");
    auto trainer = Trainer::resume(flags.checkpoint, std::move(corpus), pool, std::move(loss));
    if (sub.count("--steps") > 0) trainer->set_steps(flags.train.steps);
    return trainer;
  }
  auto trainer = std::make_unique<Trainer>(options, std::move(corpus), pool);
  if (init_file != nullptr) trainer->load_parameters(*init_file);
  trainer->set_loss(std::move(loss));
  return trainer;
}

// The step loop with distill's progress lines: the mean divergence since
// the last line, the held-out loss when evaluated, the time so far.
void distill_steps(Trainer& trainer, const DistillFlags& flags, const RunOutput& output,
                   const StopOnSignals& stop) {
  const auto start = std::chrono::steady_clock::now();
  run_steps(trainer, flags, output, stop, [&](const ProgressLine& line) {
    char eval_text[32] = "-";
    if (line.eval_loss) std::snprintf(eval_text, sizeof eval_text, "%.4f", *line.eval_loss);
    std::fprintf(stderr, "step %lld/%lld | %s %.4f | eval %s | lr %.2e | |g| %.2f | %.1f s\n",
                 static_cast<long long>(line.result.step), static_cast<long long>(line.total),
                 flags.loss.c_str(), line.mean_loss, eval_text, line.result.lr,
                 line.result.grad_norm,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  });
}

void print_student(const Trainer& trainer, const DistillFlags& flags) {
  const TransformerShape& s = trainer.options().shape;
  std::fprintf(stderr,
               "distill: student llama %d layers x %d embd, %d heads (%d kv), ff %d: %.2fM "
               "parameters; loss %s at T=%g\n",
               s.n_layer, s.n_embd, s.n_head, s.n_head_kv, s.n_ff,
               static_cast<double>(trainer.layout().total()) / 1e6, flags.loss.c_str(),
               flags.temperature);
}

void run(const DistillFlags& flags, const CLI::App& sub) {
  const DType type = output_type(flags, "distill");
  const DistillDivergence divergence = check_distill_flags(flags);
  const GemmBackend gemm = check_run_flags(flags, "distill");
  check_output_path(flags.out);
  const std::unique_ptr<Model> teacher = Model::load(flags.teacher);
  const ModelConfig& tc = teacher->config();
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(teacher->file());
  std::unique_ptr<GgufReader> init_file;
  const TrainOptions options = student_options(flags, sub, tc, init_file);

  ThreadPool pool(thread_count(flags));
  TokenCorpus corpus = tokenize_corpus(*tokenizer, corpus_options(flags, sub, "distill"));
  add_teacher_continuations(*teacher, flags.on_policy_fraction, options, corpus, &pool);
  std::fprintf(stderr, "distill: %zu training + %zu held-out tokens; teacher %s (%d layers x %d)\n",
               corpus.train.size(), corpus.eval.size(), flags.teacher.c_str(), tc.n_layer,
               tc.n_embd);
  std::unique_ptr<Trainer> trainer = make_student(
      flags, sub, options, init_file.get(), std::move(corpus),
      std::make_unique<DistillLoss>(teacher.get(), divergence, flags.temperature), &pool);
  use_gemm_backend(*trainer, gemm, "distill", "student ");
  print_student(*trainer, flags);
  measure_student("before", *trainer, *teacher, flags, type, &pool);

  const RunOutput output{"distill", "draft", type, &teacher->file()};
  const StopOnSignals stop_on_signals;
  distill_steps(*trainer, flags, output, stop_on_signals);
  save_at_end(*trainer, flags, flags, output, stop_on_signals.stop_requested(),
              "interrupted distillation");
  measure_student("after", *trainer, *teacher, flags, type, &pool);
  const std::string name =
      flags.name.empty() ? str_cat("specula draft distilled from ", flags.teacher) : flags.name;
  trainer->write_model(flags.out, type, &teacher->file(), name);
  std::fprintf(stderr, "distill: wrote %s after %lld steps\n", flags.out.c_str(),
               static_cast<long long>(trainer->steps_done()));
}

void add_distill_flags(CLI::App& sub, DistillFlags& flags) {
  sub.add_option("--loss", flags.loss, "Divergence: kl (forward KL) or tvd (total variation)")
      ->capture_default_str();
  sub.add_option("--temperature", flags.temperature, "Temperature of both distributions")
      ->capture_default_str();
  sub.add_option("--on-policy-fraction", flags.on_policy_fraction,
                 "Fraction of training tokens that are teacher continuations of corpus "
                 "prefixes")
      ->capture_default_str();
  sub.add_option("--accept-window", flags.accept_window,
                 "Tokens per held-out window of the acceptance measurement")
      ->capture_default_str();
  sub.add_option("--accept-windows", flags.accept_windows, "Held-out windows measured")
      ->capture_default_str();
  sub.add_option("--speed-repeats", flags.speed.repeats,
                 "Interleaved repeats of the before/after speedup measurement (plain vs "
                 "speculative decoding of a held-out prompt; 0: skip it)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
}

void add_flags(CLI::App& sub, DistillFlags& flags) {
  TrainOptions& t = flags.train;
  t.shape.n_embd = 128;
  t.shape.n_layer = 2;
  sub.add_option("--teacher", flags.teacher, "Teacher (target) GGUF model")->required();
  add_data_flags(sub, flags, "distill", "draft");
  add_distill_flags(sub, flags);
  add_shape_flags(sub, t.shape, "Student");
  sub.add_option("--ctx", t.shape.n_ctx, "Student context (default min(512, teacher's))");
  add_init_flag(sub, flags.init);
  add_optimizer_flags(sub, t);
  sub.add_option("--seed", t.seed, "Seed of the weights, data order and teacher sampling")
      ->check(seed_value())
      ->capture_default_str();
  add_evaluation_flags(sub, t);
  add_run_flags(sub, flags);
}

const bool registered = register_command_with_flags<DistillFlags>(
    "distill", "Distill a small draft model from a teacher GGUF (KL or TVD), reporting acceptance",
    add_flags, run_naming_flags<DistillFlags, run>);

}  // namespace
}  // namespace specula::cli

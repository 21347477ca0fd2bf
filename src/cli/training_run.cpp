#include "cli/training_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/cpu_count.h"
#include "core/error.h"
#include "gguf/gguf_writer.h"

namespace specula::cli {

DType output_type(const DataFlags& flags, const char* command) {
  const auto type = dtype_from_name(flags.type);
  if (!type || (*type != DType::kF32 && *type != DType::kF16)) {
    fail(command, ": --type ", flags.type, " is not supported; use f32 or f16");
  }
  return *type;
}

GemmBackend check_run_flags(const RunFlags& flags, const char* command) {
  if (flags.checkpoint_every < 0 || flags.log_every < 1) {
    fail(command, ": --checkpoint-every must be >= 0 and --log-every >= 1");
  }
  if (flags.checkpoint_every > 0 && flags.checkpoint.empty()) {
    fail(command, ": --checkpoint-every needs --checkpoint PATH");
  }
  if (flags.resume && flags.checkpoint.empty()) fail(command, ": --resume needs --checkpoint PATH");
  // Checked now, not after the last step: a run must never end unsaved.
  if (!flags.checkpoint.empty()) check_output_path(flags.checkpoint);
  return parse_gemm_backend(flags.gemm, str_cat(command, ": --gemm"));
}

CorpusOptions corpus_options(const DataFlags& flags, const CLI::App& sub, const char* command) {
  if (!flags.eval_inputs.empty() && sub.count("--eval-fraction") > 0) {
    fail(command, ": give either --eval-input or --eval-fraction, not both");
  }
  return {flags.inputs, flags.eval_inputs, flags.eval_fraction};
}

int32_t thread_count(const RunFlags& flags) {
  return resolve_thread_count(flags.threads);
}

void check_checkpoint_exists(const RunFlags& flags, const char* command) {
  if (!std::filesystem::exists(flags.checkpoint)) {
    fail(command, ": no checkpoint at ", flags.checkpoint,
         " to resume; run without --resume to start a new run");
  }
}

void use_gemm_backend(Trainer& trainer, GemmBackend gemm, const char* command, const char* whose) {
  const std::string notice = trainer.set_gemm_backend(gemm);
  if (!notice.empty()) std::fprintf(stderr, "%s: %s\n", command, notice.c_str());
  std::fprintf(stderr, "%s: %s%s\n", command, whose,
               describe_gemm_backend(trainer.gemm_backend()).c_str());
}

void run_steps(Trainer& trainer, const RunFlags& flags, const RunOutput& output,
               const StopOnSignals& stop, const std::function<void(const ProgressLine&)>& print) {
  using Clock = std::chrono::steady_clock;
  auto window_start = Clock::now();
  int64_t window_steps = 0;
  double window_loss = 0.0;
  while (trainer.steps_done() < trainer.options().steps && !stop.stop_requested()) {
    const StepResult r = trainer.step();
    ++window_steps;
    window_loss += r.loss;
    const int64_t total = trainer.options().steps;
    const int64_t every = trainer.options().eval_every;
    const bool last = r.step == total;
    const bool evaluate = every > 0 && (r.step % every == 0 || last);
    const bool log = evaluate || r.step % flags.log_every == 0 || last;
    if (log) {
      const double seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
      std::optional<double> eval_loss;
      if (evaluate) eval_loss = trainer.evaluate();
      print({r, total, window_loss / static_cast<double>(window_steps), window_steps, seconds,
             eval_loss});
      window_steps = 0;
      window_loss = 0.0;
    }
    if (flags.checkpoint_every > 0 && r.step % flags.checkpoint_every == 0 && !last) {
      trainer.save_checkpoint(flags.checkpoint, output.vocab);
    }
    if (log) window_start = Clock::now();
  }
}

void save_at_end(const Trainer& trainer, const RunFlags& flags, const DataFlags& data,
                 const RunOutput& output, bool stopped, const std::string& partial_name) {
  if (!flags.checkpoint.empty()) trainer.save_checkpoint(flags.checkpoint, output.vocab);
  if (!stopped) return;
  if (!flags.checkpoint.empty()) {
    fail(output.command, ": interrupted after step ", trainer.steps_done(),
         "; checkpoint saved to ", flags.checkpoint,
         ": run the same command with --resume to continue");
  }
  // Never under --out's own name: a script that finds --out takes it as the
  // finished model.
  const std::string partial = partial_output_path(data.out);
  trainer.write_model(partial, output.type, output.vocab, partial_name);
  fail(output.command, ": interrupted after step ", trainer.steps_done(), " of ",
       trainer.options().steps, "; the partial ", output.what, " so far is in ", partial, ", not ",
       data.out, " (give --checkpoint PATH to be able to resume)");
}

std::string partial_output_path(const std::string& out) {
  constexpr std::string_view kSuffix = ".gguf";
  if (out.size() > kSuffix.size() && out.ends_with(kSuffix)) {
    return out.substr(0, out.size() - kSuffix.size()) + ".partial.gguf";
  }
  return out + ".partial.gguf";
}

}  // namespace specula::cli

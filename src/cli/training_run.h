// What `specula train` and `specula distill` do alike around the trainer:
// checking the run and data flags, the thread pool, the step loop with its
// progress lines and checkpoints, saving at the end, and what an
// interrupted run leaves behind.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "cli/stop_on_signals.h"
#include "cli/train_flags.h"
#include "core/dtype.h"
#include "gguf/gguf_reader.h"
#include "learn/gemm_dnnl.h"
#include "train/data.h"
#include "train/trainer.h"

namespace specula::cli {

// What a run writes, and the names its messages use.
struct RunOutput {
  const char* command;      // "train", "distill": the prefix of its lines and errors
  const char* what;         // "model", "draft": what --out holds
  DType type;               // of --out (output_type)
  const GgufReader* vocab;  // copied into models and checkpoints (may be null)
};

// --type as the DType of --out: f32 or f16; anything else is an Error.
DType output_type(const DataFlags& flags, const char* command);

// Checks --log-every, --checkpoint-every and --resume (both need
// --checkpoint) and parses --gemm, before anything slow runs.
GemmBackend check_run_flags(const RunFlags& flags, const char* command);

// The corpus the data flags name; --eval-input and --eval-fraction together
// are an Error.
CorpusOptions corpus_options(const DataFlags& flags, const CLI::App& sub, const char* command);

// -t: the threads of the run's pool; 0 takes one per physical core (default_thread_count).
int32_t thread_count(const RunFlags& flags);

// Throws Error when --resume names no checkpoint file.
void check_checkpoint_exists(const RunFlags& flags, const char* command);

// Switches the trainer to --gemm's backend and prints which one it uses,
// as "<command>: <whose><backend>" (whose: "" or "student ").
void use_gemm_backend(Trainer& trainer, GemmBackend gemm, const char* command, const char* whose);

// What run_steps passes to its caller at every step that prints a line.
struct ProgressLine {
  const StepResult& result;
  int64_t total;                    // steps of the whole run
  double mean_loss;                 // over the steps since the last line
  int64_t steps;                    // steps since the last line
  double seconds;                   // their time, less evaluations and checkpoints
  std::optional<double> eval_loss;  // when this step evaluated
};

// Steps until the run's total or a stop signal: evaluates every
// --eval-every steps and at the end, calls `print` every --log-every steps
// (and at evaluations and the end), and saves a checkpoint every
// --checkpoint-every steps but the last.
void run_steps(Trainer& trainer, const RunFlags& flags, const RunOutput& output,
               const StopOnSignals& stop, const std::function<void(const ProgressLine&)>& print);

// After the loop: saves the checkpoint (with --checkpoint). When a signal
// stopped the run, throws Error saying how to go on, having left the
// model so far (general.name `partial_name`) in partial_output_path(--out)
// when there is no checkpoint to resume from; --out itself is never
// written by an interrupted run.
void save_at_end(const Trainer& trainer, const RunFlags& flags, const DataFlags& data,
                 const RunOutput& output, bool stopped, const std::string& partial_name);

// Where an interrupted run without --checkpoint leaves its model:
// model.gguf -> model.partial.gguf, other names + ".partial.gguf".
std::string partial_output_path(const std::string& out);

// `run` inside with_flag_names(kTrainFlags), for register_command_with_flags:
// the training library's errors then name the flags the user typed.
template <typename Flags, void (*run)(const Flags&, const CLI::App&)>
void run_naming_flags(const Flags& flags, const CLI::App& sub) {
  with_flag_names(kTrainFlags, [&] { run(flags, sub); });
}

}  // namespace specula::cli

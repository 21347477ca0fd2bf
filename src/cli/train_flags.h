// The flags that `train` and `distill` share (the student's shape, the
// optimizer, evaluation, progress and checkpoints), so both commands spell
// and document them alike.
#pragma once

#include <CLI/CLI.hpp>
#include <array>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/field_flags.h"
#include "core/error.h"
#include "gguf/gguf_reader.h"
#include "learn/model_io.h"
#include "train/trainer.h"

namespace specula::cli {

// The flag of each TrainOptions, TransformerShape and CorpusOptions field
// the training library's errors name. n_head_kv stands before n_head, whose
// name starts it.
inline constexpr std::array<FieldFlag, 20> kTrainFlags = {{
    {"TrainOptions::batch", "--batch"},
    {"TrainOptions::seq_len", "--seq-len"},
    {"TrainOptions::steps", "--steps"},
    {"TrainOptions::warmup", "--warmup"},
    {"TrainOptions::min_lr", "--min-lr"},
    {"TrainOptions::lr", "--lr"},
    {"TrainOptions::clip", "--clip"},
    {"TrainOptions::eval_every", "--eval-every"},
    {"TrainOptions::eval_tokens", "--eval-tokens"},
    {"TrainOptions::gemm", "--gemm"},
    {"AdamWOptions::weight_decay", "--weight-decay"},
    {"TransformerShape::n_embd", "--embd"},
    {"TransformerShape::n_layer", "--layers"},
    {"TransformerShape::n_head_kv", "--heads-kv"},
    {"TransformerShape::n_head", "--heads"},
    {"TransformerShape::n_ff", "--ff"},
    {"TransformerShape::n_ctx", "--ctx"},
    {"CorpusOptions::train_files", "--input"},
    {"CorpusOptions::eval_files", "--eval-input"},
    {"CorpusOptions::eval_fraction", "--eval-fraction"},
}};

// Threads, products, progress and checkpoints of a training run (both
// commands' flags structs derive from it).
struct RunFlags {
  int32_t threads = 0;
  std::string gemm = "auto";
  int64_t log_every = 10;
  std::string checkpoint;
  int64_t checkpoint_every = 0;
  bool resume = false;
};

// The text a run learns from and the model file it writes.
struct DataFlags {
  std::vector<std::string> inputs;
  std::vector<std::string> eval_inputs;
  double eval_fraction = 0.05;
  std::string out;
  std::string type = "f16";
  std::string name;
};

// --input --eval-input --eval-fraction --out --type --name. `verb` says what
// the run does with the text ("train"), `what` what it writes ("model").
inline void add_data_flags(CLI::App& sub, DataFlags& d, const std::string& verb,
                           const std::string& what) {
  std::string capitalised = what;
  capitalised[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(capitalised[0])));
  sub.add_option("--input", d.inputs, "Text files to " + verb + " on")->required();
  sub.add_option("--eval-input", d.eval_inputs, "Text files held out for evaluation");
  sub.add_option("--eval-fraction", d.eval_fraction,
                 "Without --eval-input: the tail fraction of the token stream held out")
      ->capture_default_str();
  sub.add_option("--out", d.out, capitalised + " GGUF file to write")->required();
  sub.add_option("--type", d.type, "Matrix type of --out: f32 or f16")->capture_default_str();
  sub.add_option("--name", d.name, "general.name of the " + what);
}

// --embd --layers --heads --heads-kv --ff --rope-base --tied (not --ctx: its
// default differs). `what` names the model trained in the help ("Model").
inline void add_shape_flags(CLI::App& sub, TransformerShape& shape, const std::string& what) {
  sub.add_option("--embd", shape.n_embd, what + " width")->capture_default_str();
  sub.add_option("--layers", shape.n_layer, what + " transformer blocks")->capture_default_str();
  sub.add_option("--heads", shape.n_head, "Query heads")->capture_default_str();
  sub.add_option("--heads-kv", shape.n_head_kv, "Key/value heads (0: --heads)");
  sub.add_option("--ff", shape.n_ff, "Feed-forward width (0: ~8/3 embd)");
  sub.add_option("--rope-base", shape.rope_freq_base, "RoPE frequency base")->capture_default_str();
  sub.add_flag("--tied", shape.tied_output, "Tie the output matrix to the embeddings");
}

// -t --gemm --log-every --checkpoint --checkpoint-every --resume.
inline void add_run_flags(CLI::App& sub, RunFlags& r) {
  sub.add_option("-t,--threads", r.threads,
                 "Threads; 0: one per physical core this process may use");
  sub.add_option("--gemm", r.gemm,
                 "Linear layers' products of the trained model: f32, bf16 (oneDNN, AMX; f32 "
                 "accumulation) or auto (bf16 where available)")
      ->capture_default_str();
  sub.add_option("--log-every", r.log_every, "Steps between progress lines")->capture_default_str();
  sub.add_option("--checkpoint", r.checkpoint, "Checkpoint file (written at the end too)");
  sub.add_option("--checkpoint-every", r.checkpoint_every, "Steps between checkpoints");
  sub.add_flag("--resume", r.resume, "Continue the run saved in --checkpoint");
}

// --batch --seq-len --steps --lr --min-lr --warmup --weight-decay --clip.
inline void add_optimizer_flags(CLI::App& sub, TrainOptions& t) {
  sub.add_option("--batch", t.batch, "Sequences per step")->capture_default_str();
  sub.add_option("--seq-len", t.seq_len, "Tokens per sequence")->capture_default_str();
  sub.add_option("--steps", t.steps, "Optimizer steps in all")->capture_default_str();
  sub.add_option("--lr", t.lr, "Peak learning rate")->capture_default_str();
  sub.add_option("--min-lr", t.min_lr, "Learning rate at the end of the cosine decay")
      ->capture_default_str();
  sub.add_option("--warmup", t.warmup, "Linear warm-up steps")->capture_default_str();
  sub.add_option("--weight-decay", t.adam.weight_decay, "AdamW decay of the matrices")
      ->capture_default_str();
  sub.add_option("--clip", t.clip, "Global gradient-norm limit (0: off)")->capture_default_str();
}

// --eval-every --eval-tokens.
inline void add_evaluation_flags(CLI::App& sub, TrainOptions& t) {
  sub.add_option("--eval-every", t.eval_every, "Steps between held-out evaluations (0: off)")
      ->capture_default_str();
  sub.add_option("--eval-tokens", t.eval_tokens, "Held-out tokens per evaluation")
      ->capture_default_str();
}

// --init FILE: start from a model file's weights instead of random ones.
inline void add_init_flag(CLI::App& sub, std::string& init) {
  sub.add_option("--init", init,
                 "Start from this GGUF model's weights (F32, F16 or BF16 matrices); the model's "
                 "shape is then the file's (ignored with --resume: the checkpoint has the "
                 "weights)");
}

// The shape of a run started from `file` (--init): the file's, with --ctx
// when given. Shape flags given as well must agree with the file, so a
// typo does not silently train another shape than the user asked for.
inline TransformerShape shape_for_init(const GgufReader& file, const CLI::App& sub,
                                       TransformerShape given, const char* command) {
  TransformerShape shape = read_transformer_shape(file);
  if (given.n_head_kv == 0) given.n_head_kv = given.n_head;
  const struct {
    const char* flag;
    double given, file;
  } checks[] = {
      {"--embd", double(given.n_embd), double(shape.n_embd)},
      {"--layers", double(given.n_layer), double(shape.n_layer)},
      {"--heads", double(given.n_head), double(shape.n_head)},
      {"--heads-kv", double(given.n_head_kv), double(shape.n_head_kv)},
      {"--ff", double(given.n_ff), double(shape.n_ff)},
      {"--rope-base", double(given.rope_freq_base), double(shape.rope_freq_base)},
      {"--tied", double(given.tied_output), double(shape.tied_output)},
  };
  for (const auto& check : checks) {
    if (sub.count(check.flag) > 0 && check.given != check.file) {
      fail(command, ": ", check.flag, " ", check.given, " differs from ", file.path(), "'s ",
           check.file, ": with --init the model's shape comes from the file (drop ", check.flag,
           ")");
    }
  }
  if (sub.count("--ctx") > 0) shape.n_ctx = given.n_ctx;
  return shape;
}

}  // namespace specula::cli

// The optimizer and evaluation flags that `train` and `distill` share, bound
// to one TrainOptions, so both commands spell and document them alike.
#pragma once

#include <CLI/CLI.hpp>

#include "train/trainer.h"

namespace specula::cli {

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

}  // namespace specula::cli

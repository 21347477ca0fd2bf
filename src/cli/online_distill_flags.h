// The --online-distill / --osd-* flags (docs/online-distillation.md), bound
// to one OnlineDistillConfig, so every command that runs an Engine spells
// and documents them alike.
#pragma once

#include <CLI/CLI.hpp>

#include "specula/engine.h"

namespace specula::cli {

inline void add_online_distill_flags(CLI::App& sub, OnlineDistillConfig& c) {
  const char* group = "Online distillation (the draft learns while generating)";
  sub.add_flag("--online-distill", c.enabled,
               "Keep training the draft model (--draft, F16/BF16/F32) on the target's "
               "verified distributions in a background thread; output stays exact")
      ->group(group);
  sub.add_option("--osd-threads", c.threads, "Learner threads")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-memory-mb", c.memory_mib,
                 "Replay buffer budget in MiB (the trainable copy adds 16 bytes per draft "
                 "parameter)")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-cpu", c.cpu_fraction,
                 "Share of wall time each learner thread may compute, in (0, 1]")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-lr", c.learning_rate, "Learning rate (AdamW, after the warm-up)")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-warmup", c.warmup_steps, "Steps over which the rate rises to --osd-lr")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-replay", c.replay,
                 "At most this many learner steps per window of new data stored (the learner "
                 "waits for data beyond it)")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-average", c.average_decay,
                 "Publish a moving average of the learned weights with this decay per step "
                 "(steadier drafts than the latest step's); 0 publishes the latest")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-publish-every", c.publish_every, "Learner steps between weight swaps")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-loss", c.loss, "tvd (total variation) or kl (forward KL)")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-temperature", c.temperature, "Temperature of both sides of the loss")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-top-k", c.top_k, "Ids kept per target distribution; 0 keeps whole rows")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-window", c.window, "Tokens of context per training window")
      ->capture_default_str()
      ->group(group);
  sub.add_option("--osd-batch", c.batch, "Windows per learner step")
      ->capture_default_str()
      ->group(group);
}

}  // namespace specula::cli

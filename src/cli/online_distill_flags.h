// The --online-distill / --osd-* flags (docs/online-distillation.md), bound
// to one OnlineDistillConfig (whose defaults they show), so every command
// that runs an Engine spells and documents them alike.
#pragma once

#include <CLI/CLI.hpp>
#include <array>
#include <string>

#include "cli/field_flags.h"
#include "specula/engine.h"

namespace specula::cli {

// The flag of each OnlineDistillConfig field the library's errors name
// (memory_bytes is checked by its flag, which is in MiB).
inline constexpr std::array<FieldFlag, 14> kOnlineDistillFlags = {{
    {"EngineConfig::online_distill.enabled", "--online-distill"},
    {"EngineConfig::online_distill.threads", "--osd-threads"},
    {"EngineConfig::online_distill.memory_bytes", "--osd-memory-mb (in bytes)"},
    {"EngineConfig::online_distill.cpu_fraction", "--osd-cpu"},
    {"EngineConfig::online_distill.learning_rate", "--osd-lr"},
    {"EngineConfig::online_distill.warmup_steps", "--osd-warmup"},
    {"EngineConfig::online_distill.replay", "--osd-replay"},
    {"EngineConfig::online_distill.average_decay", "--osd-average"},
    {"EngineConfig::online_distill.publish_every", "--osd-publish-every"},
    {"EngineConfig::online_distill.loss", "--osd-loss"},
    {"EngineConfig::online_distill.temperature", "--osd-temperature"},
    {"EngineConfig::online_distill.top_k", "--osd-top-k"},
    {"EngineConfig::online_distill.window", "--osd-window"},
    {"EngineConfig::online_distill.batch", "--osd-batch"},
}};

inline void add_online_distill_flags(CLI::App& sub, OnlineDistillConfig& c) {
  const char* group = "Online distillation (the draft learns while generating)";
  sub.add_flag("--online-distill", c.enabled,
               "Keep training the draft model (--draft, F16/BF16/F32) on the target's "
               "verified distributions in a background thread; output stays exact")
      ->group(group);
  sub.add_option("--osd-threads", c.threads, "Learner threads")
      ->capture_default_str()
      ->group(group);
  // In MiB here, in bytes in the config; checked here, as the library's
  // message would give the value in bytes.
  sub.add_option_function<int64_t>(
         "--osd-memory-mb", [&c](int64_t mib) { c.memory_bytes = mib << 20; },
         "Replay buffer budget in MiB, 1 to 1048576 (the trainable copy adds 16 bytes per draft "
         "parameter)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->default_str(std::to_string(c.memory_bytes >> 20))
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

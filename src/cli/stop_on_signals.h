// SIGINT/SIGTERM during a long job (train, distill): the handler only sets a
// flag, the job's loop checks it between steps, saves a checkpoint and
// exits, so Ctrl-C or a job system's TERM never loses work. Installing the
// handlers explicitly also matters for jobs started in the background by a
// non-interactive shell, which inherit SIGINT ignored.
#pragma once

#include <atomic>
#include <csignal>

namespace specula::cli {

inline std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" inline void request_stop(int) {
  g_stop_requested.store(true);
}

// Installs the handlers for its lifetime, then restores the previous ones.
class StopOnSignals {
 public:
  StopOnSignals() {
    g_stop_requested.store(false);
    previous_int_ = std::signal(SIGINT, request_stop);
    previous_term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopOnSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  bool stop_requested() const { return g_stop_requested.load(); }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

}  // namespace specula::cli

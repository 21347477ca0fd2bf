// A persistent pool of worker threads. parallel_for splits [0, n_tasks) over
// the workers and the calling thread, and returns when all tasks are done.
// Workers are created once; a call wakes them rather than creating threads.
//
// Waking latency matters: a decode step makes hundreds of parallel_for calls
// of tens of microseconds each. So an idle worker first spins on an atomic
// generation counter for a short while (about kSpinMicroseconds), which
// answers the next call within a fraction of a microsecond, and only then
// sleeps on a condition variable so an idle engine burns no CPU. The caller
// waits for the workers the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace specula {

class ThreadPool {
 public:
  // How long an idle thread polls before it goes to sleep.
  static constexpr int kSpinMicroseconds = 200;

  // n_threads counts the calling thread: 1 means no workers, all inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls task(i) for every i in [0, n_tasks); each i exactly once. Thread t
  // takes the contiguous range of tasks t*n/T .. (t+1)*n/T, so a caller that
  // splits weight rows into n_threads tasks gives each core its own rows.
  // Not reentrant: task must not call parallel_for on the same pool, and only
  // one thread may call parallel_for at a time.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& task);

 private:
  void worker_loop(int thread_index);
  void run_share(int thread_index);
  // Waits until generation_ differs from `seen`; returns the new value.
  uint64_t wait_for_work(uint64_t seen);
  void wait_until_done();

  int n_threads_;
  std::vector<std::thread> workers_;

  // The current job; written by the caller before generation_ is bumped
  // (release), read by workers after they observe the bump (acquire).
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_tasks_ = 0;

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};  // workers still running the job
  alignas(64) std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};

  std::mutex mutex_;
  std::condition_variable wake_;  // workers sleep here
  std::condition_variable done_;  // the caller sleeps here
};

}  // namespace specula

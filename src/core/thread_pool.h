// A persistent pool of worker threads. parallel_for splits [0, n_tasks) over
// the workers and the calling thread, and returns when all tasks are done.
// Workers are created once; a call wakes them rather than creating threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace specula {

class ThreadPool {
 public:
  // n_threads counts the calling thread: 1 means no workers, all inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls task(i) for every i in [0, n_tasks); each i exactly once. Thread t
  // takes the contiguous range of tasks t*n/T .. (t+1)*n/T, so a caller that
  // splits weight rows into n_threads tasks gives each core its own rows.
  void parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& task);

 private:
  void worker_loop(int thread_index);
  void run_share(int thread_index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_tasks_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace specula

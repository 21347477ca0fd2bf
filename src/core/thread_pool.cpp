#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace specula {
namespace {

// Tells the core we are in a spin loop (saves power, frees the sibling
// hyperthread); a no-op where there is no such hint.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `ready` for about ThreadPool::kSpinMicroseconds; true once it holds.
template <typename Ready>
bool spin_until(const Ready& ready) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (;;) {
    // Check the clock only every few polls: now() costs ~20 ns.
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (Clock::now() >= deadline) return ready();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_share(int thread_index) {
  const int64_t begin = n_tasks_ * thread_index / n_threads_;
  const int64_t end = n_tasks_ * (thread_index + 1) / n_threads_;
  for (int64_t i = begin; i < end; ++i) (*task_)(i);
}

void ThreadPool::parallel_for(int64_t n_tasks, const std::function<void(int64_t)>& task) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) task(i);
    return;
  }
  task_ = &task;
  n_tasks_ = n_tasks;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // seq_cst pairs with the sleeper's increment of sleeping_workers_ (see
  // wait_for_work): either we see the sleeper, or it sees the new generation.
  generation_.fetch_add(1);
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_share(0);
  wait_until_done();
  task_ = nullptr;
}

void ThreadPool::wait_until_done() {
  if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) return;
  std::unique_lock<std::mutex> lock(mutex_);
  caller_sleeping_.store(true);
  done_.wait(lock, [this] { return pending_.load() == 0; });
  caller_sleeping_.store(false);
}

uint64_t ThreadPool::wait_for_work(uint64_t seen) {
  uint64_t now = seen;
  const auto changed = [&] {
    now = generation_.load(std::memory_order_acquire);
    return now != seen;
  };
  if (spin_until(changed)) return now;
  std::unique_lock<std::mutex> lock(mutex_);
  sleeping_workers_.fetch_add(1);
  wake_.wait(lock, changed);
  sleeping_workers_.fetch_sub(1);
  return now;
}

void ThreadPool::worker_loop(int thread_index) {
  uint64_t seen = 0;
  for (;;) {
    seen = wait_for_work(seen);
    if (stop_.load()) return;
    run_share(thread_index);
    // The last worker out wakes the caller if it went to sleep. The caller
    // sets caller_sleeping_ under the mutex before re-checking pending_, so
    // taking the mutex here cannot miss it.
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace specula

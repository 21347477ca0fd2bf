#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <system_error>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#if defined(__unix__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace specula {
namespace {

// A share's `next` index while the caller is setting the share up: larger
// than any end, so nobody claims from it (see run()).
constexpr uint64_t kNoTask = 0xffffffffu;

uint64_t tagged(uint32_t job, uint64_t index) {
  return (static_cast<uint64_t>(job) << 32) | index;
}

// Tells the core we are in a spin loop (saves power, frees the sibling
// hyperthread); a no-op where there is no such hint.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Gives the core to another runnable thread, if there is one; returns at
// once otherwise.
inline void yield_core() {
#if defined(__unix__)
  sched_yield();
#else
  std::this_thread::yield();
#endif
}

// Polls `ready` for about ThreadPool::kSpinMicroseconds; true once it holds.
// The first kPauseMicroseconds poll with the pause hint only: the gaps
// between the parallel_for calls of a forward pass are a few microseconds.
// After that each poll yields the core. On an idle core sched_yield returns
// at once, so this is still a spin; on an oversubscribed machine it hands
// the core to whoever is runnable (often our own caller or worker, sharing
// the core), where pausing would burn the time slice that thread needs.
template <typename Ready>
bool spin_until(const Ready& ready) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto pause_until = start + std::chrono::microseconds(ThreadPool::kPauseMicroseconds);
  const auto deadline = start + std::chrono::microseconds(ThreadPool::kSpinMicroseconds);
  for (;;) {
    // Check the clock only every few polls: now() costs ~20 ns.
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (Clock::now() >= pause_until) break;
  }
  while (Clock::now() < deadline) {
    if (ready()) return true;
    yield_core();
  }
  return ready();
}

}  // namespace

int ThreadPool::max_threads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(16, 4 * cores);
}

namespace {

int capped_thread_count(int n_threads) {
  const int cap = ThreadPool::max_threads();
  if (n_threads <= cap) return std::max(1, n_threads);
  log_warn(n_threads, " threads asked for on ", std::thread::hardware_concurrency(),
           " cores: using ", cap, " (more only adds switching between them)");
  return cap;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(capped_thread_count(n_threads)),
      shares_(new Share[static_cast<size_t>(n_threads_)]) {
  try {
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
  } catch (const std::system_error& e) {
    // The started workers wait for a job: stop them before unwinding, or
    // the destructor of a half-built pool never runs and they wait forever.
    const size_t started = workers_.size();
    stop_workers();
    fail("could not start thread ", started + 2, " of ", n_threads_, " (", e.what(),
         "): the system limits this process's threads; use fewer threads");
  }
}

ThreadPool::~ThreadPool() {
  stop_workers();
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

int64_t ThreadPool::run_tasks(int thread_index, uint32_t job) {
  int64_t done = 0;
  for (int k = 0; k < n_threads_; ++k) {
    Share& share = shares_[static_cast<size_t>((thread_index + k) % n_threads_)];
    uint64_t next = share.next.load(std::memory_order_acquire);
    for (;;) {
      // A worker that saw an earlier job finds another tag here: that job is
      // over, and this one is not its to take.
      if (static_cast<uint32_t>(next >> 32) != job) return done;
      const auto index = static_cast<int64_t>(next & 0xffffffffu);
      if (index >= share.end.load(std::memory_order_acquire)) break;
      if (share.next.compare_exchange_weak(next, next + 1, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
        task_.call(task_.callable, index);
        ++done;
        next = share.next.load(std::memory_order_acquire);
      }
    }
  }
  return done;
}

void ThreadPool::finish_tasks(int64_t count) {
  if (count == 0) return;
  // Read before our tasks count as done: after that, the caller may see the
  // job complete and start the next one, which rewrites n_tasks_.
  const int64_t n_tasks = n_tasks_;
  // The thread that completes the job wakes the caller if it went to sleep.
  // The caller sets caller_sleeping_ under the mutex before re-checking
  // completed_, and both sides use seq_cst, so one of them sees the other.
  // (A wake-up that arrives after the caller moved on is harmless: it waits
  // on a predicate.)
  if (completed_.fetch_add(count) + count == n_tasks && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_.notify_one();
  }
}

void ThreadPool::run(int64_t n_tasks, TaskRef task) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1 || static_cast<uint64_t>(n_tasks) >= kNoTask) {
    for (int64_t i = 0; i < n_tasks; ++i) task.call(task.callable, i);
    return;
  }
  task_ = task;
  n_tasks_ = n_tasks;
  completed_.store(0, std::memory_order_relaxed);
  const uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
  const auto job = static_cast<uint32_t>(generation);
  for (int t = 0; t < n_threads_; ++t) {
    Share& share = shares_[static_cast<size_t>(t)];
    // Retag first: a late worker of the previous job that reads the new end
    // then fails its compare-exchange on the retagged `next`.
    share.next.store(tagged(job, kNoTask));
    share.end.store(n_tasks * (t + 1) / n_threads_);
    share.next.store(tagged(job, static_cast<uint64_t>(n_tasks * t / n_threads_)));
  }
  // seq_cst pairs with the sleeper's increment of sleeping_workers_ (see
  // wait_for_work): either we see the sleeper, or it sees the new generation.
  generation_.store(generation);
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  finish_tasks(run_tasks(0, job));
  wait_until_done();
}

void ThreadPool::wait_until_done() {
  const auto done = [this] { return completed_.load(std::memory_order_acquire) == n_tasks_; };
  if (spin_until(done)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  caller_sleeping_.store(true);
  done_.wait(lock, done);
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
    finish_tasks(run_tasks(thread_index, static_cast<uint32_t>(seen)));
  }
}

}  // namespace specula

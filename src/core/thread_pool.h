// A persistent pool of worker threads. parallel_for runs tasks [0, n_tasks)
// on the workers and the calling thread, and returns when all are done.
// Workers are created once; a call wakes them rather than creating threads.
//
// Waking latency matters: a decode step makes hundreds of parallel_for calls
// of tens of microseconds each. So an idle worker first spins on an atomic
// generation counter for a short while (about kSpinMicroseconds), which
// answers the next call within a fraction of a microsecond, and only then
// sleeps on a condition variable so an idle engine burns no CPU. After the
// first kPauseMicroseconds the polling yields the core between polls, so
// that on an oversubscribed machine a waiting thread does not take the time
// slice of the thread it waits for.
//
// When the machine has more runnable threads than cores, a worker may be
// descheduled for milliseconds. With fixed shares the caller would wait for
// it at every call; here tasks are claimed one at a time from per-thread
// shares, so whatever a late or preempted worker has not started yet is
// taken by the threads that are running (the caller included). A call is
// then never much slower than running it inline. See docs/model.md for the
// measurements.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace specula {

class ThreadPool {
 public:
  // How long an idle thread polls before it goes to sleep, and for how much
  // of that it polls without yielding the core (see spin_until).
  static constexpr int kSpinMicroseconds = 200;
  static constexpr int kPauseMicroseconds = 10;

  // n_threads counts the calling thread: 1 means no workers, all inline.
  // More than max_threads() is capped there with a warning: thousands of
  // threads only starve the machine. Throws Error when the OS refuses to
  // start a thread (a process limit), after stopping those it started.
  explicit ThreadPool(int n_threads);
  // 4 per core the OS reports, and at least 16.
  static int max_threads();
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls task(i) for every i in [0, n_tasks), each i exactly once, and
  // returns when all calls have returned. [0, n_tasks) is cut into
  // n_threads contiguous shares, share t = [t*n/T, (t+1)*n/T); thread t
  // (the caller is thread 0) runs the tasks of its own share in ascending
  // order, then takes not-yet-started tasks of the other shares. So a caller
  // that splits weight rows into tasks still has each core stream mostly its
  // own rows, while a worker that is late or preempted does not hold the
  // call up for longer than the task it is inside. Which thread runs a task
  // varies from call to call; what a task computes must not depend on it.
  // Not reentrant: task must not call parallel_for on the same pool, and
  // only one thread may call parallel_for at a time. Allocates nothing.
  template <typename Task>
  void parallel_for(int64_t n_tasks, const Task& task) {
    run(n_tasks, TaskRef{&task, [](const void* callable, int64_t i) {
                           (*static_cast<const Task*>(callable))(i);
                         }});
  }

 private:
  // Wakes every worker with stop_ set and joins them.
  void stop_workers();
  // A non-owning reference to the caller's callable (no std::function, so
  // no allocation per call).
  struct TaskRef {
    const void* callable = nullptr;
    void (*call)(const void*, int64_t) = nullptr;
  };
  // The next unclaimed task of one share, tagged with the job it belongs to
  // (high 32 bits: job, low 32 bits: task index), so that a worker that
  // wakes after its job finished cannot claim a task of a later job by
  // mistake. `end` is one past the share's last task.
  struct alignas(64) Share {
    std::atomic<uint64_t> next{0};
    std::atomic<int64_t> end{0};
  };

  void run(int64_t n_tasks, TaskRef task);
  // Claims and runs tasks of job `job`, own share first; returns how many.
  int64_t run_tasks(int thread_index, uint32_t job);
  // Adds `count` finished tasks; wakes the caller when they complete the job.
  void finish_tasks(int64_t count);
  void worker_loop(int thread_index);
  // Waits until generation_ differs from `seen`; returns the new value.
  uint64_t wait_for_work(uint64_t seen);
  void wait_until_done();

  int n_threads_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;  // n_threads_

  // The current job; written by the caller before the shares are tagged and
  // generation_ is bumped (release), read by a worker only after it claimed
  // a task of the job (acquire), which the job cannot finish before.
  TaskRef task_;
  int64_t n_tasks_ = 0;

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int64_t> completed_{0};  // tasks of the current job done
  alignas(64) std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};

  std::mutex mutex_;
  std::condition_variable wake_;  // workers sleep here
  std::condition_variable done_;  // the caller sleeps here
};

}  // namespace specula

#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

namespace specula {
namespace {

TEST(ThreadPool, EveryIndexExactlyOnceOverManyCalls) {
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    for (int call = 0; call < 500; ++call) {
      const int64_t n_tasks = call % 37;  // includes 0 and 1 and sizes < n_threads
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n_tasks));
      pool.parallel_for(n_tasks, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n_tasks; ++i) {
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
            << "threads " << n_threads << " call " << call << " index " << i;
      }
    }
  }
}

TEST(ThreadPool, IdleThreadsTakeTasksABusyThreadHasNotStarted) {
  // Task 2 blocks until task 3 has run. With 2 threads the shares are {0, 1}
  // and {2, 3}: whichever thread sits in task 2, the other must take task 3
  // from that share, or the call never ends (fixed shares would deadlock).
  ThreadPool pool(2);
  std::atomic<bool> task3_done{false};
  std::atomic<bool> task2_saw_task3{false};
  pool.parallel_for(4, [&](int64_t i) {
    if (i == 3) task3_done.store(true);
    if (i != 2) return;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!task3_done.load() && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    task2_saw_task3.store(task3_done.load());
  });
  EXPECT_TRUE(task2_saw_task3.load()) << "task 3 did not run while task 2 was running";
}

TEST(ThreadPool, EachIndexOnceUnderSleepyWorkers) {
  // Workers that fall asleep between calls wake after the caller may already
  // have run their tasks; they must neither repeat a task nor touch a later
  // call's tasks. Each call's counters go out of scope when it returns, so
  // a late task would also be caught by the address sanitizer.
  for (int n_threads : {2, 3}) {
    ThreadPool pool(n_threads);
    for (int call = 0; call < 60; ++call) {
      if (call % 3 == 0)
        std::this_thread::sleep_for(std::chrono::microseconds(ThreadPool::kSpinMicroseconds * 2));
      const int64_t n_tasks = 1 + call % 11;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n_tasks));
      pool.parallel_for(n_tasks, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
      for (int64_t i = 0; i < n_tasks; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1);
    }
  }
}

TEST(ThreadPool, ResultsIdenticalFor1To3Threads) {
  // Each task computes a float sum over its own slice; the per-task results
  // must not depend on the number of threads.
  const int64_t n_tasks = 101;
  auto run = [&](int n_threads) {
    ThreadPool pool(n_threads);
    std::vector<float> out(n_tasks);
    pool.parallel_for(n_tasks, [&](int64_t i) {
      float s = 0.0f;
      for (int k = 1; k < 1000; ++k)
        s += std::sin(static_cast<float>(i * k)) / static_cast<float>(k);
      out[static_cast<size_t>(i)] = s;
    });
    return out;
  };
  const std::vector<float> one = run(1);
  EXPECT_EQ(run(2), one);
  EXPECT_EQ(run(3), one);
}

TEST(ThreadPool, WakesAfterSleeping) {
  // Let workers pass their spin phase and fall asleep, then call again: the
  // call must still complete and cover every index.
  ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(ThreadPool::kSpinMicroseconds * 5));
    std::atomic<int64_t> sum{0};
    pool.parallel_for(100, [&](int64_t i) { sum.fetch_add(i); });
    EXPECT_EQ(sum.load(), 99 * 100 / 2);
  }
}

TEST(ThreadPool, CallerWaitsForSlowWorker) {
  // A worker share that outlasts the caller's spin phase makes the caller
  // sleep; it must be woken when the worker finishes.
  ThreadPool pool(2);
  std::atomic<int> done{0};
  pool.parallel_for(2, [&](int64_t i) {
    if (i == 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    done.fetch_add(1);
  });
  EXPECT_EQ(done.load(), 2);
}

TEST(ThreadPool, AbsurdCountsAreCappedAndStillRunEveryTask) {
  ThreadPool pool(100000);
  EXPECT_EQ(pool.n_threads(), ThreadPool::max_threads());
  EXPECT_GE(ThreadPool::max_threads(), 16);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
  for (const std::atomic<int>& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_EQ(ThreadPool(0).n_threads(), 1);
  EXPECT_EQ(ThreadPool(-5).n_threads(), 1);
}

}  // namespace
}  // namespace specula

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

TEST(ThreadPool, ContiguousShareForEachThread) {
  // The documented split: thread t runs tasks [t*n/T, (t+1)*n/T). A task
  // records which OS thread ran it; each share must be run by one thread.
  ThreadPool pool(3);
  const int64_t n_tasks = 10;
  std::vector<std::thread::id> runner(n_tasks);
  pool.parallel_for(
      n_tasks, [&](int64_t i) { runner[static_cast<size_t>(i)] = std::this_thread::get_id(); });
  for (int t = 0; t < 3; ++t) {
    const int64_t begin = n_tasks * t / 3;
    const int64_t end = n_tasks * (t + 1) / 3;
    for (int64_t i = begin; i < end; ++i)
      EXPECT_EQ(runner[static_cast<size_t>(i)], runner[static_cast<size_t>(begin)]);
  }
  EXPECT_EQ(runner[0], std::this_thread::get_id()) << "the caller takes share 0";
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

}  // namespace
}  // namespace specula

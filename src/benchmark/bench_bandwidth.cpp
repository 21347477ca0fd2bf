#include "benchmark/bench_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/error.h"

namespace specula {
namespace {

constexpr uint64_t kLineBytes = 64;
constexpr uint64_t kWordsPerLine = kLineBytes / sizeof(uint64_t);

// Sums words [begin, end) with eight independent accumulators, so the loop
// is bound by loads, not by one long chain of additions; -O3 vectorizes it.
uint64_t sum_words(const uint64_t* __restrict words, uint64_t begin, uint64_t end) {
  uint64_t acc[kWordsPerLine] = {};
  for (uint64_t i = begin; i < end; i += kWordsPerLine) {
    for (uint64_t j = 0; j < kWordsPerLine; ++j) acc[j] += words[i + j];
  }
  uint64_t total = 0;
  for (uint64_t value : acc) total += value;
  return total;
}

struct FreeDeleter {
  void operator()(uint64_t* p) const { std::free(p); }
};

}  // namespace

std::vector<double> measure_read_bandwidth(uint64_t bytes, int32_t samples, ThreadPool& pool) {
  if (bytes < (uint64_t{1} << 20)) {
    fail("the bandwidth buffer is ", bytes, " bytes: use at least 1 MiB, and for a true memory ",
         "figure several times the last-level cache");
  }
  if (samples < 1) fail("bandwidth samples is ", samples, ": it must be at least 1");
  const uint64_t lines = bytes / kLineBytes;
  const uint64_t n_words = lines * kWordsPerLine;
  std::unique_ptr<uint64_t, FreeDeleter> buffer(
      static_cast<uint64_t*>(std::aligned_alloc(kLineBytes, lines * kLineBytes)));
  if (!buffer) throw std::bad_alloc();
  uint64_t* words = buffer.get();

  // Thread t owns lines [t*L/T, (t+1)*L/T): the same range when writing and
  // reading, as the pool hands out contiguous task ranges.
  const int64_t n_threads = pool.n_threads();
  auto range = [&](int64_t t, uint64_t& begin, uint64_t& end) {
    begin = lines * static_cast<uint64_t>(t) / static_cast<uint64_t>(n_threads) * kWordsPerLine;
    end = lines * static_cast<uint64_t>(t + 1) / static_cast<uint64_t>(n_threads) * kWordsPerLine;
  };
  pool.parallel_for(n_threads, [&](int64_t t) {
    uint64_t begin, end;
    range(t, begin, end);
    for (uint64_t i = begin; i < end; ++i) words[i] = i * 0x9E3779B97F4A7C15ull;
  });

  std::vector<uint64_t> sums(static_cast<size_t>(n_threads));
  std::vector<double> gb_per_second;
  for (int32_t s = 0; s < samples; ++s) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n_threads, [&](int64_t t) {
      uint64_t begin, end;
      range(t, begin, end);
      sums[static_cast<size_t>(t)] = sum_words(words, begin, end);
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    gb_per_second.push_back(static_cast<double>(n_words * sizeof(uint64_t)) / seconds / 1e9);
  }
  // A volatile store of the sums: the compiler must perform every read.
  uint64_t total = 0;
  for (uint64_t sum : sums) total += sum;
  volatile uint64_t sink = total;
  (void)sink;
  return gb_per_second;
}

}  // namespace specula

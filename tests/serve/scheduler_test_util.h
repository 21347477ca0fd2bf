// Helpers of the scheduler tests: submitting many requests at once and
// collecting what the callbacks delivered, and the reference each request
// is compared with (the same prompt decoded alone by the Generator).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "serve/scheduler.h"
#include "speculative/generator.h"

namespace specula::testing {

// What the callbacks of a set of requests delivered.
class Collector {
 public:
  OnToken on_token(uint64_t key) {
    return [this, key](int32_t token) {
      std::lock_guard<std::mutex> lock(mutex_);
      streamed_[key].push_back(token);
      return true;
    };
  }
  OnDone on_done(uint64_t key) {
    return [this, key](CompletionResult result) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_[key] = std::move(result);
      done_.notify_all();
    };
  }
  // Waits for `n` results (at most `seconds`); false on timeout.
  bool wait_for(size_t n, double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    return done_.wait_for(lock, std::chrono::duration<double>(seconds),
                          [&] { return results_.size() >= n; });
  }
  CompletionResult result(uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_[key];
  }
  std::vector<int32_t> streamed(uint64_t key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return streamed_[key];
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::map<uint64_t, CompletionResult> results_;
  std::map<uint64_t, std::vector<int32_t>> streamed_;
};

inline CompletionRequest greedy_request(std::vector<int32_t> prompt, int32_t max_tokens) {
  CompletionRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  return r;
}

// Submits every request at once (keys 0..n-1) and waits for all results.
inline std::vector<CompletionResult> run_all(Scheduler& scheduler,
                                             const std::vector<CompletionRequest>& requests,
                                             Collector& collector, double seconds = 120.0) {
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto id = scheduler.submit(requests[i], collector.on_token(i), collector.on_done(i));
    EXPECT_TRUE(id.has_value()) << "request " << i << " was refused";
  }
  EXPECT_TRUE(collector.wait_for(requests.size(), seconds)) << "requests did not finish in time";
  std::vector<CompletionResult> out;
  for (size_t i = 0; i < requests.size(); ++i) out.push_back(collector.result(i));
  return out;
}

// The request decoded alone: plain greedy decoding by the Generator.
inline std::vector<int32_t> decode_alone(const Model& target, const CompletionRequest& request,
                                         int32_t n_ctx) {
  Generator generator(target, n_ctx, nullptr);
  GeneratorOptions options;
  options.sampling = request.sampling;
  options.max_new_tokens = request.max_tokens;
  options.draft_max = 0;
  return generator.generate(request.prompt, nullptr, options).tokens;
}

}  // namespace specula::testing

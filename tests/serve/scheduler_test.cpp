// The continuous-batching scheduler on a real (tiny, random) model: many
// concurrent requests of different prompts and lengths give, token for
// token, what each gives decoded alone (greedy), with plain decoding and
// with speculation under every batch policy; prompts longer than the row
// budget are prefilled in chunks; the queue bound, cancellation, a callback
// that stops its request, stop_accepting and the destructor behave as
// scheduler.h promises; the metrics add up.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "serve/scheduler_test_util.h"
#include "spec/model_files.h"

namespace specula {
namespace {

using testing::Collector;
using testing::greedy_request;
using testing::run_all;

class SchedulerGreedy : public testing::SuiteModelPair<SchedulerGreedy, testing::small_model> {};

constexpr int32_t kCtx = 96;

// 16 requests: prompts of 1..61 tokens, 1..31 new tokens.
std::vector<CompletionRequest> sixteen_requests(const Model& target) {
  std::vector<CompletionRequest> requests;
  for (int i = 0; i < 16; ++i) {
    const size_t prompt = 1 + static_cast<size_t>((i * 37) % 61);
    const int32_t new_tokens = 1 + (i * 13) % 31;
    std::vector<int32_t> tokens = testing::random_tokens(target, 100 + i, prompt);
    // Some prompts repeat themselves, so prompt lookup finds drafts.
    if (i % 3 == 0 && tokens.size() > 8) {
      for (size_t k = tokens.size() / 2; k < tokens.size(); ++k) {
        tokens[k] = tokens[k - tokens.size() / 2];
      }
    }
    requests.push_back(greedy_request(std::move(tokens), new_tokens));
  }
  return requests;
}

SchedulerOptions options_for(BatchPolicyKind policy, int32_t parallel, int32_t step_rows) {
  SchedulerOptions o;
  o.parallel = parallel;
  o.n_ctx = kCtx;
  o.queue_max = 64;
  o.step_rows = step_rows;
  o.draft_max = 4;
  o.policy = policy;
  return o;
}

enum class Drafts { kSome, kNone, kPolicysCall };

void expect_identity(const Model& target, const Model* draft, const SchedulerOptions& options,
                     Drafts expect_drafts) {
  const std::vector<CompletionRequest> requests = sixteen_requests(target);
  ThreadPool pool(2);
  Scheduler scheduler(target, draft, &pool, options);
  Collector collector;
  const std::vector<CompletionResult> results = run_all(scheduler, requests, collector);
  int64_t generated = 0, drafted = 0, accepted = 0, request_steps = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::vector<int32_t> alone = testing::decode_alone(target, requests[i], kCtx);
    EXPECT_EQ(results[i].tokens, alone) << "request " << i;
    EXPECT_EQ(collector.streamed(i), results[i].tokens) << "request " << i;
    EXPECT_EQ(results[i].finish, FinishReason::kLength) << "request " << i;
    EXPECT_EQ(results[i].prompt_tokens, static_cast<int32_t>(requests[i].prompt.size()));
    EXPECT_TRUE(results[i].error.empty()) << results[i].error;
    EXPECT_GT(results[i].first_token_seconds, 0.0);
    EXPECT_GE(results[i].total_seconds, results[i].first_token_seconds);
    generated += static_cast<int64_t>(results[i].tokens.size());
    drafted += results[i].speculation.drafted;
    for (int64_t n : results[i].speculation.g_steps) request_steps += n;
    accepted += results[i].speculation.accepted;
  }
  const SchedulerMetrics m = scheduler.metrics();
  EXPECT_EQ(m.requests_finished, 16);
  EXPECT_EQ(m.generated_tokens, generated);
  EXPECT_EQ(m.running, 0);
  EXPECT_EQ(m.waiting, 0);
  EXPECT_EQ(m.num_draft_tokens, drafted);
  EXPECT_EQ(m.num_accepted_tokens, accepted);
  int64_t prompt_tokens = 0;
  for (const CompletionRequest& r : requests)
    prompt_tokens += static_cast<int64_t>(r.prompt.size());
  EXPECT_EQ(m.prompt_tokens, prompt_tokens);
  EXPECT_EQ(std::accumulate(m.rows_per_pass.begin(), m.rows_per_pass.end(), int64_t{0}), m.steps);
  // Continuous batching: fewer passes than the requests' steps one by one.
  EXPECT_LT(m.steps, generated);
  EXPECT_EQ(std::accumulate(m.accepted_per_pos.begin(), m.accepted_per_pos.end(), int64_t{0}),
            accepted);
  if (expect_drafts == Drafts::kSome) {
    EXPECT_GT(drafted, 0);
    EXPECT_GT(accepted, 0);
    EXPECT_EQ(std::accumulate(m.drafter_steps.begin(), m.drafter_steps.end(), int64_t{0}),
              m.num_drafts);
  } else if (expect_drafts == Drafts::kNone) {
    EXPECT_EQ(drafted, 0);
  }
  EXPECT_FALSE(m.cost_rows.empty());
  EXPECT_EQ(m.cost_rows.size(), m.cost_seconds.size());
  // One time-to-first-token sample per request, one inter-token sample per
  // later token.
  EXPECT_EQ(m.ttft_seconds.size(), requests.size());
  EXPECT_EQ(static_cast<int64_t>(m.inter_token_seconds.size()),
            generated - static_cast<int64_t>(requests.size()));
  int64_t sequence_steps = 0;
  for (int64_t n : m.g_steps) sequence_steps += n;
  // The batch's draft-length decisions are the requests' own.
  EXPECT_EQ(sequence_steps, request_steps);
  if (expect_drafts != Drafts::kNone) {
    EXPECT_GE(sequence_steps, m.steps / 2);
  }
  EXPECT_TRUE(scheduler.wait_idle(1.0));
}

TEST_F(SchedulerGreedy, PlainDecodingEqualsEachRequestAlone) {
  expect_identity(target(), nullptr, options_for(BatchPolicyKind::kPlain, 4, 256), Drafts::kNone);
}

TEST_F(SchedulerGreedy, ChunkedPrefillEqualsEachRequestAlone) {
  // A 16-row budget: the longer prompts take several steps, beside the
  // sequences already decoding.
  expect_identity(target(), nullptr, options_for(BatchPolicyKind::kPlain, 8, 16), Drafts::kNone);
}

TEST_F(SchedulerGreedy, FixedDraftLengthEqualsEachRequestAlone) {
  expect_identity(target(), &draft(), options_for(BatchPolicyKind::kFixed, 6, 32), Drafts::kSome);
}

TEST_F(SchedulerGreedy, AdaptivePolicyEqualsEachRequestAlone) {
  expect_identity(target(), &draft(), options_for(BatchPolicyKind::kAdaptive, 6, 32),
                  Drafts::kSome);
}

TEST_F(SchedulerGreedy, CapacityAwarePolicyEqualsEachRequestAlone) {
  SchedulerOptions o = options_for(BatchPolicyKind::kCapacityAware, 16, 64);
  // Whatever the policy chooses, the output is the same.
  expect_identity(target(), &draft(), o, Drafts::kPolicysCall);
}

TEST_F(SchedulerGreedy, LookupOnlyDrafterEqualsEachRequestAlone) {
  SchedulerOptions o = options_for(BatchPolicyKind::kFixed, 5, 24);
  o.drafters = {"lookup"};
  expect_identity(target(), nullptr, o, Drafts::kSome);
}

TEST_F(SchedulerGreedy, StopTokensEndARequestWithStop) {
  const CompletionRequest request = greedy_request(testing::random_tokens(target(), 7, 5), 20);
  const std::vector<int32_t> alone = testing::decode_alone(target(), request, kCtx);
  ASSERT_GE(alone.size(), 4u);
  SchedulerOptions o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.stop_tokens = {alone[3]};
  Scheduler scheduler(target(), &draft(), nullptr, o);
  Collector collector;
  CompletionRequest ignoring = request;
  ignoring.ignore_eos = true;
  const std::vector<CompletionResult> results = run_all(scheduler, {request, ignoring}, collector);
  // Up to the first occurrence of the stop token, which is not included.
  const auto stop = std::find(alone.begin(), alone.end(), alone[3]);
  EXPECT_EQ(results[0].tokens, std::vector<int32_t>(alone.begin(), stop));
  EXPECT_EQ(results[0].finish, FinishReason::kStop);
  EXPECT_EQ(results[1].tokens, alone);
  EXPECT_EQ(results[1].finish, FinishReason::kLength);
}

TEST_F(SchedulerGreedy, OnTokenReturningFalseStopsTheRequest) {
  SchedulerOptions o = options_for(BatchPolicyKind::kFixed, 2, 64);
  Scheduler scheduler(target(), &draft(), nullptr, o);
  Collector collector;
  std::atomic<int> seen{0};
  const CompletionRequest request = greedy_request(testing::random_tokens(target(), 9, 6), 40);
  ASSERT_TRUE(scheduler.submit(
      request, [&](int32_t) { return ++seen < 3; }, collector.on_done(0)));
  ASSERT_TRUE(collector.wait_for(1, 60.0));
  const CompletionResult r = collector.result(0);
  EXPECT_EQ(r.finish, FinishReason::kStop);
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_EQ(seen.load(), 3);
  const std::vector<int32_t> alone = testing::decode_alone(target(), request, kCtx);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(alone.begin(), alone.begin() + 3));
}

// The scheduler's thread waits inside a callback until released, so the
// test can fill the queue deterministically.
class Gate {
 public:
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return entered_; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool entered_ = false;
  bool open_ = false;
};

TEST_F(SchedulerGreedy, QueueBoundRefusesAndCancelEndsWaitingAndRunningRequests) {
  SchedulerOptions o = options_for(BatchPolicyKind::kPlain, 1, 64);
  o.queue_max = 2;
  Scheduler scheduler(target(), nullptr, nullptr, o);
  Collector collector;
  Gate gate;
  const std::vector<int32_t> prompt = testing::random_tokens(target(), 3, 4);
  // The first request holds the only slot; its first token blocks the loop.
  const auto first = scheduler.submit(
      greedy_request(prompt, 80),
      [&](int32_t) {
        gate.wait();
        return true;
      },
      collector.on_done(0));
  ASSERT_TRUE(first);
  gate.wait_entered();
  const auto second = scheduler.submit(greedy_request(prompt, 5), nullptr, collector.on_done(1));
  const auto third = scheduler.submit(greedy_request(prompt, 5), nullptr, collector.on_done(2));
  ASSERT_TRUE(second && third);
  EXPECT_FALSE(scheduler.submit(greedy_request(prompt, 5), nullptr, collector.on_done(99)));
  EXPECT_EQ(scheduler.metrics().waiting, 2);
  EXPECT_EQ(scheduler.metrics().running, 1);
  scheduler.cancel(*second);  // waiting
  scheduler.cancel(*first);   // running
  scheduler.cancel(12345);    // unknown: ignored
  gate.open();
  ASSERT_TRUE(collector.wait_for(3, 60.0));
  EXPECT_TRUE(scheduler.wait_idle(10.0));
  const CompletionResult r0 = collector.result(0), r1 = collector.result(1),
                         r2 = collector.result(2);
  EXPECT_EQ(r0.finish, FinishReason::kCancelled);
  EXPECT_LT(r0.tokens.size(), 80u);
  EXPECT_EQ(r1.finish, FinishReason::kCancelled);
  EXPECT_TRUE(r1.tokens.empty());
  EXPECT_EQ(r2.finish, FinishReason::kLength);
  EXPECT_EQ(r2.tokens, testing::decode_alone(target(), greedy_request(prompt, 5), kCtx));
  EXPECT_EQ(scheduler.metrics().requests_finished, 3);
}

TEST_F(SchedulerGreedy, StopAcceptingRefusesNewWorkAndFinishesInFlight) {
  Scheduler scheduler(target(), nullptr, nullptr, options_for(BatchPolicyKind::kPlain, 2, 64));
  Collector collector;
  const CompletionRequest request = greedy_request(testing::random_tokens(target(), 4, 3), 12);
  ASSERT_TRUE(scheduler.submit(request, nullptr, collector.on_done(0)));
  scheduler.stop_accepting();
  EXPECT_FALSE(scheduler.submit(request, nullptr, collector.on_done(1)));
  EXPECT_TRUE(scheduler.wait_idle(60.0));
  ASSERT_TRUE(collector.wait_for(1, 10.0));
  EXPECT_EQ(collector.result(0).tokens, testing::decode_alone(target(), request, kCtx));
  EXPECT_EQ(collector.size(), 1u);
}

TEST_F(SchedulerGreedy, DestructorCancelsWhatIsLeft) {
  Collector collector;
  Gate gate;
  SchedulerOptions o = options_for(BatchPolicyKind::kPlain, 1, 64);
  auto scheduler = std::make_unique<Scheduler>(target(), nullptr, nullptr, o);
  const std::vector<int32_t> prompt = testing::random_tokens(target(), 5, 4);
  ASSERT_TRUE(scheduler->submit(
      greedy_request(prompt, 80),
      [&](int32_t) {
        gate.wait();
        return true;
      },
      collector.on_done(0)));
  gate.wait_entered();
  ASSERT_TRUE(scheduler->submit(greedy_request(prompt, 5), nullptr, collector.on_done(1)));
  // The loop is held inside the first token's callback while the
  // destructor stops it: one running request and one waiting are left.
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    gate.open();
  });
  scheduler.reset();
  opener.join();
  ASSERT_EQ(collector.size(), 2u);
  EXPECT_EQ(collector.result(0).finish, FinishReason::kCancelled);
  EXPECT_LT(collector.result(0).tokens.size(), 80u);
  EXPECT_EQ(collector.result(1).finish, FinishReason::kCancelled);
  EXPECT_TRUE(collector.result(1).tokens.empty());
}

TEST_F(SchedulerGreedy, BadOptionsAndRequestsNameTheField) {
  auto expect_error = [&](SchedulerOptions o, const std::string& field) {
    try {
      Scheduler s(target(), &draft(), nullptr, o);
      ADD_FAILURE() << "no error for " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SchedulerOptions o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.parallel = 0;
  expect_error(o, "parallel");
  o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.n_ctx = 1;
  expect_error(o, "n_ctx");
  o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.step_rows = 0;
  expect_error(o, "step_rows");
  o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.queue_max = -1;
  expect_error(o, "queue_max");
  o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.drafters = {"nonsense"};
  expect_error(o, "nonsense");
  o = options_for(BatchPolicyKind::kFixed, 2, 64);
  o.drafters = {"lookup", "lookup"};
  expect_error(o, "twice");

  Scheduler scheduler(target(), &draft(), nullptr, options_for(BatchPolicyKind::kFixed, 2, 64));
  auto expect_refused = [&](CompletionRequest r, const std::string& field) {
    try {
      scheduler.submit(r, nullptr, nullptr);
      ADD_FAILURE() << "no error for " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  expect_refused(greedy_request({}, 4), "prompt");
  expect_refused(greedy_request(std::vector<int32_t>(kCtx, 1), 4), "prompt");
  expect_refused(greedy_request({1, 999}, 4), "999");
  expect_refused(greedy_request({1, 2}, 0), "max_tokens");
  CompletionRequest hot = greedy_request({1, 2}, 4);
  hot.sampling.temperature = -1.0f;
  expect_refused(hot, "temperature");
}

}  // namespace
}  // namespace specula

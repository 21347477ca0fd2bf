// Response shaping, stop strings, SSE framing, the API key check and the
// metrics text.
#include <gtest/gtest.h>

#include "serve/api_response.h"
#include "serve/api_stop.h"
#include "serve/http_auth.h"
#include "serve/http_sse.h"
#include "serve/metrics_text.h"

namespace specula {
namespace {

using nlohmann::json;

TEST(ApiResponse, CompletionHasOpenAIsFieldsAndSpeculative) {
  RequestSpeculation s;
  s.drafted = 10;
  s.accepted = 7;
  s.g_steps = {1, 0, 2};
  DrafterUsage d;
  d.name = "model";
  d.steps = 3;
  d.drafted_tokens = 10;
  d.accepted_tokens = 7;
  s.drafters = {d};
  const json body =
      completion_json({"cmpl-1", 1700000000, "m"}, "hi", FinishReason::kLength, {5, 2}, s);
  EXPECT_EQ(body["id"], "cmpl-1");
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["choices"][0]["text"], "hi");
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"],
            json({{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}}));
  EXPECT_EQ(body["speculative"]["drafted"], 10);
  EXPECT_EQ(body["speculative"]["accepted"], 7);
  EXPECT_DOUBLE_EQ(body["speculative"]["acceptance"].get<double>(), 0.7);
  EXPECT_EQ(body["speculative"]["g_histogram"], json({1, 0, 2}));
  EXPECT_EQ(body["speculative"]["drafters"][0]["name"], "model");
}

TEST(ApiResponse, ChunksAndErrors) {
  const CompletionIdentity id{"cmpl-2", 1, "m"};
  EXPECT_TRUE(chunk_json(id, "a")["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(final_chunk_json(id, FinishReason::kStop, {})["choices"][0]["finish_reason"], "stop");
  const json usage = usage_chunk_json(id, {3, 4});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
  const json e = error_json(ApiError(400, "top_p is 2", "top_p"));
  EXPECT_EQ(e["error"]["message"], "top_p is 2");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "top_p");
  EXPECT_TRUE(e["error"]["code"].is_null());
  EXPECT_EQ(sse_event("{}"), "data: {}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

// Feeds pieces one at a time and returns everything sent.
std::string run_stops(std::vector<std::string> stops, const std::vector<std::string>& pieces,
                      bool* stopped = nullptr) {
  StopMatcher m(std::move(stops));
  std::string out;
  for (const std::string& piece : pieces) out += m.push(piece);
  out += m.flush();
  if (stopped) *stopped = m.stopped();
  return out;
}

TEST(StopMatcher, StopTextIsNotSentEvenAcrossPieces) {
  bool stopped = false;
  EXPECT_EQ(run_stops({"END"}, {"ab", "cE", "N", "Dxyz"}, &stopped), "abc");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(run_stops({"END"}, {"abEN", "x"}, &stopped), "abENx");  // a false start is sent
  EXPECT_FALSE(stopped);
  EXPECT_EQ(run_stops({"\n\n", "#"}, {"a\n", "b#c"}), "a\nb");  // the earliest match wins
  EXPECT_EQ(run_stops({}, {"a", "b"}), "ab");
}

TEST(StopMatcher, HoldsOnlyWhatMightStartAStop) {
  StopMatcher m({"stop"});
  EXPECT_EQ(m.push("xs"), "x");  // "s" might start "stop"
  EXPECT_EQ(m.push("t"), "");    // "st"
  EXPECT_EQ(m.push("ay"), "stay");
  EXPECT_EQ(m.push("sto"), "");
  EXPECT_EQ(m.push("p!"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
}

TEST(HttpAuth, BearerKey) {
  EXPECT_TRUE(bearer_authorized("", ""));  // no key configured
  EXPECT_TRUE(bearer_authorized("Bearer secret", "secret"));
  EXPECT_TRUE(bearer_authorized("bearer  secret ", "secret"));
  EXPECT_FALSE(bearer_authorized("Bearer secreT", "secret"));
  EXPECT_FALSE(bearer_authorized("Bearer secret2", "secret"));
  EXPECT_FALSE(bearer_authorized("Bearer secre", "secret"));
  EXPECT_FALSE(bearer_authorized("Bearer ", "secret"));
  EXPECT_FALSE(bearer_authorized("secret", "secret"));
  EXPECT_FALSE(bearer_authorized("", "secret"));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_FALSE(constant_time_equal("aa", "a"));
}

TEST(MetricsText, PrometheusNamesAndValues) {
  SchedulerMetrics m;
  m.running = 2;
  m.waiting = 3;
  m.prompt_tokens = 100;
  m.generated_tokens = 50;
  m.num_drafts = 4;
  m.num_draft_tokens = 12;
  m.num_accepted_tokens = 9;
  m.accepted_per_pos = {4, 3, 2};
  m.g_steps = {1, 0, 0, 4};
  m.drafter_names = {"model", "lookup"};
  m.drafter_steps = {3, 1};
  m.rows_per_pass = std::vector<int64_t>(20, 0);
  m.rows_per_pass[1] = 5;
  m.rows_per_pass[9] = 2;
  m.cost_rows = {1, 16};
  m.cost_seconds = {0.01, 0.02};
  HttpCounters http;
  http.time_to_first_token.observe(0.03);
  http.time_to_first_token.observe(3.0);
  const std::string text = prometheus_text(m, http);
  for (const char* line : {
           "specula:num_requests_running 2\n",
           "specula:num_requests_waiting 3\n",
           "specula:prompt_tokens_total 100\n",
           "specula:generation_tokens_total 50\n",
           "specula:spec_decode_num_drafts_total 4\n",
           "specula:spec_decode_num_draft_tokens_total 12\n",
           "specula:spec_decode_num_accepted_tokens_total 9\n",
           "specula:spec_decode_num_accepted_tokens_per_pos_total{position=\"2\"} 2\n",
           "specula:spec_decode_draft_length_steps_total{g=\"3\"} 4\n",
           "specula:spec_decode_drafter_steps_total{drafter=\"lookup\"} 1\n",
           "specula:target_pass_rows_bucket{le=\"1\"} 5\n",
           "specula:target_pass_rows_bucket{le=\"8\"} 5\n",
           "specula:target_pass_rows_bucket{le=\"16\"} 7\n",
           "specula:target_pass_rows_count 7\n",
           "specula:target_pass_rows_sum 23\n",
           "specula:target_pass_cost_seconds{rows=\"16\"} 0.02",
           "specula:time_to_first_token_seconds_bucket{le=\"0.04\"} 1\n",
           "specula:time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n",
           "specula:time_to_first_token_seconds_count 2\n",
           "# TYPE specula:inter_token_latency_seconds histogram\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << text;
  }
}

}  // namespace
}  // namespace specula

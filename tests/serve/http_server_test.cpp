// The HTTP layer against a fake scheduler: routes, errors, streaming,
// authentication, back-pressure, disconnects and draining, over real
// sockets on 127.0.0.1.
#include "serve/http_server.h"

#include <httplib.h>
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serve/http_test_support.h"

namespace specula {
namespace {

using nlohmann::json;
using testing::ByteTokenizer;
using testing::FakeBackend;
using testing::RawConnection;
using testing::sse_data;

struct Served {
  explicit Served(HttpServerOptions options = {}, int slots = 4, int queue_max = 8,
                  double step_seconds = 0.002, bool ready = true)
      : backend(slots, queue_max, step_seconds) {
    signal(SIGPIPE, SIG_IGN);
    options.port = 0;
    options.keep_alive_seconds = 0.2;
    server = std::make_unique<HttpServer>(options);
    port = server->listen();
    if (ready) set_ready();
  }
  ~Served() {
    server->detach_backend();
    server->stop();
  }
  void set_ready() { server->set_ready({"fake-model", 64, 257, &tokenizer, &backend}); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    return c;
  }
  ByteTokenizer tokenizer;
  FakeBackend backend;
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

json post(const Served& s, const std::string& path, const std::string& body, int* status,
          const httplib::Headers& headers = {}) {
  auto result = s.client().Post(path, headers, body, "application/json");
  if (!result) {
    *status = -1;
    return {};
  }
  *status = result->status;
  return json::parse(result->body, nullptr, false);
}

TEST(HttpServer, HealthIs503WhileLoadingThen200) {
  Served s({}, 4, 8, 0.002, /*ready=*/false);
  auto res = s.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "loading");
  int status = 0;
  post(s, "/v1/completions", R"({"prompt": "a"})", &status);
  EXPECT_EQ(status, 503);
  s.set_ready();
  res = s.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, CompletionTextUsageAndSpeculative) {
  Served s;
  int status = 0;
  const json body = post(s, "/v1/completions",
                         R"({"model": "anything", "prompt": "abc", "max_tokens": 7})", &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "fake-model");
  EXPECT_EQ(body["choices"][0]["text"], "abcabca");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(body["usage"]["completion_tokens"], 7);
  EXPECT_EQ(body["usage"]["total_tokens"], 10);
  EXPECT_EQ(body["speculative"]["accepted"], 3);
  EXPECT_TRUE(body["id"].get<std::string>().starts_with("cmpl-"));
}

TEST(HttpServer, StopStringEndsTheCompletionWithoutItsText) {
  Served s;
  int status = 0;
  const json body = post(
      s, "/v1/completions",
      R"({"prompt": "hello world ", "max_tokens": 40, "stop": ["wor", "zzz"], "return_tokens": true})",
      &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["choices"][0]["text"], "hello ");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["completion_tokens"], 9);  // up to the "r" that completed "wor"
  EXPECT_EQ(body["choices"][0]["tokens"].size(), 9u);
}

TEST(HttpServer, EndOfTextTokenIsStopUnlessIgnored) {
  Served s;
  int status = 0;
  json body =
      post(s, "/v1/completions", R"({"prompt": [104, 105, 256], "max_tokens": 10})", &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["choices"][0]["text"], "hi");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  body = post(s, "/v1/completions",
              R"({"prompt": [104, 105, 256], "max_tokens": 4, "ignore_eos": true})", &status);
  EXPECT_EQ(body["choices"][0]["text"], "hih");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
}

TEST(HttpServer, StreamingEventsThenDone) {
  Served s;
  RawConnection c(s.port);
  ASSERT_TRUE(c.connected());
  c.post("/v1/completions",
         R"({"prompt": "xy", "max_tokens": 5, "stream": true,
             "stream_options": {"include_usage": true}})");
  c.read_all();
  EXPECT_NE(c.received().find("Content-Type: text/event-stream"), std::string::npos);
  const std::vector<std::string> data = sse_data(c.received());
  ASSERT_GE(data.size(), 4u) << c.received();
  EXPECT_EQ(data.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 3 < data.size(); ++i) {
    const json chunk = json::parse(data[i]);
    EXPECT_EQ(chunk["object"], "text_completion");
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
    text += chunk["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, "xyxyx");
  const json last = json::parse(data[data.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last.contains("speculative"));
  const json usage = json::parse(data[data.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 5);
}

TEST(HttpServer, StreamHoldsBackIncompleteUtf8) {
  Served s;
  RawConnection c(s.port);
  // "é" is two bytes, 0xC3 0xA9: never sent half.
  c.post("/v1/completions", R"({"prompt": [195, 169, 97], "max_tokens": 6, "stream": true})");
  c.read_all();
  std::string text;
  for (const std::string& d : sse_data(c.received())) {
    if (d == "[DONE]") continue;
    const std::string piece = json::parse(d)["choices"][0]["text"].get<std::string>();
    EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "a replacement character";
    text += piece;
  }
  EXPECT_EQ(text,
            "\xC3\xA9"
            "a\xC3\xA9"
            "a");
}

struct BadRequest {
  std::string body;
  int status;
  const char* param;  // nullptr: null
};

TEST(HttpServer, BadRequestsAre4xxNamingTheField) {
  HttpServerOptions options;
  options.max_body_bytes = 4096;
  Served s(options);
  const std::vector<BadRequest> cases = {
      {"{not json", 400, nullptr},
      {"{\"prompt\": 1}", 400, "prompt"},
      {"{\"max_tokens\": 3}", 400, "prompt"},
      {"{\"prompt\": \"a\", \"max_tokens\": 0}", 400, "max_tokens"},
      {"{\"prompt\": \"a\", \"max_tokens\": 64}", 400, "max_tokens"},  // 1 + 64 > 64
      {"{\"prompt\": \"a\", \"temperature\": -1}", 400, "temperature"},
      {"{\"prompt\": \"a\", \"top_p\": 1.01}", 400, "top_p"},
      {"{\"prompt\": \"a\", \"stream\": 1}", 400, "stream"},
      {"{\"prompt\": [1, 300]}", 400, "prompt"},  // outside the 257 ids
      {"{\"prompt\": \"" + std::string(64, 'a') + "\"}", 400, "prompt"},
      {"{\"prompt\": \"" + std::string(5000, 'a') + "\"}", 413, nullptr},
  };
  for (const BadRequest& c : cases) {
    int status = 0;
    const json body = post(s, "/v1/completions", c.body, &status);
    EXPECT_EQ(status, c.status) << c.body.substr(0, 80);
    ASSERT_TRUE(body.is_object() && body.contains("error")) << c.body.substr(0, 80);
    EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
    if (c.param) {
      EXPECT_EQ(body["error"]["param"], c.param) << body.dump();
    } else {
      EXPECT_TRUE(body["error"]["param"].is_null()) << body.dump();
    }
  }
  // The prompt longer than the context: both lengths in the message.
  int status = 0;
  const json too_long =
      post(s, "/v1/completions", "{\"prompt\": \"" + std::string(70, 'a') + "\"}", &status);
  const std::string message = too_long["error"]["message"];
  EXPECT_NE(message.find("70 tokens"), std::string::npos) << message;
  EXPECT_NE(message.find("64"), std::string::npos) << message;
  // The server still answers after all of them.
  post(s, "/v1/completions", R"({"prompt": "ok", "max_tokens": 2})", &status);
  EXPECT_EQ(status, 200);
}

TEST(HttpServer, UnknownRouteAndWrongMethod) {
  Served s;
  auto res = s.client().Get("/v2/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().find("/v2/nothing"),
            std::string::npos);
  res = s.client().Get("/v1/completions");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST(HttpServer, ApiKeyIsRequiredExceptForHealth) {
  HttpServerOptions options;
  options.api_key = "sk-test";
  Served s(options);
  int status = 0;
  json body = post(s, "/v1/completions", R"({"prompt": "a", "max_tokens": 1})", &status);
  EXPECT_EQ(status, 401);
  EXPECT_EQ(body["error"]["type"], "authentication_error");
  post(s, "/v1/completions", R"({"prompt": "a", "max_tokens": 1})", &status,
       {{"Authorization", "Bearer sk-wrong"}});
  EXPECT_EQ(status, 401);
  post(s, "/v1/completions", R"({"prompt": "a", "max_tokens": 1})", &status,
       {{"Authorization", "Bearer sk-test"}});
  EXPECT_EQ(status, 200);
  auto res = s.client().Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = s.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(HttpServer, ModelsTokenizeDetokenizeMetrics) {
  Served s;
  auto res = s.client().Get("/v1/models");
  ASSERT_TRUE(res);
  const json models = json::parse(res->body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "fake-model");
  int status = 0;
  EXPECT_EQ(post(s, "/tokenize", R"({"content": "hi"})", &status)["tokens"], json({104, 105}));
  EXPECT_EQ(post(s, "/detokenize", R"({"tokens": [104, 105]})", &status)["content"], "hi");
  post(s, "/v1/completions", R"({"prompt": "a", "max_tokens": 3})", &status);
  res = s.client().Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("specula:num_requests_running 0"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("specula:request_success_total{finished_reason=\"length\"} 1"),
            std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("specula:time_to_first_token_seconds_count 1"), std::string::npos);
  EXPECT_NE(res->body.find("specula:inter_token_latency_seconds_count 2"), std::string::npos);
}

TEST(HttpServer, FullQueueIs429WithRetryAfter) {
  // One slot, one waiting place, slow steps: the third request is refused.
  Served s({}, 1, 1, 0.1);  // the first holds the slot for 6 s
  RawConnection first(s.port), second(s.port);
  first.post("/v1/completions", R"({"prompt": "a", "max_tokens": 60, "stream": true})");
  ASSERT_TRUE(first.read_until("data: "));
  second.post("/v1/completions", R"({"prompt": "a", "max_tokens": 40, "stream": true})");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (s.backend.metrics().waiting < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto res =
      s.client().Post("/v1/completions", R"({"prompt": "a", "max_tokens": 1})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "queue_full");
}

// Polls the backend (at most 5 s) until `done(running requests)`.
template <typename Done>
void wait_for_running(const Served& s, Done done) {
  const auto start = std::chrono::steady_clock::now();
  while (!done(s.backend.metrics().running) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// After a client hung up: its request ends, cancelled, within 2 s.
void expect_cancelled_within_2_seconds(const Served& s) {
  const auto start = std::chrono::steady_clock::now();
  wait_for_running(s, [](int running) { return running == 0; });
  EXPECT_EQ(s.backend.metrics().running, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_GE(s.backend.cancels(), 1);
}

TEST(HttpServer, ClientThatHangsUpMidStreamIsCancelled) {
  Served s({}, 4, 8, 0.05);  // 60 tokens take 3 s
  RawConnection c(s.port);
  c.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 60, "stream": true})");
  ASSERT_TRUE(c.read_until("data: "));
  EXPECT_EQ(s.backend.metrics().running, 1);
  c.close();
  expect_cancelled_within_2_seconds(s);
}

TEST(HttpServer, ClientThatHangsUpWithoutStreamingIsCancelled) {
  // Nothing is written to a non-streaming client before the end: the
  // server watches its socket instead.
  Served s({}, 4, 8, 0.05);  // 60 tokens take 3 s
  RawConnection c(s.port);
  c.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 60})");
  wait_for_running(s, [](int running) { return running >= 1; });
  ASSERT_EQ(s.backend.metrics().running, 1);
  c.close();
  expect_cancelled_within_2_seconds(s);
}

TEST(HttpServer, NonStreamingClientThatStaysGetsItsAnswer) {
  // The probe must not mistake a waiting client for a gone one.
  Served s({}, 4, 8, 0.02);  // 30 tokens: 0.6 s, several probe periods
  int status = 0;
  const json body = post(s, "/v1/completions", R"({"prompt": "abc", "max_tokens": 30})", &status);
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["usage"]["completion_tokens"], 30);
  EXPECT_EQ(s.backend.cancels(), 0);
}

TEST(HttpServer, QueuedClientThatHangsUpIsCancelledByTheKeepAlive) {
  // One slot held by a long request; the second waits, hangs up, and the
  // keep-alive comments find that out.
  Served s({}, 1, 4, 0.05);
  RawConnection holder(s.port), waiter(s.port);
  holder.post("/v1/completions", R"({"prompt": "a", "max_tokens": 60, "stream": true})");
  ASSERT_TRUE(holder.read_until("data: "));
  waiter.post("/v1/completions", R"({"prompt": "b", "max_tokens": 10, "stream": true})");
  ASSERT_TRUE(waiter.read_until(": keep-alive"));
  waiter.close();
  const auto start = std::chrono::steady_clock::now();
  while (s.backend.cancels() < 1 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(s.backend.cancels(), 1);
}

TEST(HttpServer, DrainingRefusesNewRequestsAndFinishesOldOnes) {
  Served s({}, 4, 8, 0.01);
  RawConnection c(s.port);
  c.post("/v1/completions", R"({"prompt": "abc", "max_tokens": 30, "stream": true})");
  ASSERT_TRUE(c.read_until("data: "));
  s.server->start_draining();
  int status = 0;
  const json refused = post(s, "/v1/completions", R"({"prompt": "a"})", &status);
  EXPECT_EQ(status, 503);
  EXPECT_EQ(refused["error"]["code"], "draining");
  auto health = s.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  // The request in flight still completes.
  c.read_all();
  const std::vector<std::string> data = sse_data(c.received());
  ASSERT_FALSE(data.empty());
  EXPECT_EQ(data.back(), "[DONE]");
  EXPECT_TRUE(s.server->wait_completions(5));
}

}  // namespace
}  // namespace specula

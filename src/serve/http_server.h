// The HTTP front of `specula serve` (docs/serving.md): OpenAI's completions
// and chat completions APIs and the server's own routes over cpp-httplib, answering from a
// CompletionBackend (the Scheduler; a fake in tests).
//
// Life cycle: listen() binds and answers at once (503 "loading" until
// set_ready), then set_ready() with the model; on SIGTERM the front end calls
// start_draining() (new requests: 503) and waits for the scheduler, then
// detach_backend(), wait_completions() and stop().
//
// Each HTTP connection is served by one thread of a pool (a streaming
// request holds its thread while it streams); the scheduler's callbacks
// only append to the request's state and wake that thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "chat/chat_template.h"
#include "serve/metrics_text.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace specula {

// What the HTTP layer needs of the decoding side: the Scheduler's methods.
class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;
  virtual std::optional<uint64_t> submit(CompletionRequest request, OnToken on_token,
                                         OnDone on_done) = 0;
  virtual void cancel(uint64_t id) = 0;
  virtual SchedulerMetrics metrics() const = 0;
};

struct ServedModel {
  std::string id;     // the `model` of responses and /v1/models
  int32_t n_ctx = 0;  // tokens per request (prompt + completion)
  int32_t n_vocab = 0;
  const Tokenizer* tokenizer = nullptr;  // null: prompts as token ids only, no text
  // The backend may outlive the server (its callbacks hold no pointer to
  // it), but the tokenizer must outlive the backend's last on_done.
  CompletionBackend* backend = nullptr;
  // /v1/chat/completions and /apply-template: the model's template (or
  // --chat-template's) and the BOS/EOS texts it sees; null: those routes
  // answer 400.
  std::shared_ptr<const ChatTemplate> chat_template;
  SpecialTokenTexts special_tokens;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                          // 0: any free port (listen() returns it)
  std::string api_key;                      // empty: no authentication
  size_t max_body_bytes = size_t{1} << 20;  // larger bodies: 413
  int threads = 64;                         // HTTP threads: open connections served at once
  // A quiet stream (queued, or a long prefill) gets an SSE comment this
  // often, which also finds a client that has gone.
  double keep_alive_seconds = 1.0;
  int retry_after_seconds = 1;  // the Retry-After of a 429
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts answering on a thread of its own; returns the port.
  // Throws Error when the address cannot be bound.
  int listen();
  void set_ready(ServedModel model);
  void start_draining();
  // From now on nothing calls the backend (it is about to be destroyed);
  // requests still waiting get the backend's last on_done calls.
  void detach_backend();
  // Waits until no completion is being answered, or `seconds` passed; true when none is.
  bool wait_completions(double seconds);
  void stop();

  const HttpCounters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace specula

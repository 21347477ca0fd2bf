#include "serve/http_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>

#include "core/error.h"
#include "serve/api_request.h"
#include "serve/api_response.h"
#include "serve/api_stop.h"
#include "serve/connection_probe.h"
#include "serve/http_auth.h"
#include "serve/http_sse.h"
#include "serve/listen_backlog.h"

namespace specula {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// How often a non-streaming request looks whether its client is still there.
constexpr std::chrono::milliseconds kDisconnectProbePeriod{200};

// Connections the kernel queues before the accept thread takes them
// (httplib's own is 5; see listen_backlog.h).
constexpr int kListenBacklog = 1024;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void answer_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void answer_error(httplib::Response& res, const ApiError& error) {
  answer_json(res, error.status, error_json(error));
}

// One completion between the scheduler's thread (on_token, on_done) and
// the HTTP thread answering it.
struct CompletionState {
  std::mutex mutex;
  std::condition_variable changed;
  std::string pending_text;  // not yet sent (streaming) or the whole text
  std::vector<int32_t> pending_tokens;
  bool done = false;
  CompletionResult result;
  std::optional<uint64_t> id;
  int64_t tokens = 0;  // counted up to the stop string's token
  std::atomic<bool> client_gone{false};

  // Used on the scheduler's thread only.
  std::unique_ptr<StreamingDecoder> decoder;
  StopMatcher stop{{}};
  Clock::time_point submitted;
  Clock::time_point last_token;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  // Shared with the scheduler's callbacks, which may outlive the server
  // (a backend destroyed after it ends its last requests then).
  std::shared_ptr<HttpCounters> counters = std::make_shared<HttpCounters>();
  const int64_t started = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();

  // The model, once loaded; guarded by model_mutex (set once, the backend
  // cleared at shutdown).
  mutable std::shared_mutex model_mutex;
  std::optional<ServedModel> model;
  // Built once from the model's tokenizer (it scans the vocabulary).
  std::shared_ptr<const PromptTokenizer> prompt_tokenizer;
  std::atomic<bool> draining{false};

  std::mutex active_mutex;
  std::condition_variable active_changed;
  int active = 0;  // completions being answered
  std::atomic<uint64_t> next_id{1};
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seeds_mutex;

  explicit Impl(HttpServerOptions o) : options(std::move(o)) {}

  // The model to answer with, or the 503 while loading or draining.
  ServedModel ready_model() const {
    std::shared_lock lock(model_mutex);
    if (draining.load()) {
      throw ApiError(503, "the server is shutting down: send the request to another server", "",
                     "unavailable_error", "draining");
    }
    if (!model || model->backend == nullptr) {
      throw ApiError(503, "the model is loading: retry in a moment", "", "unavailable_error",
                     "loading");
    }
    return *model;
  }

  void cancel(const CompletionState& state) {
    std::optional<uint64_t> id;
    {
      std::lock_guard lock(const_cast<CompletionState&>(state).mutex);
      id = state.id;
    }
    if (!id) return;
    std::shared_lock lock(model_mutex);
    if (model && model->backend != nullptr) model->backend->cancel(*id);
  }

  void enter() {
    std::lock_guard lock(active_mutex);
    ++active;
  }
  void leave() {
    {
      std::lock_guard lock(active_mutex);
      --active;
    }
    active_changed.notify_all();
  }

  // Runs a route: checks the key, turns ApiError into its answer.
  template <typename Route>
  httplib::Server::Handler route(Route&& handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!bearer_authorized(req.get_header_value("Authorization"), options.api_key)) {
          throw ApiError(401,
                         "missing or wrong API key: send the header \"Authorization: Bearer "
                         "<key>\" with the server's --api-key",
                         "", "authentication_error", "invalid_api_key");
        }
        handler(req, res);
      } catch (const ApiError& e) {
        if (e.status >= 400 && e.status < 500 && e.status != 401) ++counters->rejected_invalid;
        answer_error(res, e);
      } catch (const std::exception& e) {
        answer_error(res,
                     ApiError(500, std::string("internal error: ") + e.what(), "", "server_error"));
      }
    };
  }

  void install_routes();
  void completions(const httplib::Request& req, httplib::Response& res);
  void chat_completions(const httplib::Request& req, httplib::Response& res);
  void apply_template(const httplib::Request& req, httplib::Response& res);
  // Submits and answers one completion (both APIs; identity.chat picks the shapes).
  void run_completion(const ServedModel& m, const CompletionParams& params,
                      std::vector<int32_t> prompt, bool return_tokens, CompletionIdentity identity,
                      const httplib::Request& req, httplib::Response& res);
  void tokenize(const httplib::Request& req, httplib::Response& res);
  void detokenize(const httplib::Request& req, httplib::Response& res);
};

namespace {

const char* const kRoutes =
    "POST /v1/completions, POST /v1/chat/completions, POST /apply-template, GET /v1/models, GET "
    "/health, GET /metrics, POST /tokenize, POST "
    "/detokenize";

bool known_path(const std::string& path) {
  return path == "/v1/completions" || path == "/v1/chat/completions" || path == "/apply-template" ||
         path == "/v1/models" || path == "/health" || path == "/metrics" || path == "/tokenize" ||
         path == "/detokenize";
}

}  // namespace

void HttpServer::Impl::install_routes() {
  server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    try {
      (void)ready_model();
      answer_json(res, 200, {{"status", "ok"}});
    } catch (const ApiError& e) {
      answer_error(res, e);
    }
  });
  server.Get("/v1/models", route([this](const httplib::Request&, httplib::Response& res) {
               const ServedModel m = ready_model();
               answer_json(res, 200, models_json(m.id, started, m.n_ctx, m.n_vocab));
             }));
  server.Get("/metrics", route([this](const httplib::Request&, httplib::Response& res) {
               const ServedModel m = ready_model();
               res.set_content(prometheus_text(m.backend->metrics(), *counters),
                               "text/plain; version=0.0.4");
             }));
  server.Post("/v1/completions", route([this](const httplib::Request& req, httplib::Response& res) {
                completions(req, res);
              }));
  server.Post("/v1/chat/completions",
              route([this](const httplib::Request& req, httplib::Response& res) {
                chat_completions(req, res);
              }));
  server.Post("/apply-template", route([this](const httplib::Request& req, httplib::Response& res) {
                apply_template(req, res);
              }));
  server.Post("/tokenize", route([this](const httplib::Request& req, httplib::Response& res) {
                tokenize(req, res);
              }));
  server.Post("/detokenize", route([this](const httplib::Request& req, httplib::Response& res) {
                detokenize(req, res);
              }));
  // Statuses httplib sets itself (404, 413, ...) get an OpenAI-shaped body.
  server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError error(res.status, "HTTP error " + std::to_string(res.status));
    if (res.status == 404 && known_path(req.path)) {
      error = ApiError(
          405, req.method + " is not allowed on " + req.path + "; the routes are " + kRoutes, "",
          "invalid_request_error", "method_not_allowed");
    } else if (res.status == 404) {
      error =
          ApiError(404, "no route " + req.method + " " + req.path + "; the routes are " + kRoutes,
                   "", "invalid_request_error", "not_found");
    } else if (res.status == 413) {
      error =
          ApiError(413,
                   "the request body is over the limit of " +
                       std::to_string(options.max_body_bytes) + " bytes (the server's --max-body)",
                   "", "invalid_request_error", "body_too_large");
    }
    ++counters->rejected_invalid;
    answer_error(res, error);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

void HttpServer::Impl::tokenize(const httplib::Request& req, httplib::Response& res) {
  const ServedModel m = ready_model();
  const TokenizeParams params = parse_tokenize_body(req.body);
  if (m.tokenizer == nullptr) {
    bad_request("content", "this model has no supported tokenizer: text cannot be tokenized");
  }
  const std::vector<int32_t> ids = m.tokenizer->encode(params.content, params.add_special, true);
  answer_json(res, 200, {{"tokens", ids}});
}

void HttpServer::Impl::detokenize(const httplib::Request& req, httplib::Response& res) {
  const ServedModel m = ready_model();
  const std::vector<int32_t> ids = parse_detokenize_body(req.body, m.n_vocab);
  if (m.tokenizer == nullptr) {
    bad_request("tokens", "this model has no supported tokenizer: ids cannot become text");
  }
  answer_json(res, 200, {{"content", m.tokenizer->decode(ids)}});
}

void HttpServer::Impl::completions(const httplib::Request& req, httplib::Response& res) {
  const ServedModel m = ready_model();
  const CompletionParams params = parse_completion_body(req.body);
  const bool return_tokens = [&] {
    const json body = json::parse(req.body, nullptr, false);
    const auto it = body.find("return_tokens");
    return it != body.end() && it->is_boolean() && it->get<bool>();
  }();
  std::vector<int32_t> prompt = params.prompt_ids;
  if (params.prompt_is_text) {
    if (m.tokenizer == nullptr) {
      bad_request("prompt",
                  "this model has no supported tokenizer: give the prompt as an array of token "
                  "ids");
    }
    prompt = m.tokenizer->encode(params.prompt_text, /*add_special=*/true, /*parse_special=*/true);
  }
  run_completion(m, params, std::move(prompt), return_tokens, CompletionIdentity{"cmpl-", 0, m.id},
                 req, res);
}

namespace {

// The conversation rendered by the model's template, or the 400 saying why not.
ChatPrompt render_conversation(const ServedModel& m, const nlohmann::ordered_json& messages,
                               const nlohmann::ordered_json& template_variables) {
  if (m.chat_template == nullptr) {
    bad_request("messages",
                "this model has no chat template (tokenizer.chat_template): start the server with "
                "--chat-template FILE or a built-in name (e.g. chatml, llama3), or send a raw "
                "prompt to /v1/completions");
  }
  ChatRenderOptions options;
  options.add_generation_prompt = true;
  options.bos_token = m.special_tokens.bos;
  options.eos_token = m.special_tokens.eos;
  options.extra_variables = template_variables;
  try {
    return m.chat_template->render_prompt(messages, options);
  } catch (const jinja::TemplateRaised& e) {
    bad_request("messages", "the chat template rejected the conversation: " + e.message());
  } catch (const Error& e) {
    bad_request("messages",
                std::string("the chat template failed on this conversation: ") + e.what());
  }
}

}  // namespace

void HttpServer::Impl::chat_completions(const httplib::Request& req, httplib::Response& res) {
  const ServedModel m = ready_model();
  const ChatParams chat = parse_chat_body(req.body);
  if (m.tokenizer == nullptr) {
    bad_request("messages", "this model has no supported tokenizer: chat needs one");
  }
  const ChatPrompt prompt = render_conversation(m, chat.messages, chat.template_variables);
  std::shared_ptr<const PromptTokenizer> prompt_tokenizer;
  {
    std::shared_lock lock(model_mutex);
    prompt_tokenizer = this->prompt_tokenizer;
  }
  std::vector<int32_t> ids = prompt_tokenizer->tokenize(prompt);
  const bool return_tokens = [&] {
    const json body = json::parse(req.body, nullptr, false);
    const auto it = body.find("return_tokens");
    return it != body.end() && it->is_boolean() && it->get<bool>();
  }();
  run_completion(m, chat.params, std::move(ids), return_tokens,
                 CompletionIdentity{"chatcmpl-", 0, m.id, true}, req, res);
}

void HttpServer::Impl::apply_template(const httplib::Request& req, httplib::Response& res) {
  const ServedModel m = ready_model();
  const nlohmann::ordered_json messages = parse_chat_messages(req.body);
  const nlohmann::ordered_json variables = parse_chat_template_variables(req.body);
  answer_json(res, 200, {{"prompt", render_conversation(m, messages, variables).text}});
}

void HttpServer::Impl::run_completion(const ServedModel& m, const CompletionParams& params,
                                      std::vector<int32_t> prompt, bool return_tokens,
                                      CompletionIdentity identity, const httplib::Request& req,
                                      httplib::Response& res) {
  uint64_t seed;
  {
    std::lock_guard lock(seeds_mutex);
    seed = seeds();
  }
  CompletionRequest request;
  try {
    request = make_completion_request(params, std::move(prompt), m.n_ctx, m.n_vocab, seed);
  } catch (const ApiError& e) {
    // A chat's prompt is its rendered messages.
    if (!identity.chat || e.param != "prompt") throw;
    throw ApiError(e.status, std::string("the rendered messages: ") + e.what(), "messages");
  }
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());

  auto state = std::make_shared<CompletionState>();
  if (m.tokenizer != nullptr) state->decoder = std::make_unique<StreamingDecoder>(*m.tokenizer);
  state->stop = StopMatcher(params.stop);
  state->submitted = Clock::now();

  // On the scheduler's thread: decode, match stop strings, queue the text.
  OnToken on_token = [counters = counters, state, return_tokens](int32_t token) {
    if (state->client_gone.load()) return false;
    const Clock::time_point now = Clock::now();
    std::string text;
    if (state->decoder) text = state->stop.push(state->decoder->push(token));
    {
      std::lock_guard lock(state->mutex);
      if (state->tokens == 0) {
        counters->time_to_first_token.observe(
            std::chrono::duration<double>(now - state->submitted).count());
      } else {
        counters->inter_token.observe(
            std::chrono::duration<double>(now - state->last_token).count());
      }
      state->last_token = now;
      ++state->tokens;
      state->pending_text += text;
      if (return_tokens) state->pending_tokens.push_back(token);
    }
    state->changed.notify_all();
    return !state->stop.stopped();
  };
  OnDone on_done = [counters = counters, state](CompletionResult result) {
    std::string text;
    if (state->decoder && !state->stop.stopped()) {
      text = state->stop.push(state->decoder->flush());
      text += state->stop.flush();
    }
    if (state->stop.stopped() && result.finish != FinishReason::kCancelled) {
      result.finish = FinishReason::kStop;
    }
    counters->finished[static_cast<size_t>(result.finish)]++;
    counters->request_latency.observe(seconds_since(state->submitted));
    {
      std::lock_guard lock(state->mutex);
      state->pending_text += text;
      state->result = std::move(result);
      state->done = true;
    }
    state->changed.notify_all();
  };

  identity.id += std::to_string(started) + "-" + std::to_string(next_id.fetch_add(1));
  identity.created = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();

  const std::optional<uint64_t> id =
      m.backend->submit(std::move(request), std::move(on_token), std::move(on_done));
  if (!id) {
    if (draining.load()) {
      throw ApiError(503, "the server is shutting down: send the request to another server", "",
                     "unavailable_error", "draining");
    }
    ++counters->rejected_queue_full;
    res.set_header("Retry-After", std::to_string(options.retry_after_seconds));
    throw ApiError(429, "the server is at capacity (its wait queue is full): retry later", "",
                   "rate_limit_error", "queue_full");
  }
  {
    std::lock_guard lock(state->mutex);
    state->id = id;
  }

  auto usage = [state, prompt_tokens] { return Usage{prompt_tokens, state->tokens}; };
  // A request the server ended (shutdown past its grace period, an error)
  // is answered as an error, not as a short completion.
  auto failure = [](const CompletionResult& result) -> std::optional<ApiError> {
    if (!result.error.empty()) {
      return ApiError(500, "the request failed: " + result.error, "", "server_error");
    }
    if (result.finish == FinishReason::kCancelled) {
      return ApiError(503, "the request was cancelled: the server is shutting down", "",
                      "unavailable_error", "cancelled");
    }
    return std::nullopt;
  };

  if (!params.stream) {
    // Nothing is written until the end, so the client's socket is watched
    // instead: one that went away cancels the request within a probe period.
    enter();
    const ConnectionProbe probe =
        ConnectionProbe::find(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    std::unique_lock lock(state->mutex);
    while (!state->changed.wait_for(lock, kDisconnectProbePeriod, [&] { return state->done; })) {
      if (probe.peer_open()) continue;
      lock.unlock();
      cancel(*state);  // first: the scheduler then counts it cancelled
      state->client_gone.store(true);
      leave();
      return;  // no one to answer
    }
    leave();
    if (const auto error = failure(state->result)) throw *error;
    json body = completion_json(identity, state->pending_text, state->result.finish, usage(),
                                state->result.speculation);
    if (return_tokens) body["choices"][0]["tokens"] = state->pending_tokens;
    answer_json(res, 200, body);
    return;
  }

  enter();
  const bool include_usage = params.include_usage;
  const auto keep_alive = std::chrono::duration<double>(options.keep_alive_seconds);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass events on at once
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, state, identity, include_usage, return_tokens, keep_alive, usage, failure,
       role_sent = std::make_shared<bool>(false)](size_t, httplib::DataSink& sink) {
        std::unique_lock lock(state->mutex);
        const bool opening = identity.chat && !*role_sent;  // the role chunk goes out at once
        state->changed.wait_for(lock, opening ? decltype(keep_alive)::zero() : keep_alive, [&] {
          return state->done || !state->pending_text.empty() || !state->pending_tokens.empty();
        });
        std::string text = std::move(state->pending_text);
        state->pending_text.clear();
        std::vector<int32_t> tokens = std::move(state->pending_tokens);
        state->pending_tokens.clear();
        const bool done = state->done;
        lock.unlock();

        std::string out;
        if (identity.chat && !*role_sent) {
          out += sse_event(dump(role_chunk_json(identity)));
          *role_sent = true;
        }
        if (!text.empty() || !tokens.empty()) {
          json chunk = chunk_json(identity, text);
          if (return_tokens) chunk["choices"][0]["tokens"] = tokens;
          out += sse_event(dump(chunk));
        }
        if (done) {
          if (const auto error = failure(state->result)) {
            out += sse_event(dump(error_json(*error)));
          } else {
            out += sse_event(
                dump(final_chunk_json(identity, state->result.finish, state->result.speculation)));
            if (include_usage) out += sse_event(dump(usage_chunk_json(identity, usage())));
          }
          out += kSseDone;
        }
        if (out.empty()) out = kSseKeepAlive;
        if (!sink.write(out.data(), out.size())) {
          cancel(*state);  // first: the scheduler then counts it cancelled
          state->client_gone.store(true);
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [this, state](bool success) {
        if (!success || !state->done) {
          cancel(*state);  // first: the scheduler then counts it cancelled
          state->client_gone.store(true);
        }
        leave();
      });
}

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  const int threads = std::max(4, impl_->options.threads);
  impl_->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->server.set_payload_max_length(impl_->options.max_body_bytes);
  impl_->server.set_keep_alive_timeout(5);
  impl_->install_routes();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::listen() {
  Impl& impl = *impl_;
  if (impl.options.port == 0) {
    impl.port = impl.server.bind_to_any_port(impl.options.host);
    if (impl.port <= 0) {
      fail("cannot listen on ", impl.options.host, ": check --host (an address of this machine)");
    }
  } else {
    if (!impl.server.bind_to_port(impl.options.host, impl.options.port)) {
      fail("cannot listen on ", impl.options.host, ":", impl.options.port,
           ": the port is in use or the address is not this machine's; choose another --port or "
           "--host");
    }
    impl.port = impl.options.port;
  }
  raise_listen_backlog(impl.port, kListenBacklog);  // best effort: 5 still works, less well
  impl.thread = std::thread([&impl] { impl.server.listen_after_bind(); });
  // httplib's stop() does nothing until the loop runs: wait for it, so that
  // a stop() right after listen() (a model that fails to load) is not lost.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl.server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return impl.port;
}

void HttpServer::set_ready(ServedModel model) {
  std::shared_ptr<const PromptTokenizer> prompt_tokenizer;
  if (model.tokenizer != nullptr) {
    prompt_tokenizer = std::make_shared<const PromptTokenizer>(*model.tokenizer);
  }
  std::unique_lock lock(impl_->model_mutex);
  impl_->model = std::move(model);
  impl_->prompt_tokenizer = std::move(prompt_tokenizer);
}

void HttpServer::start_draining() {
  impl_->draining.store(true);
}

void HttpServer::detach_backend() {
  std::unique_lock lock(impl_->model_mutex);
  if (impl_->model) impl_->model->backend = nullptr;
}

bool HttpServer::wait_completions(double seconds) {
  std::unique_lock lock(impl_->active_mutex);
  return impl_->active_changed.wait_for(lock, std::chrono::duration<double>(seconds),
                                        [&] { return impl_->active == 0; });
}

void HttpServer::stop() {
  if (impl_->server.is_running() || impl_->thread.joinable()) impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const HttpCounters& HttpServer::counters() const {
  return *impl_->counters;
}

}  // namespace specula

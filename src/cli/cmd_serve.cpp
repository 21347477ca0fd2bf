// `specula serve`: an OpenAI-compatible HTTP server (docs/serving.md). It
// listens at once (GET /health answers 503 while the models load), then
// decodes every request through one continuous-batching scheduler. SIGTERM
// or SIGINT: new requests get 503, those in flight finish within
// --shutdown-grace seconds, and the process exits 0.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "chat/chat_template.h"
#include "cli/command_registry.h"
#include "cli/field_flags.h"
#include "cli/kv_type_flag.h"
#include "cli/stop_on_signals.h"
#include "core/cpu_count.h"
#include "core/error.h"
#include "core/split_list.h"
#include "core/thread_pool.h"
#include "drafters/model_drafter.h"
#include "engine/kv_cache_type.h"
#include "model/model.h"
#include "serve/http_scheduler_backend.h"
#include "serve/http_server.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace specula::cli {
namespace {

constexpr std::array<FieldFlag, 7> kServeFlags = {{
    {"SchedulerOptions::parallel", "--parallel"},
    {"SchedulerOptions::n_ctx", "--ctx"},
    {"SchedulerOptions::queue_max", "--queue-max"},
    {"SchedulerOptions::step_rows", "--step-rows"},
    {"SchedulerOptions::draft_max", "--draft-max"},
    {"SchedulerOptions::drafters", "--drafter"},
    {"SchedulerOptions::policy", "--policy"},
}};

struct ServeFlags {
  std::string model_path;
  std::string draft_path;
  std::string drafters;  // "model,lookup"; empty: the scheduler's default
  std::string alias;     // the model's name in responses; empty: the file's
  std::string policy = "capacity";
  std::string chat_template;  // --chat-template FILE|NAME; empty: the model's
  int32_t threads = 0;
  std::string kv_type = "f16";
  int32_t http_threads = 0;  // 0: enough for --parallel and --queue-max
  double shutdown_grace = 30.0;
  SchedulerOptions scheduler;
  HttpServerOptions http;
};

BatchPolicyKind parse_batch_policy(const std::string& name) {
  if (name == "capacity") return BatchPolicyKind::kCapacityAware;
  if (name == "adaptive") return BatchPolicyKind::kAdaptive;
  if (name == "fixed") return BatchPolicyKind::kFixed;
  if (name == "plain") return BatchPolicyKind::kPlain;
  fail("--policy is \"", name, "\": use capacity, adaptive, fixed or plain");
}

double mib(uint64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// The models and the scheduler, built while the server already answers 503.
struct Loaded {
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<SchedulerBackend> backend;
  std::shared_ptr<const ChatTemplate> chat_template;
  SpecialTokenTexts special_tokens;
};

Loaded load(const ServeFlags& flags, SchedulerOptions options,
            std::shared_ptr<const ChatTemplate> chat_template) {
  Loaded loaded;
  const DType kv_type = kv_dtype(kv_cache_type(flags.kv_type));
  loaded.target = Model::load(flags.model_path, kv_type);
  loaded.special_tokens = special_token_texts(loaded.target->file());
  loaded.chat_template = std::move(chat_template);
  if (!loaded.chat_template) {
    try {
      if (auto from_model = ChatTemplate::from_gguf(loaded.target->file())) {
        loaded.chat_template = std::make_shared<const ChatTemplate>(std::move(*from_model));
      } else {
        std::fprintf(stderr,
                     "specula: %s has no chat template: /v1/chat/completions answers 400 (give "
                     "--chat-template FILE or a built-in: chatml, llama3)\n",
                     flags.model_path.c_str());
      }
    } catch (const Error& e) {
      std::fprintf(stderr,
                   "specula: the model's chat template cannot be used (%s): /v1/chat/completions "
                   "answers 400 (give --chat-template)\n",
                   e.what());
    }
  }
  if (!flags.draft_path.empty()) {
    loaded.draft = Model::load(flags.draft_path, kv_type);
    check_same_vocabulary(*loaded.target, *loaded.draft);
  }
  try {
    loaded.tokenizer = Tokenizer::from_gguf(loaded.target->file());
  } catch (const Error& e) {
    std::fprintf(stderr, "specula: no tokenizer (%s): prompts must be token ids\n", e.what());
  }
  const ModelConfig& config = loaded.target->config();
  if (options.n_ctx == 0) {
    options.n_ctx = config.n_ctx_train > 0 ? std::min(config.n_ctx_train, 4096) : 2048;
  }
  if (config.n_ctx_train > 0 && options.n_ctx > config.n_ctx_train) {
    std::fprintf(stderr,
                 "specula: warning: --ctx %d exceeds the %d tokens the model was trained for; "
                 "quality may drop past that\n",
                 options.n_ctx, config.n_ctx_train);
  }
  if (loaded.tokenizer) {
    for (int32_t id = 0; id < config.n_vocab; ++id) {
      if (loaded.tokenizer->is_end_of_generation(id)) options.stop_tokens.push_back(id);
    }
  } else if (auto eos = loaded.target->file().get_int("tokenizer.ggml.eos_token_id")) {
    if (*eos >= 0 && *eos < config.n_vocab)
      options.stop_tokens.push_back(static_cast<int32_t>(*eos));
  }
  loaded.pool = std::make_unique<ThreadPool>(resolve_thread_count(flags.threads));
  loaded.scheduler =
      std::make_unique<Scheduler>(*loaded.target, loaded.draft.get(), loaded.pool.get(), options);
  loaded.backend = std::make_unique<SchedulerBackend>(*loaded.scheduler);
  return loaded;
}

void run(ServeFlags& flags) {
  if (flags.threads < 0)
    fail("--threads is ", flags.threads, ": use 0 for one per physical core or a count");
  if (flags.http.port < 0 || flags.http.port > 65535) {
    fail("--port is ", flags.http.port, ": use 1..65535, or 0 for any free port");
  }
  if (flags.http.max_body_bytes < 64) {
    fail("--max-body is ", flags.http.max_body_bytes, ": allow at least 64 bytes");
  }
  if (!(flags.shutdown_grace >= 0)) {
    fail("--shutdown-grace is ", flags.shutdown_grace, ": use a number of seconds >= 0");
  }
  SchedulerOptions options = flags.scheduler;
  options.policy = parse_batch_policy(flags.policy);
  if (!flags.drafters.empty()) options.drafters = split_list(flags.drafters, "--drafter");
  if (options.parallel < 1) fail("--parallel is ", options.parallel, ": use at least 1");
  if (options.queue_max < 0) fail("--queue-max is ", options.queue_max, ": use 0 or more");
  flags.http.threads = flags.http_threads > 0
                           ? flags.http_threads
                           : std::max(16, 2 * options.parallel + options.queue_max + 8);

  // A client that hangs up must not kill the server with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  const StopOnSignals signals;
  // A bad --chat-template fails before anything listens.
  std::shared_ptr<const ChatTemplate> chat_template;
  if (!flags.chat_template.empty()) {
    chat_template =
        std::make_shared<const ChatTemplate>(ChatTemplate::from_name_or_file(flags.chat_template));
  }
  HttpServer server(flags.http);
  const int port = server.listen();
  std::fprintf(stderr, "specula: listening on http://%s:%d (loading the model)\n",
               flags.http.host.c_str(), port);
  std::fflush(stderr);

  Loaded loaded = load(flags, options, chat_template);
  const SchedulerOptions& used = loaded.scheduler->options();
  const std::string model_id =
      flags.alias.empty() ? std::filesystem::path(flags.model_path).stem().string() : flags.alias;
  std::fprintf(stderr,
               "specula: ready on http://%s:%d: model %s, %d sequences x %d tokens, KV memory "
               "budget %.1f MiB (%s), policy %s, draft up to %d\n",
               flags.http.host.c_str(), port, model_id.c_str(), used.parallel, used.n_ctx,
               mib(loaded.scheduler->memory_bytes()), flags.kv_type.c_str(), flags.policy.c_str(),
               used.draft_max);
  std::fflush(stderr);
  server.set_ready({model_id, used.n_ctx, loaded.target->config().n_vocab, loaded.tokenizer.get(),
                    loaded.backend.get(), loaded.chat_template, loaded.special_tokens});

  while (!signals.stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(50));

  std::fprintf(stderr,
               "specula: stopping: new requests get 503; waiting up to %.0f s for %d in flight\n",
               flags.shutdown_grace,
               loaded.scheduler->metrics().running + loaded.scheduler->metrics().waiting);
  std::fflush(stderr);
  server.start_draining();
  loaded.scheduler->stop_accepting();
  const bool idle = loaded.scheduler->wait_idle(flags.shutdown_grace);
  server.detach_backend();
  loaded.backend.reset();
  loaded.scheduler.reset();  // ends what is left (kCancelled: answered 503)
  server.wait_completions(5.0);
  server.stop();
  std::fprintf(
      stderr, "specula: stopped%s\n",
      idle ? "" : " (requests still running at the end of the grace period were cancelled)");
}

void add_flags(CLI::App& sub, ServeFlags& flags) {
  SchedulerOptions& s = flags.scheduler;
  sub.add_option("-m,--model", flags.model_path, "Target model (GGUF)")->required();
  sub.add_option("-d,--draft,--model-draft", flags.draft_path,
                 "Draft model (GGUF) with the target's vocabulary");
  sub.add_option("--drafter", flags.drafters,
                 "Drafters to choose among: model, lookup[:N|:MIN-MAX], suffix, self[:K] "
                 "(default: model when --draft is given, and lookup)");
  sub.add_option("--host", flags.http.host, "Address to listen on")->capture_default_str();
  sub.add_option("--port", flags.http.port, "Port to listen on; 0 picks a free one")
      ->capture_default_str();
  sub.add_option("--parallel", s.parallel, "Sequences decoded at once (KV cache slots)")
      ->capture_default_str();
  sub.add_option("-c,--ctx,--ctx-size", s.n_ctx,
                 "Tokens per sequence (prompt + completion); 0: the model's training context, "
                 "at most 4096")
      ->capture_default_str();
  sub.add_option("--api-key", flags.http.api_key,
                 "Require \"Authorization: Bearer <key>\" on every route but /health (or set "
                 "SPECULA_API_KEY)")
      ->envname("SPECULA_API_KEY");
  sub.add_option("-t,--threads", flags.threads,
                 "Compute threads; 0: one per physical core this process may use")
      ->capture_default_str();
  add_kv_type_flag(sub, flags.kv_type);
  sub.add_option("--draft-max", s.draft_max, "The most tokens drafted per sequence and step")
      ->capture_default_str();
  sub.add_option("--policy", flags.policy,
                 "How draft lengths are chosen: capacity (jointly, for the batch's tokens/s), "
                 "adaptive (each sequence alone), fixed (--draft-max), plain (no speculation)")
      ->capture_default_str();
  sub.add_option("--queue-max", s.queue_max,
                 "Requests that may wait for a slot; beyond them: 429 with Retry-After")
      ->capture_default_str();
  sub.add_option("--step-rows", s.step_rows,
                 "Target rows per step (prompt chunks fill what decoding leaves)")
      ->capture_default_str();
  sub.add_option("--alias", flags.alias,
                 "The model's name in responses and /v1/models (default: the file's name)");
  sub.add_option("--chat-template", flags.chat_template,
                 "Chat template for /v1/chat/completions: a Jinja file or a built-in (chatml, "
                 "llama3); default: the model's tokenizer.chat_template");
  sub.add_option("--max-body", flags.http.max_body_bytes,
                 "Largest request body in bytes; larger: 413")
      ->capture_default_str();
  sub.add_option("--shutdown-grace", flags.shutdown_grace,
                 "Seconds that requests in flight may take to finish after SIGTERM/SIGINT")
      ->capture_default_str();
  sub.add_option("--http-threads", flags.http_threads,
                 "Connections served at once; 0: 2 x --parallel + --queue-max + 8")
      ->capture_default_str();
}

void run_with_flag_names(const ServeFlags& flags, const CLI::App&) {
  ServeFlags copy = flags;
  with_flag_names(kServeFlags, [&] { run(copy); });
}

const bool registered = register_command_with_flags<ServeFlags>(
    "serve", "Serve an OpenAI-compatible HTTP API with continuous batching", add_flags,
    run_with_flag_names);

}  // namespace
}  // namespace specula::cli

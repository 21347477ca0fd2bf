// The public Engine: owns the models, tokenizer, thread pool, generator and
// speculation session, and maps the public options onto the internal ones.
#include "specula/engine.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "core/cpu_count.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "drafters/model_drafter.h"
#include "engine/kv_cache_type.h"
#include "engine/speculation_session.h"
#include "model/model.h"
#include "speculative/generator.h"
#include "tokenizer/tokenizer.h"

namespace specula {
namespace {

std::string format_gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", bytes / (1024.0 * 1024.0 * 1024.0));
  return text;
}

}  // namespace

struct Engine::Impl {
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_error;  // why there is no tokenizer
  std::vector<int32_t> stop_tokens;
  std::unique_ptr<ThreadPool> pool;
  // Rebuilt when a request needs another context size.
  std::unique_ptr<Generator> generator;
  // The drafters, policy, bandit, suffix cache and online learner; what
  // they learned persists across requests.
  std::unique_ptr<SpeculationSession> session;

  void ensure_context(int32_t n_ctx) {
    session->prepare(n_ctx);
    if (generator && generator->n_ctx() == n_ctx) return;
    generator = std::make_unique<Generator>(*target, n_ctx, pool.get());
  }

  // The context size of a request: GenerateOptions::n_ctx, or when 0 just
  // enough for the prompt and max_new_tokens, capped at the training context.
  int32_t context_size(const GenerateOptions& options, size_t prompt_tokens) const {
    if (options.n_ctx < 0) {
      fail("GenerateOptions::n_ctx is ", options.n_ctx, ": use 0 to size it automatically");
    }
    const int32_t n_ctx_train = target->config().n_ctx_train;
    if (options.n_ctx == 0) {
      // A negative max_new_tokens is the Generator's to refuse.
      const int64_t needed =
          static_cast<int64_t>(prompt_tokens) + std::max(options.max_new_tokens, 0);
      const int64_t cap = n_ctx_train > 0 ? n_ctx_train : needed;
      return static_cast<int32_t>(std::max<int64_t>(1, std::min(needed, cap)));
    }
    if (n_ctx_train > 0 && options.n_ctx > n_ctx_train) {
      // llama.cpp warns too; the cache's pages are taken as it fills, so
      // the size is what a long run can reach, not what is taken now.
      const ModelConfig& c = target->config();
      const double kv_bytes = 2.0 * static_cast<double>(KvCache::value_bytes(target->kv_type())) *
                              c.n_layer * c.n_head_kv * c.head_dim *
                              static_cast<double>(options.n_ctx);
      log_warn("context size ", options.n_ctx, " exceeds the ", n_ctx_train,
               " tokens the model was trained for: quality may drop past that, and the "
               "target's KV cache grows to ",
               format_gib(kv_bytes), " GiB as the context fills");
    }
    return options.n_ctx;
  }

  GeneratorOptions generator_options(const GenerateOptions& options) const {
    return generator_options_for(options, stop_tokens);
  }

  MemoryStats memory() const {
    MemoryStats memory;
    memory.peak_resident_bytes = peak_resident_bytes();
    memory.target_file_bytes = target->file().file_size();
    memory.target_kv_bytes = generator->cache().bytes();
    session->add_memory(memory);
    return memory;
  }
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const EngineConfig& config) {
  if (config.model_path.empty())
    fail("EngineConfig::model_path is empty: give the target GGUF file");
  if (config.n_threads < 0) {
    fail("the thread count is ", config.n_threads,
         ": use 0 for one per physical core or a positive count");
  }
  std::unique_ptr<Engine> engine(new Engine());
  Impl& impl = *engine->impl_;
  impl.target = Model::load(config.model_path, kv_dtype(config.kv_cache_type));
  if (!config.draft_path.empty()) {
    impl.draft = Model::load(config.draft_path, kv_dtype(config.kv_cache_type));
    check_same_vocabulary(*impl.target, *impl.draft);
  }
  SpeculationSessionOptions session_options;
  session_options.drafters = config.drafters;
  if (session_options.drafters.empty()) {
    if (impl.draft) session_options.drafters.push_back("model");
    session_options.drafters.push_back("lookup");
  }
  session_options.suffix_cache_tokens = config.suffix_cache_tokens;
  session_options.online_distill = config.online_distill;
  impl.pool = std::make_unique<ThreadPool>(resolve_thread_count(config.n_threads));
  impl.session = std::make_unique<SpeculationSession>(*impl.target, impl.draft.get(),
                                                      impl.pool.get(), session_options);
  try {
    impl.tokenizer = Tokenizer::from_gguf(impl.target->file());
  } catch (const Error& e) {
    impl.tokenizer_error = e.what();
  }

  const int32_t n_vocab = impl.target->config().n_vocab;
  if (impl.tokenizer && impl.tokenizer->n_vocab() != n_vocab) {
    // Ids the tokenizer cannot decode would be sampled (or ids the model has
    // no row for encoded): refuse now, not mid-generation. llama.cpp refuses
    // such a file too.
    fail(config.model_path, ": the tokenizer has ", impl.tokenizer->n_vocab(),
         " tokens (tokenizer.ggml.tokens) but token_embd.weight has ", n_vocab,
         " rows; the file is inconsistent: convert the model again so that they match");
  }
  if (impl.tokenizer) {
    for (int32_t id = 0; id < n_vocab; ++id) {
      if (impl.tokenizer->is_end_of_generation(id)) impl.stop_tokens.push_back(id);
    }
  } else if (auto eos = impl.target->file().get_int("tokenizer.ggml.eos_token_id")) {
    if (*eos >= 0 && *eos < n_vocab) impl.stop_tokens.push_back(static_cast<int32_t>(*eos));
  }
  return engine;
}

OnlineLearningStats Engine::online_learning_stats() const {
  return impl_->session->learning_stats();
}

void Engine::save_learned_draft(const std::string& path) {
  impl_->session->save_learned_draft(path);
}

bool Engine::has_draft() const {
  return impl_->draft != nullptr;
}
std::vector<std::string> Engine::drafter_names() const {
  return impl_->session->drafter_names();
}
bool Engine::has_tokenizer() const {
  return impl_->tokenizer != nullptr;
}
int32_t Engine::n_vocab() const {
  return impl_->target->config().n_vocab;
}
int32_t Engine::n_ctx_train() const {
  return impl_->target->config().n_ctx_train;
}
int32_t Engine::n_threads() const {
  return impl_->pool->n_threads();
}

std::vector<int32_t> Engine::tokenize(std::string_view text) const {
  if (!impl_->tokenizer) {
    fail("cannot turn text into tokens for ", impl_->target->file().path(), ": ",
         impl_->tokenizer_error,
         "; give the prompt as token ids instead (Engine::generate_from_tokens)");
  }
  return impl_->tokenizer->encode(text, /*add_special=*/true, /*parse_special=*/true);
}

std::string Engine::detokenize(std::span<const int32_t> tokens) const {
  return impl_->tokenizer ? impl_->tokenizer->decode(tokens) : std::string();
}

GenerateResult Engine::generate(std::string_view prompt, const GenerateOptions& options,
                                const TokenTextCallback& on_token) {
  const std::vector<int32_t> tokens = tokenize(prompt);
  return generate_from_tokens(tokens, options, on_token);
}

GenerateResult Engine::generate_from_tokens(std::span<const int32_t> prompt_tokens,
                                            const GenerateOptions& options,
                                            const TokenTextCallback& on_token) {
  Impl& impl = *impl_;
  const GeneratorOptions generator_options = impl.generator_options(options);
  const int32_t n_ctx = impl.context_size(options, prompt_tokens.size());
  impl.ensure_context(n_ctx);
  PolicyOptions policy;
  policy.kind = options.policy;
  policy.confidence_threshold = options.confidence_threshold;
  impl.session->set_policy(policy);

  GenerateResult result;
  result.prompt_tokens.assign(prompt_tokens.begin(), prompt_tokens.end());
  result.n_ctx = n_ctx;
  std::unique_ptr<StreamingDecoder> decoder;
  if (impl.tokenizer) decoder = std::make_unique<StreamingDecoder>(*impl.tokenizer);
  auto emit = [&](int32_t token) {
    std::string piece;
    if (decoder) piece = decoder->push(token);
    result.text += piece;
    if (on_token) on_token(token, piece);
    return options.cancel == nullptr || !options.cancel->load(std::memory_order_relaxed);
  };
  Speculation speculation = impl.session->speculation();
  if (options.draft_max <= 0) speculation.drafters.clear();
  GenerationOutput output =
      impl.generator->generate(prompt_tokens, speculation, generator_options, emit);
  if (decoder) {
    const std::string rest = decoder->flush();
    result.text += rest;
    if (on_token && !rest.empty()) on_token(-1, rest);
  }
  result.tokens = std::move(output.tokens);
  result.stats = std::move(output.stats);

  result.learning = impl.session->learning_stats();
  result.memory = impl.memory();
  return result;
}

}  // namespace specula

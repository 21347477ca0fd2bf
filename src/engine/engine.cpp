// The public Engine: owns the models, tokenizer, thread pool, generator and
// drafter, and maps the public options onto the internal ones.
#include "specula/engine.h"

#include <algorithm>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "drafters/model_drafter.h"
#include "engine/drafter_factory.h"
#include "model/model.h"
#include "online/learning_model_drafter.h"
#include "online/online_distiller.h"
#include "policies/bandit.h"
#include "policies/policy.h"
#include "speculative/generator.h"
#include "tokenizer/tokenizer.h"

namespace specula {

struct Engine::Impl {
  std::unique_ptr<Model> target;
  std::unique_ptr<Model> draft;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_error;  // why there is no tokenizer
  std::vector<int32_t> stop_tokens;
  std::unique_ptr<ThreadPool> pool;
  // Rebuilt when a request needs another context size.
  std::unique_ptr<Generator> generator;
  std::vector<std::string> drafter_specs;
  std::vector<std::unique_ptr<Drafter>> drafters;  // as drafter_specs
  ModelDrafter* model_drafter = nullptr;           // among drafters, if any
  std::unique_ptr<SuffixCache> suffix_cache;       // shared by requests
  // Online distillation: the learner outlives drafters rebuilt for another
  // context, so what it learned carries over to later requests.
  std::shared_ptr<OnlineDistiller> distiller;
  LearningModelDrafter* learning_drafter = nullptr;  // among drafters, if any
  // Persist across requests (rebuilt only when the policy asked for changes).
  std::unique_ptr<DraftLengthPolicy> policy;
  PolicyOptions policy_options;
  std::unique_ptr<DrafterBandit> bandit;

  DrafterResources resources(int32_t n_ctx) {
    DrafterResources r;
    r.target = target.get();
    r.draft = draft.get();
    r.suffix_cache = suffix_cache.get();
    r.n_ctx = n_ctx;
    r.pool = pool.get();
    r.online_distiller = distiller;
    return r;
  }

  void ensure_context(int32_t n_ctx) {
    if (generator && generator->n_ctx() == n_ctx) return;
    generator = std::make_unique<Generator>(*target, n_ctx, pool.get());
    drafters.clear();
    model_drafter = nullptr;
    learning_drafter = nullptr;
    for (const std::string& spec : drafter_specs) {
      drafters.push_back(make_drafter(spec, resources(n_ctx)));
      // The draft file's KV cache is reported in the memory statistics.
      if (auto* m = dynamic_cast<ModelDrafter*>(drafters.back().get())) model_drafter = m;
      if (auto* l = dynamic_cast<LearningModelDrafter*>(drafters.back().get())) {
        learning_drafter = l;
      }
    }
  }

  void start_online_distillation(const OnlineDistillConfig& config) {
    if (!draft) {
      fail(
          "online distillation trains the draft model, and there is none: pass --draft FILE "
          "(an F16, BF16 or F32 llama draft)");
    }
    if (std::find(drafter_specs.begin(), drafter_specs.end(), "model") == drafter_specs.end()) {
      fail(
          "online distillation trains the 'model' drafter, which --drafter leaves out: add "
          "model to --drafter");
    }
    OnlineDistillOptions o;
    o.threads = config.threads;
    if (config.memory_mib < 1 || config.memory_mib > (int64_t{1} << 20)) {
      fail("--osd-memory-mb is ", config.memory_mib, ": give 1 to 1048576 MiB");
    }
    o.max_buffer_bytes = static_cast<size_t>(config.memory_mib) << 20;
    o.cpu_fraction = config.cpu_fraction;
    o.lr = config.learning_rate;
    o.warmup_steps = config.warmup_steps;
    o.max_steps_per_window = config.replay;
    o.average_decay = config.average_decay;
    o.steps_between_publish = config.publish_every;
    const auto loss = distill_divergence_from_name(config.loss);
    if (!loss) fail("--osd-loss is '", config.loss, "': give kl or tvd");
    o.loss = *loss;
    o.temperature = config.temperature;
    o.top_k = config.top_k;
    o.window = config.window;
    o.batch = config.batch;
    o.seed = config.seed;
    // Publish in the draft's own matrix precision: an F16 draft stays as
    // fast to run (half the bytes of F32) while it learns.
    if (const GgufTensorInfo* t = draft->file().find_tensor("blk.0.attn_q.weight")) {
      if (t->type == DType::kF16) o.publish_type = DType::kF16;
    }
    validate_online_distill_options(o);
    try {
      distiller = std::make_shared<OnlineDistiller>(*draft, o);
    } catch (const Error& e) {
      fail("online distillation cannot train this draft: ", e.what(),
           "; pass the unquantized (F16, BF16 or F32) draft file");
    }
    distiller->start();
  }

  void ensure_policy(const GenerateOptions& options) {
    PolicyOptions wanted;
    wanted.kind = options.policy;
    wanted.confidence_threshold = options.confidence_threshold;
    validate(wanted);
    if (policy && policy_options.kind == wanted.kind &&
        policy_options.confidence_threshold == wanted.confidence_threshold) {
      return;
    }
    policy = make_policy(wanted);
    policy_options = wanted;
  }
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::load(const EngineConfig& config) {
  if (config.model_path.empty()) fail("no model given: pass the target GGUF file (--model)");
  if (config.n_threads < 0) {
    fail("the thread count is ", config.n_threads, ": use 0 for every core or a positive count");
  }
  std::unique_ptr<Engine> engine(new Engine());
  Impl& impl = *engine->impl_;
  impl.target = Model::load(config.model_path);
  if (!config.draft_path.empty()) {
    impl.draft = Model::load(config.draft_path);
    check_same_vocabulary(*impl.target, *impl.draft);
  }
  SuffixCacheOptions suffix_options;
  suffix_options.max_tokens = config.suffix_cache_tokens;
  impl.suffix_cache = std::make_unique<SuffixCache>(suffix_options);
  impl.drafter_specs = config.drafters;
  if (impl.drafter_specs.empty()) {
    if (impl.draft) impl.drafter_specs.push_back("model");
    impl.drafter_specs.push_back("lookup");
  }
  for (size_t i = 0; i < impl.drafter_specs.size(); ++i) {
    const std::string& spec = impl.drafter_specs[i];
    check_drafter_spec(spec, impl.resources(0));
    for (size_t j = 0; j < i; ++j) {
      if (impl.drafter_specs[j] == spec) fail("the drafter '", spec, "' is listed twice");
    }
  }
  if (config.online_distill.enabled) impl.start_online_distillation(config.online_distill);
  if (impl.drafter_specs.size() > 1) {
    impl.bandit = std::make_unique<DrafterBandit>(static_cast<int32_t>(impl.drafter_specs.size()));
  }
  try {
    impl.tokenizer = Tokenizer::from_gguf(impl.target->file());
  } catch (const Error& e) {
    impl.tokenizer_error = e.what();
  }

  const int32_t n_vocab = impl.target->config().n_vocab;
  if (impl.tokenizer) {
    for (int32_t id = 0; id < n_vocab; ++id) {
      if (impl.tokenizer->is_end_of_generation(id)) impl.stop_tokens.push_back(id);
    }
  } else if (auto eos = impl.target->file().get_int("tokenizer.ggml.eos_token_id")) {
    if (*eos >= 0 && *eos < n_vocab) impl.stop_tokens.push_back(static_cast<int32_t>(*eos));
  }

  int32_t n_threads = config.n_threads;
  if (n_threads == 0) n_threads = static_cast<int32_t>(std::thread::hardware_concurrency());
  impl.pool = std::make_unique<ThreadPool>(std::max(1, n_threads));
  return engine;
}

OnlineLearningStats Engine::online_learning_stats() const {
  OnlineLearningStats out;
  const Impl& impl = *impl_;
  if (!impl.distiller) return out;
  const OnlineDistillStats s = impl.distiller->stats();
  out.enabled = true;
  out.steps = s.steps;
  out.publishes = s.publishes;
  out.weight_version = impl.learning_drafter ? impl.learning_drafter->weight_version() : 0;
  out.observed_rows = s.observed_rows;
  out.stored_samples = s.stored_samples;
  out.dropped_samples = s.dropped_samples;
  out.evicted_samples = s.evicted_samples;
  out.buffer_bytes = s.buffer_bytes;
  out.buffer_samples = s.buffer_samples;
  out.parameter_bytes = impl.distiller->parameter_bytes();
  out.last_loss = s.last_loss;
  return out;
}

void Engine::save_learned_draft(const std::string& path) {
  if (!impl_->distiller) {
    fail("there is no learned draft to save: online distillation is off (--online-distill)");
  }
  impl_->distiller->save(path);
}

bool Engine::has_draft() const {
  return impl_->draft != nullptr;
}
std::vector<std::string> Engine::drafter_names() const {
  return impl_->drafter_specs;
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
         impl_->tokenizer_error, "; give the prompt as token ids instead (--prompt-ids)");
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
  GeneratorOptions generator_options;
  generator_options.sampling.temperature = options.temperature;
  generator_options.sampling.top_k = options.top_k;
  generator_options.sampling.top_p = options.top_p;
  generator_options.sampling.min_p = options.min_p;
  generator_options.sampling.seed = options.seed;
  generator_options.max_new_tokens = options.max_new_tokens;
  generator_options.draft_max = options.draft_max;
  if (!options.ignore_eos) generator_options.stop_tokens = impl.stop_tokens;
  validate(generator_options.sampling);
  if (options.max_new_tokens < 0) {
    fail("the number of tokens to generate (-n) is ", options.max_new_tokens, ": it must be >= 0");
  }
  if (options.n_ctx < 0) {
    fail("the context size (--ctx) is ", options.n_ctx, ": use 0 to size it automatically");
  }

  int32_t n_ctx = options.n_ctx;
  const int32_t n_ctx_train = impl.target->config().n_ctx_train;
  if (n_ctx == 0) {
    const int64_t needed = static_cast<int64_t>(prompt_tokens.size()) + options.max_new_tokens;
    const int64_t cap = n_ctx_train > 0 ? n_ctx_train : needed;
    n_ctx = static_cast<int32_t>(std::max<int64_t>(1, std::min(needed, cap)));
  } else if (n_ctx_train > 0 && n_ctx > n_ctx_train) {
    log_warn("context size ", n_ctx, " exceeds the ", n_ctx_train,
             " tokens the model was trained for; quality may drop past that");
  }
  impl.ensure_context(n_ctx);
  impl.ensure_policy(options);

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
    return true;
  };
  Speculation speculation;
  if (options.draft_max > 0) {
    for (const auto& d : impl.drafters) speculation.drafters.push_back(d.get());
  }
  speculation.policy = impl.policy.get();
  speculation.bandit = impl.bandit.get();
  GenerationOutput output =
      impl.generator->generate(prompt_tokens, speculation, generator_options, emit);
  if (decoder) {
    const std::string rest = decoder->flush();
    result.text += rest;
    if (on_token && !rest.empty()) on_token(-1, rest);
  }
  result.tokens = std::move(output.tokens);
  result.stats = std::move(output.stats);

  result.learning = online_learning_stats();
  result.memory.peak_resident_bytes = peak_resident_bytes();
  result.memory.target_file_bytes = impl.target->file().file_size();
  result.memory.target_kv_bytes = impl.generator->cache().bytes();
  if (impl.model_drafter) {
    result.memory.draft_file_bytes = impl.draft->file().file_size();
    result.memory.draft_kv_bytes = impl.model_drafter->cache().bytes();
  }
  return result;
}

}  // namespace specula

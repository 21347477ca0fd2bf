#include "engine/speculation_session.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "engine/drafter_factory.h"
#include "online/learning_model_drafter.h"
#include "online/online_distiller.h"

namespace specula {

SpeculationSession::SpeculationSession(const Model& target, const Model* draft, ThreadPool* pool,
                                       const SpeculationSessionOptions& options)
    : target_(target), draft_(draft), pool_(pool), specs_(options.drafters) {
  SuffixCacheOptions suffix_options;
  suffix_options.max_tokens = options.suffix_cache_tokens;
  suffix_cache_ = std::make_unique<SuffixCache>(suffix_options);
  check_specs();
  if (options.online_distill.enabled) start_online_distillation(options.online_distill);
  set_policy(options.policy);
  if (specs_.size() > 1) {
    bandit_ = std::make_unique<DrafterBandit>(static_cast<int32_t>(specs_.size()));
  }
}

SpeculationSession::~SpeculationSession() = default;

void SpeculationSession::check_specs() const {
  DrafterResources resources;
  resources.target = &target_;
  resources.draft = draft_;
  resources.suffix_cache = suffix_cache_.get();
  for (size_t i = 0; i < specs_.size(); ++i) {
    check_drafter_spec(specs_[i], resources);
    if (std::find(specs_.begin(), specs_.begin() + static_cast<ptrdiff_t>(i), specs_[i]) !=
        specs_.begin() + static_cast<ptrdiff_t>(i)) {
      fail("the drafter '", specs_[i], "' is listed twice");
    }
  }
}

void SpeculationSession::start_online_distillation(const OnlineDistillConfig& config) {
  if (!draft_) {
    fail(
        "online distillation trains the draft model, and EngineConfig::draft_path names none: "
        "give an F16, BF16 or F32 llama draft");
  }
  if (std::find(specs_.begin(), specs_.end(), "model") == specs_.end()) {
    fail(
        "online distillation trains the 'model' drafter, which EngineConfig::drafters leaves "
        "out: add model to EngineConfig::drafters");
  }
  OnlineDistillOptions options;
  static_cast<OnlineDistillConfig&>(options) = config;
  // Publish in the draft's own matrix precision: an F16 draft stays as
  // fast to run (half the bytes of F32) while it learns.
  if (const GgufTensorInfo* t = draft_->file().find_tensor("blk.0.attn_q.weight")) {
    if (t->type == DType::kF16) options.publish_type = DType::kF16;
  }
  validate_online_distill_options(options);
  try {
    distiller_ = std::make_shared<OnlineDistiller>(*draft_, options);
  } catch (const Error& e) {
    fail("online distillation cannot train this draft: ", e.what(),
         "; pass the unquantized (F16, BF16 or F32) draft file");
  }
  distiller_->start();
}

void SpeculationSession::prepare(int32_t n_ctx) {
  if (n_ctx == n_ctx_ && drafters_.size() == specs_.size()) return;
  if (n_ctx < 1) fail("the speculation context size is ", n_ctx, ": it must be at least 1 token");
  DrafterResources resources;
  resources.target = &target_;
  resources.draft = draft_;
  resources.suffix_cache = suffix_cache_.get();
  resources.n_ctx = n_ctx;
  resources.pool = pool_;
  drafters_.clear();
  learning_drafter_ = nullptr;
  n_ctx_ = 0;
  for (const std::string& spec : specs_) {
    if (distiller_ && parse_drafter_spec(spec).kind == DrafterKind::kModel) {
      // Built here rather than by the factory, to keep its learner's view.
      auto learning = std::make_unique<LearningModelDrafter>(*draft_, n_ctx, pool_, distiller_);
      learning_drafter_ = learning.get();
      drafters_.push_back(std::move(learning));
    } else {
      drafters_.push_back(make_drafter(spec, resources));
    }
  }
  n_ctx_ = n_ctx;
}

void SpeculationSession::set_policy(const PolicyOptions& options) {
  validate(options);
  if (policy_ && policy_options_.kind == options.kind &&
      policy_options_.confidence_threshold == options.confidence_threshold) {
    return;
  }
  policy_ = make_policy(options);
  policy_options_ = options;
}

Speculation SpeculationSession::speculation() const {
  Speculation speculation;
  for (const std::unique_ptr<Drafter>& d : drafters_) speculation.drafters.push_back(d.get());
  speculation.policy = policy_.get();
  speculation.bandit = bandit_.get();
  return speculation;
}

std::vector<DrafterMemory> SpeculationSession::memory() const {
  std::vector<DrafterMemory> out;
  for (size_t i = 0; i < drafters_.size(); ++i) {
    out.push_back(drafters_[i]->memory());
    out.back().name = specs_[i];
  }
  return out;
}

void SpeculationSession::add_memory(MemoryStats& stats) const {
  stats.drafters = memory();
  stats.draft_file_bytes = 0;
  stats.draft_kv_bytes = 0;
  for (const DrafterMemory& d : stats.drafters) {
    stats.draft_file_bytes += d.file_bytes;
    stats.draft_kv_bytes += d.kv_bytes;
  }
}

OnlineLearningStats SpeculationSession::learning_stats() const {
  OnlineLearningStats out;
  if (!distiller_) return out;
  const OnlineDistillStats s = distiller_->stats();
  out.enabled = true;
  out.steps = s.steps;
  out.publishes = s.publishes;
  out.weight_version = learning_drafter_ ? learning_drafter_->weight_version() : 0;
  out.observed_rows = s.observed_rows;
  out.stored_samples = s.stored_samples;
  out.dropped_samples = s.dropped_samples;
  out.evicted_samples = s.evicted_samples;
  out.buffer_bytes = s.buffer_bytes;
  out.buffer_samples = s.buffer_samples;
  out.parameter_bytes = distiller_->parameter_bytes();
  out.last_loss = s.last_loss;
  return out;
}

void SpeculationSession::save_learned_draft(const std::string& path) const {
  if (!distiller_) {
    fail(
        "there is no learned draft to save: online distillation is off "
        "(EngineConfig::online_distill.enabled)");
  }
  distiller_->save(path);
}

GeneratorOptions generator_options_for(const GenerateOptions& options,
                                       std::vector<int32_t> stop_tokens) {
  GeneratorOptions o;
  o.sampling.temperature = options.temperature;
  o.sampling.top_k = options.top_k;
  o.sampling.top_p = options.top_p;
  o.sampling.min_p = options.min_p;
  o.sampling.seed = options.seed;
  o.max_new_tokens = options.max_new_tokens;
  o.draft_max = options.draft_max;
  if (!options.ignore_eos) o.stop_tokens = std::move(stop_tokens);
  return o;
}

}  // namespace specula

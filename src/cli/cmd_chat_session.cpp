#include "cli/cmd_chat_session.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/cpu_count.h"
#include "core/error.h"
#include "drafters/model_drafter.h"
#include "engine/kv_cache_type.h"

namespace specula::cli {
namespace {

// Turn-closing tokens of common templates. A vocabulary that holds one as a
// special token without marking it end-of-generation (a ChatML template
// over a model whose EOS is another token) still ends the answer there.
constexpr std::array<std::string_view, 5> kEndOfTurnTexts = {"<|im_end|>", "<|eot_id|>", "<|end|>",
                                                             "<end_of_turn>", "<|endoftext|>"};

std::vector<int32_t> stop_tokens_of(const Tokenizer& tokenizer) {
  std::vector<int32_t> stops;
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (tokenizer.is_end_of_generation(id)) {
      stops.push_back(id);
    } else if (tokenizer.is_special(id)) {
      const std::string text = tokenizer.token_text(id);
      if (std::find(kEndOfTurnTexts.begin(), kEndOfTurnTexts.end(), text) !=
          kEndOfTurnTexts.end()) {
        stops.push_back(id);
      }
    }
  }
  return stops;
}

std::unique_ptr<ChatTemplate> load_template(const std::string& flag, const Model& target,
                                            const std::string& model_path) {
  if (!flag.empty()) return std::make_unique<ChatTemplate>(ChatTemplate::from_name_or_file(flag));
  std::optional<ChatTemplate> own = ChatTemplate::from_gguf(target.file());
  if (!own) {
    fail(model_path,
         " has no chat template (tokenizer.chat_template): give --chat-template FILE or a "
         "built-in (chatml, llama3)");
  }
  return std::make_unique<ChatTemplate>(std::move(*own));
}

}  // namespace

int32_t chat_context_size(int32_t requested, int32_t n_ctx_train) {
  if (requested < 0) fail("--ctx is ", requested, ": use 0 for the default or a positive size");
  if (requested > 0) return requested;
  return n_ctx_train > 0 ? std::min(n_ctx_train, 4096) : 4096;
}

ChatSession::ChatSession(const ChatConfig& config) : config_(config) {
  const EngineConfig& e = config.engine;
  if (e.n_threads < 0) {
    fail("-t is ", e.n_threads, ": use 0 for one per physical core or a positive count");
  }
  if (config.options.max_new_tokens < 1) {
    fail("-n is ", config.options.max_new_tokens, ": an answer needs at least 1 token");
  }
  if (config.options.draft_max < 0) {
    fail("--draft-max is ", config.options.draft_max,
         ": it must be >= 0 (0 turns speculation off)");
  }
  target_ = Model::load(e.model_path, kv_dtype(e.kv_cache_type));
  if (!e.draft_path.empty()) {
    draft_ = Model::load(e.draft_path, kv_dtype(e.kv_cache_type));
    check_same_vocabulary(*target_, *draft_);
  }
  try {
    tokenizer_ = Tokenizer::from_gguf(target_->file());
  } catch (const Error& error) {
    fail(e.model_path, ": chat needs the model's tokenizer: ", error.what());
  }
  if (tokenizer_->n_vocab() != target_->config().n_vocab) {
    fail(e.model_path, ": the tokenizer has ", tokenizer_->n_vocab(), " tokens but the model ",
         target_->config().n_vocab, ": convert the model again so that they match");
  }
  prompt_tokenizer_ = std::make_unique<PromptTokenizer>(*tokenizer_);
  template_ = load_template(config.chat_template, *target_, e.model_path);
  const SpecialTokenTexts texts = special_token_texts(target_->file());
  render_options_.bos_token = texts.bos;
  render_options_.eos_token = texts.eos;
  render_options_.add_generation_prompt = true;
  stop_tokens_ = stop_tokens_of(*tokenizer_);

  n_ctx_ = chat_context_size(config.options.n_ctx, target_->config().n_ctx_train);
  SpeculationSessionOptions session_options;
  session_options.drafters = e.drafters;
  if (session_options.drafters.empty()) {
    if (draft_) session_options.drafters.push_back("model");
    session_options.drafters.push_back("lookup");
  }
  session_options.suffix_cache_tokens = e.suffix_cache_tokens;
  session_options.policy.kind = config.options.policy;
  session_options.policy.confidence_threshold = config.options.confidence_threshold;
  pool_ = std::make_unique<ThreadPool>(resolve_thread_count(e.n_threads));
  session_ =
      std::make_unique<SpeculationSession>(*target_, draft_.get(), pool_.get(), session_options);
  session_->prepare(n_ctx_);
  generator_ = std::make_unique<Generator>(*target_, n_ctx_, pool_.get());
  validate(generator_options().sampling);
  clear();
  // A template that cannot render a conversation fails now, not at the
  // first message.
  nlohmann::ordered_json probe = messages_;
  probe.push_back({{"role", "user"}, {"content", "Hello"}});
  render_tokens(probe);
}

ChatSession::~ChatSession() = default;

bool ChatSession::speculative() const {
  return config_.options.draft_max > 0 && !session_->drafter_names().empty();
}

size_t ChatSession::turns() const {
  return static_cast<size_t>(std::count_if(messages_.begin(), messages_.end(),
                                           [](const auto& m) { return m["role"] == "user"; }));
}

void ChatSession::clear() {
  messages_ = nlohmann::ordered_json::array();
  if (!config_.system.empty()) {
    messages_.push_back({{"role", "system"}, {"content", config_.system}});
  }
}

GeneratorOptions ChatSession::generator_options() const {
  return generator_options_for(config_.options, stop_tokens_);
}

std::vector<int32_t> ChatSession::render_tokens(const nlohmann::ordered_json& messages) const {
  try {
    return prompt_tokenizer_->tokenize(template_->render_prompt(messages, render_options_));
  } catch (const jinja::TemplateRaised& raised) {
    fail("the chat template (", template_->origin(),
         ") refuses this conversation: ", raised.message());
  }
}

TurnResult ChatSession::answer(const std::string& user,
                               const std::function<void(std::string_view)>& on_text,
                               const std::atomic<bool>& stop) {
  nlohmann::ordered_json messages = messages_;
  messages.push_back({{"role", "user"}, {"content", user}});
  const std::vector<int32_t> prompt = render_tokens(messages);
  // Room for the conversation and at least one answer token.
  if (prompt.size() >= static_cast<size_t>(n_ctx_)) {
    fail("the conversation has ", prompt.size(), " tokens with this message and the context ",
         n_ctx_, ": type /clear to start a new conversation (or raise -c)");
  }
  TurnResult turn;
  turn.conversation_tokens = static_cast<int32_t>(prompt.size());
  StreamingDecoder decoder(*tokenizer_);
  // The conversation keeps the bytes the model produced (the printed text
  // has U+FFFD for invalid UTF-8), so that the next turn's tokens repeat the
  // answer's and its cache rows are kept.
  std::string said;
  const TokenCallback on_token = [&](int32_t token) {
    said += tokenizer_->token_to_piece(token);
    const std::string piece = decoder.push(token);
    turn.text += piece;
    if (on_text && !piece.empty()) on_text(piece);
    return !stop.load(std::memory_order_relaxed);
  };
  Speculation speculation = session_->speculation();
  if (config_.options.draft_max <= 0) speculation.drafters.clear();
  const GeneratorOptions options = generator_options();
  GenerationOutput output = generator_->generate_continuing(prompt, speculation, options, on_token);
  const std::string rest = decoder.flush();
  turn.text += rest;
  if (on_text && !rest.empty()) on_text(rest);
  turn.stats = std::move(output.stats);
  turn.reused_tokens = generator_->reused_tokens();
  turn.prefilled_tokens = generator_->prefilled_tokens();
  // The statistics' prompt is what this turn ran through the target, so
  // that the prefill rate is the rate of the work done.
  turn.stats.prompt_tokens = turn.prefilled_tokens;
  switch (turn.stats.stop_reason) {
    case StopReason::kCancelled:
      turn.end = TurnEnd::kInterrupted;
      break;
    case StopReason::kMaxTokens:
      turn.end = TurnEnd::kMaxTokens;
      break;
    case StopReason::kContextFull:
      turn.end = TurnEnd::kContextFull;
      break;
    default:
      turn.end = TurnEnd::kEndOfTurn;
      break;
  }
  messages.push_back({{"role", "assistant"}, {"content", said}});
  messages_ = std::move(messages);
  return turn;
}

}  // namespace specula::cli

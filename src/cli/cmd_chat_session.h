// `specula chat`'s conversation: the models, the chat template and a
// Generator whose KV cache outlives each answer. Each turn renders the whole
// conversation with the template, tokenizes it, and the Generator keeps the
// cache rows of the prefix it shares with what the cache holds (the earlier
// turns, answers included), so only the new turn is prefilled; a template
// that renders earlier turns differently only costs more prefill.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_template.h"
#include "core/thread_pool.h"
#include "engine/speculation_session.h"
#include "model/model.h"
#include "specula/engine.h"
#include "speculative/generator.h"
#include "tokenizer/tokenizer.h"

namespace specula::cli {

struct ChatConfig {
  EngineConfig engine;        // the models, threads, drafters and suffix cache
  GenerateOptions options;    // sampling, -n per answer, draft_max, policy, n_ctx
  std::string system;         // the system message; empty: none
  std::string chat_template;  // --chat-template FILE|NAME; empty: the model's
};

enum class TurnEnd { kEndOfTurn, kMaxTokens, kInterrupted, kContextFull };

struct TurnResult {
  TurnEnd end = TurnEnd::kEndOfTurn;
  std::string text;  // the answer as streamed (valid UTF-8)
  GenerationStats stats;
  int32_t conversation_tokens = 0;  // the rendered conversation before the answer
  int32_t reused_tokens = 0;        // of those, kept in the cache from earlier turns
  int32_t prefilled_tokens = 0;     // of those, run through the target now
};

class ChatSession {
 public:
  // Loads the models and the template; throws Error naming the flag at
  // fault (a model without a template and no --chat-template, a template
  // that cannot render this conversation, ...).
  explicit ChatSession(const ChatConfig& config);
  ~ChatSession();

  // Adds `user` to the conversation and streams the answer to `on_text`,
  // stopping when `stop` becomes true (after the current token). The answer
  // (partial or not) joins the conversation. Throws Error, leaving the
  // conversation as it was, when the template rejects it or it does not fit
  // in the context (the message says to /clear).
  TurnResult answer(const std::string& user, const std::function<void(std::string_view)>& on_text,
                    const std::atomic<bool>& stop);
  // Forgets the conversation but the system message.
  void clear();

  int32_t n_ctx() const { return n_ctx_; }
  bool speculative() const;
  const std::string& template_origin() const { return template_->origin(); }
  std::vector<std::string> drafter_names() const { return session_->drafter_names(); }
  size_t turns() const;  // user messages so far

 private:
  std::vector<int32_t> render_tokens(const nlohmann::ordered_json& messages) const;
  GeneratorOptions generator_options() const;

  ChatConfig config_;
  std::unique_ptr<Model> target_;
  std::unique_ptr<Model> draft_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<PromptTokenizer> prompt_tokenizer_;
  std::unique_ptr<ChatTemplate> template_;
  ChatRenderOptions render_options_;
  std::vector<int32_t> stop_tokens_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<SpeculationSession> session_;
  std::unique_ptr<Generator> generator_;
  int32_t n_ctx_ = 0;
  nlohmann::ordered_json messages_;
};

// The context of a chat: -c, or when 0 the model's training context capped
// at 4096 tokens (4096 when the file does not say).
int32_t chat_context_size(int32_t requested, int32_t n_ctx_train);

}  // namespace specula::cli

// Chat templates: a model's Jinja template (tokenizer.chat_template in its
// GGUF file, a file, or a built-in) rendered over a conversation, as Hugging
// Face's apply_chat_template does. The CLI (`specula template`, `specula
// chat`) and the server's /v1/chat/completions call render_chat.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/jinja.h"
#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace specula {

struct ChatRenderOptions {
  // Append the opening of an assistant turn so the model answers.
  bool add_generation_prompt = true;
  // The text of the model's BOS/EOS tokens, as the template sees them.
  std::string bos_token;
  std::string eos_token;
  // Other template variables, e.g. {"tools": [...]}, {"documents": [...]},
  // {"enable_thinking": false}. Must be a JSON object (or null).
  nlohmann::ordered_json extra_variables;
};

// A rendered prompt that remembers which bytes the user supplied (message
// content and every other message field but "role", tools, documents) and
// which the template wrote.
struct ChatPrompt {
  std::string text;
  jinja::Spans user_spans;  // sorted, disjoint byte ranges of user text
};

class ChatTemplate {
 public:
  // Parses `source`; `origin` names it in errors ("model.gguf", a file
  // name, "built-in chatml"). Throws Error (with line and column) for a
  // template the interpreter cannot run.
  ChatTemplate(std::string source, std::string origin, jinja::Limits limits = {});

  // tokenizer.chat_template of `file`; nullopt when the file has none.
  static std::optional<ChatTemplate> from_gguf(const GgufReader& file);
  // --chat-template VALUE: a built-in name (see builtin_names) or a file.
  static ChatTemplate from_name_or_file(const std::string& value);
  // The built-in templates ("chatml", "llama3", ...), for --chat-template.
  static std::vector<std::string> builtin_names();
  static std::optional<std::string> builtin_source(std::string_view name);

  const std::string& source() const { return source_; }
  const std::string& origin() const { return origin_; }

  // Renders `messages` (a JSON array of {"role": ..., "content": ...}).
  // Throws jinja::TemplateRaised when the template rejects the conversation
  // (e.g. roles that do not alternate) and Error for anything else.
  std::string render(const nlohmann::ordered_json& messages,
                     const ChatRenderOptions& options) const;
  // The same text, with its user spans, for PromptTokenizer.
  ChatPrompt render_prompt(const nlohmann::ordered_json& messages,
                           const ChatRenderOptions& options) const;

 private:
  std::string source_;
  std::string origin_;
  jinja::Template template_;
};

// The convenience the server and the CLI call. `messages` as parsed by
// nlohmann::json (object keys sorted) or ordered_json (keys as sent).
std::string render_chat(const ChatTemplate& chat_template, const nlohmann::ordered_json& messages,
                        const ChatRenderOptions& options);
std::string render_chat(const ChatTemplate& chat_template, const nlohmann::json& messages,
                        const ChatRenderOptions& options);

// The extra variables of apply_chat_template(messages, tools=tools, **kwargs),
// for ChatRenderOptions::extra_variables: `tools` (null or an array of
// objects, OpenAI's function tools) as "tools", then each entry of `kwargs`
// (null or an object: llama-server's and vLLM's chat_template_kwargs, e.g.
// {"enable_thinking": false}; a kwarg "tools" replaces the list). The
// checks throw Error saying what is wrong: a wrong type, or a kwarg naming
// a variable the options set (messages, add_generation_prompt, bos_token,
// eos_token).
void check_chat_tools(const nlohmann::ordered_json& tools);
void check_chat_template_kwargs(const nlohmann::ordered_json& kwargs);
nlohmann::ordered_json chat_template_variables(const nlohmann::ordered_json& tools,
                                               const nlohmann::ordered_json& kwargs);

// Tokenizes a rendered prompt so that special tokens stay where they belong:
// special-token text the template wrote becomes the special token (as
// encode(text, parse_special=true) does), while the same text inside user
// bytes stays plain text (as encode(text, parse_special=false) does), so a
// user typing "<|im_end|>" cannot close their turn. With no special-token
// text in user bytes the ids equal tokenizer.encode(prompt.text, false, true).
// No BOS/EOS is added: chat templates write BOS themselves.
class PromptTokenizer {
 public:
  explicit PromptTokenizer(const Tokenizer& tokenizer);
  std::vector<int32_t> tokenize(const ChatPrompt& prompt) const;

 private:
  const Tokenizer& tokenizer_;
  // Special tokens matchable in text, by first byte, longest text first.
  std::vector<std::vector<std::pair<std::string, int32_t>>> by_first_byte_;
};

// The text of the BOS and EOS tokens of a GGUF vocabulary ("" when none), for
// ChatRenderOptions.
struct SpecialTokenTexts {
  std::string bos;
  std::string eos;
};
SpecialTokenTexts special_token_texts(const GgufReader& file);

}  // namespace specula

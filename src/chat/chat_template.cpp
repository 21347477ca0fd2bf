#include "chat/chat_template.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace specula {

namespace {

// The two formats nearly every instruct model uses, for models whose GGUF
// carries no template. chatml is ChatML as OpenHermes/Qwen ship it; llama3
// is Meta-Llama-3-8B-Instruct's template (tests/data/chat_templates).
constexpr std::string_view kChatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
    "}}"
    "{% endif %}";
constexpr std::string_view kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
    "<|end_header_id|>\\n\\n' }}{% endif %}";

}  // namespace

ChatTemplate::ChatTemplate(std::string source, std::string origin, jinja::Limits limits)
    : source_(std::move(source)), origin_(std::move(origin)), template_([&]() -> jinja::Template {
        try {
          return jinja::Template(source_, limits);
        } catch (const Error& e) {
          fail(origin_, ": ", e.what());
        }
      }()) {}

std::optional<ChatTemplate> ChatTemplate::from_gguf(const GgufReader& file) {
  const auto source = file.get_string("tokenizer.chat_template");
  if (!source) return std::nullopt;
  return ChatTemplate(std::string(*source), file.path() + " (tokenizer.chat_template)");
}

std::vector<std::string> ChatTemplate::builtin_names() {
  return {"chatml", "llama3"};
}

std::optional<std::string> ChatTemplate::builtin_source(std::string_view name) {
  if (name == "chatml") return std::string(kChatml);
  if (name == "llama3") return std::string(kLlama3);
  return std::nullopt;
}

ChatTemplate ChatTemplate::from_name_or_file(const std::string& value) {
  if (const auto builtin = builtin_source(value))
    return ChatTemplate(*builtin, "built-in template " + value);
  std::ifstream in(value, std::ios::binary);
  if (!in) {
    std::string names;
    for (const auto& n : builtin_names()) names += (names.empty() ? "" : ", ") + n;
    fail("chat template '", value, "': not a built-in (", names, ") and not a readable file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("chat template '", value, "': read error");
  return ChatTemplate(text.str(), value);
}

ChatPrompt ChatTemplate::render_prompt(const nlohmann::ordered_json& messages,
                                       const ChatRenderOptions& options) const {
  if (!messages.is_array()) fail("chat messages must be a JSON array, not ", messages.type_name());
  jinja::Array message_values;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object()) fail("chat message ", i, " must be a JSON object, not ", m.type_name());
    if (!m.contains("role") || !m["role"].is_string())
      fail("chat message ", i, " needs a string \"role\"");
    // Everything but the role is the user's: templates build control tokens
    // from roles ('<|' + role + '|>'), never from content.
    jinja::Object message;
    for (const auto& [key, value] : m.items()) {
      message.entries.emplace_back(key, jinja::Value::from_json(value, key != "role"));
    }
    message_values.push_back(jinja::Value::from_object(std::move(message)));
  }
  std::vector<std::pair<std::string, jinja::Value>> variables;
  variables.emplace_back("messages", jinja::Value::from_array(std::move(message_values)));
  variables.emplace_back("add_generation_prompt",
                         jinja::Value::from_bool(options.add_generation_prompt));
  variables.emplace_back("bos_token", jinja::Value::from_string(options.bos_token));
  variables.emplace_back("eos_token", jinja::Value::from_string(options.eos_token));
  if (!options.extra_variables.is_null()) {
    if (!options.extra_variables.is_object()) fail("chat template variables must be a JSON object");
    for (const auto& [key, value] : options.extra_variables.items()) {
      if (key == "messages" || key == "add_generation_prompt" || key == "bos_token" ||
          key == "eos_token") {
        fail("chat template variable '", key,
             "' is set by its own option, not as an extra variable");
      }
      variables.emplace_back(key, jinja::Value::from_json(value, true));
    }
  }
  try {
    jinja::Rendered rendered = template_.render_with_user_spans(variables);
    return {std::move(rendered.text), std::move(rendered.user_spans)};
  } catch (const jinja::TemplateRaised&) {
    throw;
  } catch (const Error& e) {
    fail(origin_, ": ", e.what());
  }
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages,
                                 const ChatRenderOptions& options) const {
  return render_prompt(messages, options).text;
}

std::string render_chat(const ChatTemplate& chat_template, const nlohmann::ordered_json& messages,
                        const ChatRenderOptions& options) {
  return chat_template.render(messages, options);
}

std::string render_chat(const ChatTemplate& chat_template, const nlohmann::json& messages,
                        const ChatRenderOptions& options) {
  return chat_template.render(nlohmann::ordered_json::parse(messages.dump()), options);
}

namespace {

bool is_reserved_variable(std::string_view key) {
  return key == "messages" || key == "add_generation_prompt" || key == "bos_token" ||
         key == "eos_token";
}

}  // namespace

void check_chat_tools(const nlohmann::ordered_json& tools) {
  if (tools.is_null()) return;
  if (!tools.is_array()) {
    fail(
        "tools must be an array of tool objects ({\"type\": \"function\", \"function\": "
        "{\"name\", \"description\", \"parameters\"}}), not ",
        tools.type_name());
  }
  for (size_t i = 0; i < tools.size(); ++i) {
    if (!tools[i].is_object()) {
      fail("tools[", i, "] must be a tool object ({\"type\": \"function\", ...}), not ",
           tools[i].type_name());
    }
  }
}

void check_chat_template_kwargs(const nlohmann::ordered_json& kwargs) {
  if (kwargs.is_null()) return;
  if (!kwargs.is_object()) {
    fail(
        "chat_template_kwargs must be an object of template variables (e.g. "
        "{\"enable_thinking\": false}), not ",
        kwargs.type_name());
  }
  for (const auto& [key, value] : kwargs.items()) {
    if (is_reserved_variable(key)) {
      fail("chat_template_kwargs cannot set '", key, "': it comes from the request itself");
    }
    if (key == "tools") check_chat_tools(value);
  }
}

nlohmann::ordered_json chat_template_variables(const nlohmann::ordered_json& tools,
                                               const nlohmann::ordered_json& kwargs) {
  check_chat_tools(tools);
  check_chat_template_kwargs(kwargs);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (!tools.is_null()) out["tools"] = tools;
  if (!kwargs.is_null()) {
    for (const auto& [key, value] : kwargs.items()) out[key] = value;
  }
  return out;
}

SpecialTokenTexts special_token_texts(const GgufReader& file) {
  SpecialTokenTexts out;
  const auto tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (!tokens) return out;
  const auto text_of = [&](std::string_view key) -> std::string {
    const auto id = file.get_int(key);
    if (!id || *id < 0 || static_cast<size_t>(*id) >= tokens->size()) return "";
    return std::string((*tokens)[static_cast<size_t>(*id)]);
  };
  out.bos = text_of("tokenizer.ggml.bos_token_id");
  out.eos = text_of("tokenizer.ggml.eos_token_id");
  return out;
}

}  // namespace specula

// `specula template`: renders a conversation with a chat template and prints
// the prompt byte for byte (no newline added), for scripts and for checking
// what a model will see. The template is the model's own
// (tokenizer.chat_template in its GGUF file) or --chat-template FILE|NAME;
// --tools and --kwargs add template variables as apply_chat_template's
// tools= and **kwargs (the server's tools and chat_template_kwargs) do.
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chat/chat_template.h"
#include "cli/command_registry.h"
#include "core/error.h"
#include "core/input_file.h"
#include "gguf/gguf_reader.h"

namespace specula::cli {
namespace {

struct TemplateOptions {
  std::string model;
  std::string chat_template;
  std::string messages;
  bool add_generation_prompt = false;
  std::string bos;
  std::string eos;
  std::string tools;
  std::string kwargs;
};

void add_flags(CLI::App& sub, TemplateOptions& options) {
  sub.add_option("-m,--model", options.model,
                 "GGUF file: its tokenizer.chat_template and BOS/EOS token texts");
  sub.add_option("--chat-template", options.chat_template,
                 "Template file, or a built-in: chatml, llama3 (overrides the model's)");
  sub.add_option("--messages", options.messages,
                 "JSON file ('-': stdin): an array of {\"role\", \"content\"}, or an object with "
                 "\"messages\" and other template variables (\"tools\", ...)")
      ->required();
  sub.add_flag("--add-generation-prompt", options.add_generation_prompt,
               "End with the opening of an assistant turn");
  sub.add_option("--bos", options.bos, "bos_token text (default: the model's, else empty)");
  sub.add_option("--eos", options.eos, "eos_token text (default: the model's, else empty)");
  sub.add_option("--tools", options.tools,
                 "JSON file: the tools, an array of {\"type\": \"function\", \"function\": "
                 "{...}} (the template variable tools)");
  sub.add_option("--kwargs", options.kwargs,
                 "Extra template variables: a JSON object, inline ('{\"enable_thinking\": "
                 "false}') or a file, as chat_template_kwargs");
}

nlohmann::ordered_json read_messages(const std::string& path) {
  const std::string text = path == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {})
                                       : read_input_file(path, "--messages");
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("--messages ", path, ": not valid JSON (", e.what(), ")");
  }
}

nlohmann::ordered_json parse_json(const std::string& text, const std::string& what) {
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(what, ": not valid JSON (", e.what(), ")");
  }
}

// --kwargs: inline JSON when it starts with '{', else a file.
nlohmann::ordered_json read_kwargs(const std::string& value) {
  const size_t first = value.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && value[first] == '{') return parse_json(value, "--kwargs");
  return parse_json(read_input_file(value, "--kwargs"), "--kwargs " + value);
}

// The variables --tools and --kwargs add, as apply_chat_template's tools=
// and **kwargs: over those of the --messages object.
void add_tools_and_kwargs(const TemplateOptions& options, nlohmann::ordered_json& variables) {
  nlohmann::ordered_json tools, kwargs;
  if (!options.tools.empty()) {
    tools = parse_json(read_input_file(options.tools, "--tools"), "--tools " + options.tools);
    if (tools.is_null()) fail("--tools ", options.tools, ": null is not a list of tools");
    try {
      check_chat_tools(tools);
    } catch (const Error& e) {
      fail("--tools ", options.tools, ": ", e.what());
    }
  }
  if (!options.kwargs.empty()) {
    kwargs = read_kwargs(options.kwargs);
    try {
      check_chat_template_kwargs(kwargs);
    } catch (const Error& e) {
      fail("--kwargs: ", e.what());
    }
  }
  if (variables.is_null()) variables = nlohmann::ordered_json::object();
  const nlohmann::ordered_json added = chat_template_variables(tools, kwargs);
  for (const auto& [key, value] : added.items()) variables[key] = value;
}

void run(const TemplateOptions& options, const CLI::App& sub) {
  if (options.model.empty() && options.chat_template.empty()) {
    fail("template: give -m MODEL (its tokenizer.chat_template) or --chat-template FILE|NAME");
  }
  std::unique_ptr<GgufReader> file;
  if (!options.model.empty()) file = GgufReader::open(options.model);
  std::optional<ChatTemplate> chat_template;
  if (!options.chat_template.empty()) {
    chat_template = ChatTemplate::from_name_or_file(options.chat_template);
  } else {
    chat_template = ChatTemplate::from_gguf(*file);
    if (!chat_template) {
      fail(options.model,
           " has no tokenizer.chat_template: give --chat-template FILE or a built-in (chatml, "
           "llama3)");
    }
  }
  ChatRenderOptions render;
  render.add_generation_prompt = options.add_generation_prompt;
  if (file) {
    const SpecialTokenTexts texts = special_token_texts(*file);
    render.bos_token = texts.bos;
    render.eos_token = texts.eos;
  }
  if (sub.count("--bos")) render.bos_token = options.bos;
  if (sub.count("--eos")) render.eos_token = options.eos;

  nlohmann::ordered_json input = read_messages(options.messages);
  nlohmann::ordered_json messages;
  if (input.is_array()) {
    messages = std::move(input);
  } else if (input.is_object() && input.contains("messages")) {
    messages = input["messages"];
    input.erase("messages");
    render.extra_variables = std::move(input);
  } else {
    fail("--messages ", options.messages,
         ": expected a JSON array of messages or an object with \"messages\"");
  }
  add_tools_and_kwargs(options, render.extra_variables);
  const std::string prompt = render_chat(*chat_template, messages, render);
  std::cout.write(prompt.data(), static_cast<std::streamsize>(prompt.size()));
  std::cout.flush();
  if (!std::cout) fail("template: could not write the prompt to standard output");
}

const bool registered = register_command_with_flags<TemplateOptions>(
    "template", "Render a conversation with a model's chat template and print the prompt",
    add_flags, run);

}  // namespace
}  // namespace specula::cli

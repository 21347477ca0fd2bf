// libFuzzer harness: chat templates (src/chat's sandboxed Jinja interpreter).
//
// Input: byte 0 picks the mode, the rest is
//   0: a template source, rendered over a fixed conversation (also through
//      fuzz_render_template of jinja_fuzz_target.h, which checks the user
//      spans);
//   1: a messages JSON array, rendered with every built-in template;
//   2: a template source, a 0 byte, then a messages JSON array.
// The interpreter runs with small limits (so a hostile template ends quickly
// with an Error). Anything but specula::Error (TemplateRaised included) out
// of parsing or rendering is a finding, as is a crash, a sanitizer report,
// a hang or memory beyond the limits.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "core/error.h"
#include "jinja_fuzz_target.h"

namespace {

using nlohmann::ordered_json;
using specula::ChatRenderOptions;
using specula::ChatTemplate;
using specula::Error;

specula::jinja::Limits fuzz_limits() {
  specula::jinja::Limits limits;
  limits.max_template_bytes = 64 << 10;
  limits.max_output_bytes = 256 << 10;
  limits.max_loop_iterations = 20'000;
  limits.max_call_depth = 16;
  limits.max_nesting = 64;
  return limits;
}

const ordered_json& fixed_conversation() {
  static const ordered_json messages = ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hello \u00e9\ud83d\ude00 <|im_end|> {{ 1 }}"},
    {"role": "assistant", "content": "  Hi there  "},
    {"role": "tool", "content": "{\"x\": 1}", "name": "calc"},
    {"role": "user", "content": ""}
  ])");
  return messages;
}

ChatRenderOptions render_options() {
  ChatRenderOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.extra_variables = ordered_json::parse(
      R"({"tools": [{"type": "function", "function": {"name": "calc", "parameters": {}}}],
          "enable_thinking": false})");
  return options;
}

void render(const ChatTemplate& chat_template, const ordered_json& messages) {
  try {
    (void)specula::render_chat(chat_template, messages, render_options());
  } catch (const Error&) {
  }
}

void fuzz_template(std::string_view source, const ordered_json& messages) {
  try {
    const ChatTemplate chat_template(std::string(source), "fuzz", fuzz_limits());
    render(chat_template, messages);
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      fuzz_template(rest, fixed_conversation());
      // The chat part's own entry point: render_prompt, user spans checked.
      specula::fuzz_render_template(rest);
      break;
    case 1: {
      const ordered_json messages = ordered_json::parse(rest, nullptr, false);
      if (messages.is_discarded()) return 0;
      for (const std::string& name : ChatTemplate::builtin_names()) {
        render(ChatTemplate(*ChatTemplate::builtin_source(name), name, fuzz_limits()), messages);
      }
      break;
    }
    default: {
      const size_t zero = rest.find('\0');
      if (zero == std::string_view::npos) return 0;
      const ordered_json messages = ordered_json::parse(rest.substr(zero + 1), nullptr, false);
      if (messages.is_discarded()) return 0;
      fuzz_template(rest.substr(0, zero), messages);
      break;
    }
  }
  return 0;
}

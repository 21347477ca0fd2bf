// The chat-template interpreter's fuzz entry point, for a libFuzzer harness
// (fuzz_chat.cpp: LLVMFuzzerTestOneInput calls fuzz_render_template). The
// input is a template; it is parsed and rendered with a fixed conversation
// under small limits. Any specula::Error is an expected outcome; a crash, a
// hang, another exception or an output over the limit is a finding.
#pragma once

#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "core/error.h"

namespace specula {

inline void fuzz_render_template(std::string_view source) {
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "  sys <|im_end|> "},
    {"role": "user", "content": "Hi {{ x }} é"},
    {"role": "assistant", "content": "ok", "tool_calls": [{"id": "abcdefghi", "function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}]},
    {"role": "user", "content": ""}])");
  jinja::Limits limits;
  limits.max_template_bytes = 64 << 10;
  limits.max_output_bytes = 1 << 20;
  limits.max_loop_iterations = 100000;
  limits.max_call_depth = 32;
  try {
    const ChatTemplate chat_template(std::string(source), "fuzz input", limits);
    for (const bool add_generation_prompt : {false, true}) {
      ChatRenderOptions options;
      options.add_generation_prompt = add_generation_prompt;
      options.bos_token = "<s>";
      options.eos_token = "</s>";
      options.extra_variables = {{"tools", messages[2]["tool_calls"]}};
      const ChatPrompt prompt = chat_template.render_prompt(messages, options);
      if (prompt.text.size() > limits.max_output_bytes) std::abort();
      size_t end = 0;
      for (const auto& [b, e] : prompt.user_spans) {  // sorted, disjoint, inside the text
        if (b < end || e <= b || e > prompt.text.size()) std::abort();
        end = e;
      }
    }
  } catch (const Error&) {
  }
}

}  // namespace specula

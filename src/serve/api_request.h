// The bodies of POST /v1/completions, /tokenize and /detokenize, parsed and
// checked field by field. Every bad value becomes an ApiError (400) naming
// the field and saying what is allowed; fields this server does not know
// are ignored, as OpenAI does. Pure functions of the body and the model's
// limits, so they are tested without a server (tests/serve/api_request_test.cpp).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/sampling.h"
#include "serve/scheduler.h"

namespace specula {

// A /v1/completions body as given, before tokenization.
struct CompletionParams {
  bool prompt_is_text = true;
  std::string prompt_text;               // when prompt_is_text
  std::vector<int32_t> prompt_ids;       // otherwise
  std::optional<int64_t> max_tokens;     // absent: 16, or what the context leaves
  bool max_tokens_fill_context = false;  // chat: absent max_tokens is what the context leaves
  // OpenAI's defaults: temperature 1, top_p 1, top_k and min_p off.
  SamplingParams sampling{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 0};
  bool seed_given = false;        // absent: the server draws one
  std::vector<std::string> stop;  // up to 4 non-empty strings
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool ignore_eos = false;     // llama-server's extension
};

// The default max_tokens of OpenAI's completions API.
inline constexpr int64_t kDefaultMaxTokens = 16;
inline constexpr size_t kMaxStopStrings = 4;

// Throws ApiError for malformed JSON, a body that is not an object, a
// missing prompt, or a field of the wrong type or out of range.
CompletionParams parse_completion_body(std::string_view body);

// A /v1/chat/completions body: the conversation (keys in the order sent;
// each content a string, text parts joined with newlines) and the same
// generation fields as completions (max_completion_tokens is max_tokens;
// absent: what the context leaves).
struct ChatParams {
  nlohmann::ordered_json messages;
  CompletionParams params;
  // For the template: see parse_chat_template_variables.
  nlohmann::ordered_json template_variables;
};
ChatParams parse_chat_body(std::string_view body);
// The template variables a chat body (or /apply-template's) adds to the
// messages, as transformers' apply_chat_template(messages, tools=...,
// **chat_template_kwargs) gets them: "tools" (an array of objects, OpenAI's
// function tools) and the entries of "chat_template_kwargs" (an object, as
// llama-server and vLLM take it, e.g. {"enable_thinking": false}); keys in
// the order sent. An empty object when the body has neither (or both null).
// 400 naming "tools" or "chat_template_kwargs" for a wrong type or a kwarg
// naming messages, add_generation_prompt, bos_token or eos_token.
nlohmann::ordered_json parse_chat_template_variables(std::string_view body);
// Only the messages (POST /apply-template). 400 naming "messages" when
// missing, empty, a role that is not system, developer, user, assistant or
// tool, or a content that is not a string or an array of text parts.
nlohmann::ordered_json parse_chat_messages(std::string_view body);

// The scheduler's request from checked params and the prompt's tokens:
// checks the ids against the vocabulary and the lengths against the
// per-request context `n_ctx` (400 naming "prompt" with both lengths, or
// "max_tokens"). `seed` is used when the body gave none.
CompletionRequest make_completion_request(const CompletionParams& params,
                                          std::vector<int32_t> prompt_tokens, int32_t n_ctx,
                                          int32_t n_vocab, uint64_t seed);

// POST /tokenize {"content": "text", "add_special": false} (llama-server's shape).
struct TokenizeParams {
  std::string content;
  bool add_special = false;  // add BOS/EOS as the vocabulary asks
};
TokenizeParams parse_tokenize_body(std::string_view body);

// POST /detokenize {"tokens": [ids]}; ids checked against n_vocab.
std::vector<int32_t> parse_detokenize_body(std::string_view body, int32_t n_vocab);

}  // namespace specula

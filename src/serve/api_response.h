// The JSON this server answers with, shaped as OpenAI's completions and chat
// completions APIs (https://platform.openai.com/docs/api-reference) plus a
// `speculative` object: what speculation did for the request.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "serve/api_error.h"
#include "serve/scheduler.h"

namespace specula {

// What every response and chunk of one completion repeats.
struct CompletionIdentity {
  std::string id;       // "cmpl-<hex>"
  int64_t created = 0;  // Unix seconds
  std::string model;
  // /v1/chat/completions: "chat.completion" objects with choices[].message,
  // chunks "chat.completion.chunk" with choices[].delta.
  bool chat = false;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// "stop" or "length" ("cancelled" for a request the server ended).
std::string_view finish_reason_name(FinishReason reason);

// {"drafted", "accepted", "acceptance", "g_histogram": [steps with g = 0,
// 1, ...], "drafters": [{"name", "steps", "drafted", "accepted"}]}.
nlohmann::json speculation_json(const RequestSpeculation& speculation);
nlohmann::json usage_json(const Usage& usage);

// The whole answer of a non-streaming request.
nlohmann::json completion_json(const CompletionIdentity& identity, const std::string& text,
                               FinishReason finish, const Usage& usage,
                               const RequestSpeculation& speculation);
// One streamed chunk: `text` new since the last one; finish_reason null
// until the last chunk, which also carries `speculative`.
nlohmann::json chunk_json(const CompletionIdentity& identity, const std::string& text);
// Chat streams open with {"delta": {"role": "assistant", "content": ""}}.
nlohmann::json role_chunk_json(const CompletionIdentity& identity);
nlohmann::json final_chunk_json(const CompletionIdentity& identity, FinishReason finish,
                                const RequestSpeculation& speculation);
// stream_options.include_usage: the chunk after the last, with no choices.
nlohmann::json usage_chunk_json(const CompletionIdentity& identity, const Usage& usage);

nlohmann::json error_json(const ApiError& error);

// GET /v1/models with the one model this server holds.
nlohmann::json models_json(const std::string& model, int64_t created, int32_t n_ctx,
                           int32_t n_vocab);

// JSON text; invalid UTF-8 (which the streaming decoder never produces)
// would become U+FFFD rather than throw.
std::string dump(const nlohmann::json& value);

}  // namespace specula

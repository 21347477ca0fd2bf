#include "serve/api_response.h"

namespace specula {

using nlohmann::json;

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "stop";
}

json speculation_json(const RequestSpeculation& speculation) {
  json drafters = json::array();
  for (const DrafterUsage& d : speculation.drafters) {
    drafters.push_back({{"name", d.name},
                        {"steps", d.steps},
                        {"drafted", d.drafted_tokens},
                        {"accepted", d.accepted_tokens}});
  }
  const double acceptance = speculation.drafted > 0 ? static_cast<double>(speculation.accepted) /
                                                          static_cast<double>(speculation.drafted)
                                                    : 0.0;
  return {{"drafted", speculation.drafted},
          {"accepted", speculation.accepted},
          {"acceptance", acceptance},
          {"g_histogram", speculation.g_steps},
          {"drafters", drafters}};
}

json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

namespace {

json envelope(const CompletionIdentity& identity, bool chunk) {
  const char* object = !identity.chat ? "text_completion"
                       : chunk        ? "chat.completion.chunk"
                                      : "chat.completion";
  return {{"id", identity.id},
          {"object", object},
          {"created", identity.created},
          {"model", identity.model}};
}

json choice(const CompletionIdentity& identity, bool chunk, const std::string& text,
            const json& finish_reason) {
  if (!identity.chat) {
    return {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  }
  json c = {{"index", 0}};
  if (chunk) {
    c["delta"] = text.empty() ? json::object() : json{{"content", text}};
  } else {
    c["message"] = {{"role", "assistant"}, {"content", text}};
  }
  c["logprobs"] = nullptr;
  c["finish_reason"] = finish_reason;
  return c;
}

}  // namespace

json completion_json(const CompletionIdentity& identity, const std::string& text,
                     FinishReason finish, const Usage& usage,
                     const RequestSpeculation& speculation) {
  json body = envelope(identity, false);
  body["choices"] = json::array({choice(identity, false, text, finish_reason_name(finish))});
  body["usage"] = usage_json(usage);
  body["speculative"] = speculation_json(speculation);
  return body;
}

json chunk_json(const CompletionIdentity& identity, const std::string& text) {
  json body = envelope(identity, true);
  body["choices"] = json::array({choice(identity, true, text, nullptr)});
  return body;
}

json role_chunk_json(const CompletionIdentity& identity) {
  json body = envelope(identity, true);
  body["choices"] = json::array({{{"index", 0},
                                  {"delta", {{"role", "assistant"}, {"content", ""}}},
                                  {"logprobs", nullptr},
                                  {"finish_reason", nullptr}}});
  return body;
}

json final_chunk_json(const CompletionIdentity& identity, FinishReason finish,
                      const RequestSpeculation& speculation) {
  json body = envelope(identity, true);
  body["choices"] = json::array({choice(identity, true, "", finish_reason_name(finish))});
  body["speculative"] = speculation_json(speculation);
  return body;
}

json usage_chunk_json(const CompletionIdentity& identity, const Usage& usage) {
  json body = envelope(identity, true);
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return body;
}

json error_json(const ApiError& error) {
  auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"error",
           {{"message", error.what()},
            {"type", error.type},
            {"param", or_null(error.param)},
            {"code", or_null(error.code)}}}};
}

json models_json(const std::string& model, int64_t created, int32_t n_ctx, int32_t n_vocab) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model},
                                 {"object", "model"},
                                 {"created", created},
                                 {"owned_by", "specula"},
                                 {"meta", {{"n_ctx", n_ctx}, {"n_vocab", n_vocab}}}}})}};
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace specula

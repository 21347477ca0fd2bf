#include "serve/api_request.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "serve/api_error.h"

namespace specula {
namespace {

using nlohmann::json;

// "a string", "an array", ... for messages about a value of the wrong type.
std::string kind_of(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a fractional number";
    default:
      return "a number";
  }
}

json parse_object(std::string_view body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // Parse again for the position of the error.
    std::string where;
    try {
      const json again = json::parse(body);
      static_cast<void>(again);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for 1e999
      where = std::string(": ") + e.what();
    }
    throw ApiError(400, "the request body is not valid JSON" + where);
  }
  if (!parsed.is_object()) {
    throw ApiError(400, "the request body must be a JSON object, got " + kind_of(parsed));
  }
  return parsed;
}

// The field's value, or null when absent (null counts as absent, as in OpenAI's API).
const json* field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// An integer: a JSON integer, or a number with no fractional part (10.0).
std::optional<int64_t> as_integer(const json& value) {
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return value.get<int64_t>();
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      return static_cast<int64_t>(d);
    }
  }
  return std::nullopt;
}

std::optional<int64_t> get_integer(const json& object, const char* name) {
  const json* value = field(object, name);
  if (value == nullptr) return std::nullopt;
  const std::optional<int64_t> n = as_integer(*value);
  if (!n) bad_request(name, std::string(name) + " must be an integer, got " + kind_of(*value));
  return n;
}

std::optional<double> get_number(const json& object, const char* name) {
  const json* value = field(object, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) {
    bad_request(name, std::string(name) + " must be a number, got " + kind_of(*value));
  }
  return value->get<double>();
}

std::optional<bool> get_bool(const json& object, const char* name,
                             const std::string& param = std::string()) {
  const json* value = field(object, name);
  if (value == nullptr) return std::nullopt;
  const std::string p = param.empty() ? std::string(name) : param;
  if (!value->is_boolean()) bad_request(p, p + " must be true or false, got " + kind_of(*value));
  return value->get<bool>();
}

std::string show(double value) {
  json j = value;
  return j.dump();
}

std::vector<int32_t> token_ids(const json& array, const std::string& param) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    const std::optional<int64_t> id = as_integer(array[i]);
    if (!id || *id < 0 || *id > std::numeric_limits<int32_t>::max()) {
      bad_request(param, param + "[" + std::to_string(i) + "] must be a token id (an integer >= " +
                             "0), got " + (id ? std::to_string(*id) : kind_of(array[i])));
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  return ids;
}

void parse_prompt(const json& body, CompletionParams& params) {
  const json* prompt = field(body, "prompt");
  if (prompt == nullptr) {
    bad_request("prompt", "prompt is missing: give the text to complete, or an array of token ids");
  }
  const json* value = prompt;
  // A one-element array of a string or of an id array is one prompt.
  if (value->is_array() && value->size() == 1 &&
      ((*value)[0].is_string() || (*value)[0].is_array())) {
    value = &(*value)[0];
  }
  if (value->is_string()) {
    params.prompt_is_text = true;
    params.prompt_text = value->get<std::string>();
    return;
  }
  if (value->is_array()) {
    for (const json& element : *value) {
      if (element.is_string() || element.is_array()) {
        bad_request("prompt",
                    "prompt holds several prompts: this server takes one prompt per request (a "
                    "string or an array of token ids)");
      }
    }
    if (value->empty())
      bad_request("prompt", "prompt is an empty array: give at least one token id");
    params.prompt_is_text = false;
    params.prompt_ids = token_ids(*value, "prompt");
    return;
  }
  bad_request("prompt", "prompt must be a string or an array of token ids, got " + kind_of(*value));
}

void parse_stop(const json& body, CompletionParams& params) {
  const json* stop = field(body, "stop");
  if (stop == nullptr) return;
  auto add = [&](const json& s) {
    if (!s.is_string()) {
      bad_request("stop", "stop must be a string or an array of strings, got " + kind_of(s));
    }
    std::string text = s.get<std::string>();
    if (text.empty()) bad_request("stop", "stop holds an empty string: every stop must have text");
    params.stop.push_back(std::move(text));
  };
  if (stop->is_array()) {
    if (stop->size() > kMaxStopStrings) {
      bad_request("stop", "stop holds " + std::to_string(stop->size()) + " strings: at most " +
                              std::to_string(kMaxStopStrings));
    }
    for (const json& s : *stop) add(s);
  } else {
    add(*stop);
  }
}

void parse_sampling(const json& body, CompletionParams& params) {
  SamplingParams& s = params.sampling;
  if (const auto t = get_number(body, "temperature")) {
    if (!(*t >= 0.0) || *t > 100.0) {
      bad_request("temperature",
                  "temperature is " + show(*t) + ": use a value in [0, 100] (0 is greedy)");
    }
    s.temperature = static_cast<float>(*t);
  }
  if (const auto p = get_number(body, "top_p")) {
    if (!(*p > 0.0 && *p <= 1.0)) {
      bad_request("top_p", "top_p is " + show(*p) + ": use a value in (0, 1] (1 is off)");
    }
    s.top_p = static_cast<float>(*p);
  }
  if (const auto k = get_integer(body, "top_k")) {
    if (*k < 0 || *k > std::numeric_limits<int32_t>::max()) {
      bad_request("top_k", "top_k is " + std::to_string(*k) + ": use 0 (off) or a positive count");
    }
    s.top_k = static_cast<int32_t>(*k);
  }
  if (const auto m = get_number(body, "min_p")) {
    if (!(*m >= 0.0 && *m <= 1.0)) {
      bad_request("min_p", "min_p is " + show(*m) + ": use a value in [0, 1] (0 is off)");
    }
    s.min_p = static_cast<float>(*m);
  }
  if (const json* seed = field(body, "seed")) {
    // Any 64-bit integer, negative ones included (OpenAI allows them).
    if (seed->is_number_unsigned()) {
      s.seed = seed->get<uint64_t>();
    } else if (const auto n = as_integer(*seed)) {
      s.seed = static_cast<uint64_t>(*n);
    } else {
      bad_request("seed", "seed must be an integer, got " + kind_of(*seed));
    }
    params.seed_given = true;
  }
}

// Options of OpenAI's API this server does not implement: refused rather
// than silently ignored when set to something other than their default.
void refuse_unsupported(const json& body) {
  if (const auto n = get_integer(body, "n"); n && *n != 1) {
    bad_request("n",
                "n is " + std::to_string(*n) + ": this server makes one completion per request");
  }
  if (const auto n = get_integer(body, "best_of"); n && *n != 1) {
    bad_request("best_of", "best_of is " + std::to_string(*n) + ": only 1 is supported");
  }
  if (const auto echo = get_bool(body, "echo"); echo && *echo) {
    bad_request("echo", "echo is not supported: leave it false");
  }
  if (const json* logprobs = field(body, "logprobs")) {
    if (!(logprobs->is_number_integer() && logprobs->get<int64_t>() == 0) &&
        !(logprobs->is_boolean() && !logprobs->get<bool>())) {
      bad_request("logprobs", "logprobs are not supported: leave logprobs out");
    }
  }
  if (const json* suffix = field(body, "suffix")) {
    if (!(suffix->is_string() && suffix->get<std::string>().empty())) {
      bad_request("suffix", "suffix (insertion) is not supported: leave it out");
    }
  }
}

void parse_max_tokens(const json& object, const char* name, CompletionParams& params) {
  if (const auto max_tokens = get_integer(object, name)) {
    if (*max_tokens <= 0) {
      bad_request(name, std::string(name) + " is " + std::to_string(*max_tokens) +
                            ": ask for at least 1 token");
    }
    params.max_tokens = max_tokens;
  }
}

// What /v1/completions and /v1/chat/completions share after the prompt.
void parse_generation(const json& object, CompletionParams& params) {
  parse_sampling(object, params);
  parse_stop(object, params);
  params.stream = get_bool(object, "stream").value_or(false);
  if (const json* options = field(object, "stream_options")) {
    if (!options->is_object()) {
      bad_request("stream_options", "stream_options must be an object, got " + kind_of(*options));
    }
    params.include_usage =
        get_bool(*options, "include_usage", "stream_options.include_usage").value_or(false);
  }
  params.ignore_eos = get_bool(object, "ignore_eos").value_or(false);
  refuse_unsupported(object);
}

const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool"};

// One message's content as a string: a string as is, an array of
// {"type": "text", "text": ...} parts joined with newlines, null as "".
std::string message_content(const json& content, const std::string& where) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    bad_request("messages", where + ".content must be a string or an array of text parts, got " +
                                kind_of(content));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string at = where + ".content[" + std::to_string(i) + "]";
    if (!part.is_object()) {
      bad_request("messages", at + " must be an object {\"type\": \"text\", \"text\": ...}, got " +
                                  kind_of(part));
    }
    const json* type = field(part, "type");
    if (type == nullptr || !type->is_string() || type->get<std::string>() != "text") {
      bad_request("messages", at + ".type must be \"text\": this server takes text only" +
                                  (type != nullptr && type->is_string()
                                       ? " (got \"" + type->get<std::string>() + "\")"
                                       : std::string()));
    }
    const json* part_text = field(part, "text");
    if (part_text == nullptr || !part_text->is_string()) {
      bad_request("messages", at + ".text must be a string");
    }
    if (i > 0) text += "\n";
    text += part_text->get<std::string>();
  }
  return text;
}

}  // namespace

CompletionParams parse_completion_body(std::string_view body) {
  const json object = parse_object(body);
  CompletionParams params;
  parse_prompt(object, params);
  parse_max_tokens(object, "max_tokens", params);
  parse_generation(object, params);
  return params;
}

nlohmann::ordered_json parse_chat_messages(std::string_view body) {
  const json object = parse_object(body);
  const json* messages = field(object, "messages");
  if (messages == nullptr) {
    bad_request("messages",
                "messages is missing: give the conversation as an array of {\"role\", "
                "\"content\"} objects");
  }
  if (!messages->is_array()) {
    bad_request("messages", "messages must be an array of {\"role\", \"content\"} objects, got " +
                                kind_of(*messages));
  }
  if (messages->empty()) {
    bad_request("messages", "messages is an empty array: give at least one message");
  }
  // Key order as sent, so a template's tojson matches Hugging Face's.
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(body)["messages"];
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& message = (*messages)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!message.is_object()) {
      bad_request("messages",
                  where + " must be an object {\"role\", \"content\"}, got " + kind_of(message));
    }
    const json* role = field(message, "role");
    if (role == nullptr || !role->is_string()) {
      bad_request("messages", where +
                                  ".role is missing or not a string: use one of system, "
                                  "developer, user, assistant, tool");
    }
    const std::string name = role->get<std::string>();
    if (std::find(std::begin(kRoles), std::end(kRoles), name) == std::end(kRoles)) {
      bad_request("messages", where + ".role is \"" + name +
                                  "\": use one of system, developer, user, assistant, tool");
    }
    const json* content = field(message, "content");
    if (content == nullptr && name != "assistant") {
      bad_request("messages", where + ".content is missing: give the message's text");
    }
    nlohmann::ordered_json copy = ordered[i];
    copy["content"] = message_content(content == nullptr ? json() : *content, where);
    out.push_back(std::move(copy));
  }
  return out;
}

nlohmann::ordered_json parse_chat_template_variables(std::string_view body) {
  const json object = parse_object(body);
  if (field(object, "tools") == nullptr && field(object, "chat_template_kwargs") == nullptr) {
    return nlohmann::ordered_json::object();
  }
  // Key order as sent: a template's tojson of the tools shows it.
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(body);
  const auto value_of = [&](const char* name) {
    const auto it = ordered.find(name);
    return it == ordered.end() ? nlohmann::ordered_json() : *it;
  };
  const nlohmann::ordered_json tools = value_of("tools");
  const nlohmann::ordered_json kwargs = value_of("chat_template_kwargs");
  try {
    check_chat_tools(tools);
  } catch (const Error& e) {
    bad_request("tools", e.what());
  }
  try {
    check_chat_template_kwargs(kwargs);
  } catch (const Error& e) {
    bad_request("chat_template_kwargs", e.what());
  }
  return chat_template_variables(tools, kwargs);
}

ChatParams parse_chat_body(std::string_view body) {
  ChatParams chat;
  chat.messages = parse_chat_messages(body);
  chat.template_variables = parse_chat_template_variables(body);
  const json object = parse_object(body);
  parse_max_tokens(object, "max_tokens", chat.params);
  parse_max_tokens(object, "max_completion_tokens", chat.params);
  parse_generation(object, chat.params);
  chat.params.max_tokens_fill_context = true;
  return chat;
}

CompletionRequest make_completion_request(const CompletionParams& params,
                                          std::vector<int32_t> prompt_tokens, int32_t n_ctx,
                                          int32_t n_vocab, uint64_t seed) {
  const int64_t n_prompt = static_cast<int64_t>(prompt_tokens.size());
  if (n_prompt == 0) {
    bad_request("prompt", "the prompt is empty (no tokens): give some text or token ids");
  }
  for (size_t i = 0; i < prompt_tokens.size(); ++i) {
    if (prompt_tokens[i] >= n_vocab) {
      bad_request("prompt", "prompt[" + std::to_string(i) + "] is token id " +
                                std::to_string(prompt_tokens[i]) + ", outside the vocabulary of " +
                                std::to_string(n_vocab) + " ids (0.." +
                                std::to_string(n_vocab - 1) + ")");
    }
  }
  if (n_prompt >= n_ctx) {
    bad_request("prompt", "the prompt has " + std::to_string(n_prompt) +
                              " tokens, but the context holds " + std::to_string(n_ctx) +
                              " tokens per request: shorten the prompt to at most " +
                              std::to_string(n_ctx - 1) + " tokens (one is left to generate)");
  }
  const int64_t room = n_ctx - n_prompt;
  int64_t max_tokens = params.max_tokens_fill_context ? room : std::min(kDefaultMaxTokens, room);
  if (params.max_tokens) {
    if (*params.max_tokens > room) {
      bad_request("max_tokens", "max_tokens is " + std::to_string(*params.max_tokens) +
                                    ", but the prompt has " + std::to_string(n_prompt) +
                                    " tokens and the context holds " + std::to_string(n_ctx) +
                                    ": at most " + std::to_string(room) +
                                    " tokens can be generated");
    }
    max_tokens = *params.max_tokens;
  }
  CompletionRequest request;
  request.prompt = std::move(prompt_tokens);
  request.sampling = params.sampling;
  if (!params.seed_given) request.sampling.seed = seed;
  request.max_tokens = static_cast<int32_t>(max_tokens);
  request.ignore_eos = params.ignore_eos;
  return request;
}

TokenizeParams parse_tokenize_body(std::string_view body) {
  const json object = parse_object(body);
  const json* content = field(object, "content");
  if (content == nullptr) bad_request("content", "content is missing: give the text to tokenize");
  if (!content->is_string()) {
    bad_request("content", "content must be a string, got " + kind_of(*content));
  }
  TokenizeParams params;
  params.content = content->get<std::string>();
  params.add_special = get_bool(object, "add_special").value_or(false);
  return params;
}

std::vector<int32_t> parse_detokenize_body(std::string_view body, int32_t n_vocab) {
  const json object = parse_object(body);
  const json* tokens = field(object, "tokens");
  if (tokens == nullptr) bad_request("tokens", "tokens is missing: give an array of token ids");
  if (!tokens->is_array()) {
    bad_request("tokens", "tokens must be an array of token ids, got " + kind_of(*tokens));
  }
  std::vector<int32_t> ids = token_ids(*tokens, "tokens");
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= n_vocab) {
      bad_request("tokens", "tokens[" + std::to_string(i) + "] is " + std::to_string(ids[i]) +
                                ", outside the vocabulary of " + std::to_string(n_vocab) + " ids");
    }
  }
  return ids;
}

}  // namespace specula

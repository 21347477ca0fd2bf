// parse_chat_body / parse_chat_messages and the chat response shapes,
// without a server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "serve/api_error.h"
#include "serve/api_request.h"
#include "serve/api_response.h"

namespace specula {
namespace {

using nlohmann::json;

// The param and message of the ApiError `body` raises.
std::pair<std::string, std::string> error_of(const std::string& body) {
  try {
    parse_chat_body(body);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    return {e.param, e.what()};
  }
  ADD_FAILURE() << "no error for " << body;
  return {};
}

TEST(ApiChat, ParsesMessagesAndGenerationFields) {
  const ChatParams chat = parse_chat_body(
      R"({"model": "m", "messages": [{"role": "system", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}],
          "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9, "top_k": 4, "min_p": 0.1,
          "seed": 7, "stop": ["x"], "stream": true, "stream_options": {"include_usage": true}})");
  ASSERT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.messages[0]["role"], "system");
  EXPECT_EQ(chat.messages[0]["content"], "be brief");
  EXPECT_EQ(chat.messages[1]["content"], "one\ntwo");
  EXPECT_EQ(chat.params.max_tokens, 9);
  EXPECT_FLOAT_EQ(chat.params.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(chat.params.sampling.top_p, 0.9f);
  EXPECT_EQ(chat.params.sampling.top_k, 4);
  EXPECT_FLOAT_EQ(chat.params.sampling.min_p, 0.1f);
  EXPECT_EQ(chat.params.sampling.seed, 7u);
  EXPECT_TRUE(chat.params.seed_given);
  EXPECT_EQ(chat.params.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(chat.params.stream);
  EXPECT_TRUE(chat.params.include_usage);
}

TEST(ApiChat, KeepsTheKeyOrderOfEachMessage) {
  const ChatParams chat =
      parse_chat_body(R"({"messages": [{"role": "user", "name": "bob", "content": "hi"}]})");
  std::vector<std::string> keys;
  for (const auto& [key, value] : chat.messages[0].items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"role", "name", "content"}));
}

TEST(ApiChat, AbsentMaxTokensFillsTheContext) {
  const ChatParams chat = parse_chat_body(R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_FALSE(chat.params.max_tokens);
  const CompletionRequest request = make_completion_request(chat.params, {1, 2, 3}, 100, 10, 0);
  EXPECT_EQ(request.max_tokens, 97);
}

TEST(ApiChat, BadBodiesName400TheField) {
  EXPECT_EQ(error_of(R"({})").first, "messages");
  EXPECT_NE(error_of(R"({})").second.find("missing"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": []})").second.find("empty"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": "hi"})").second.find("array"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "wizard", "content": "x"}]})").second.find("wizard"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"content": "x"}]})").second.find("role"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": 5}]})")
                .second.find("messages[0].content must be a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})")
                .second.find("text only"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user"}]})").second.find("content is missing"),
            std::string::npos);
  EXPECT_EQ(
      error_of(R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})")
          .first,
      "max_completion_tokens");
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "x"}], "top_p": 2})").first,
            "top_p");
}

// An overflowing number made nlohmann throw out_of_range past the 400 (found
// by fuzz/fuzz_serve.cpp).
TEST(ApiChat, OverflowingNumberIsA400) {
  for (const char* body : {R"({"prompt": "a", "temperature": 4444e4444})",
                           R"({"messages": [{"role": "user", "content": "a"}], "top_p": 1e999})"}) {
    try {
      if (std::string(body).find("prompt") != std::string::npos) {
        parse_completion_body(body);
      } else {
        parse_chat_body(body);
      }
      ADD_FAILURE() << "no error for " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    }
  }
}

TEST(ApiChat, ResponseShapes) {
  const CompletionIdentity identity{"chatcmpl-1", 5, "m", true};
  const json full = completion_json(identity, "hello", FinishReason::kStop, {3, 2}, {});
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "hello"}}));
  EXPECT_EQ(full["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(full["choices"][0].contains("text"));
  EXPECT_EQ(full["usage"]["total_tokens"], 5);
  EXPECT_TRUE(full.contains("speculative"));

  const json role = role_chunk_json(identity);
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  const json chunk = chunk_json(identity, "he");
  EXPECT_EQ(chunk["choices"][0]["delta"], (json{{"content", "he"}}));
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  const json last = final_chunk_json(identity, FinishReason::kLength, {});
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(usage_chunk_json(identity, {3, 2})["object"], "chat.completion.chunk");
}

// tools and chat_template_kwargs become template variables, as
// apply_chat_template(messages, tools=..., **chat_template_kwargs) gets them.
TEST(ApiChat, ToolsAndTemplateKwargsBecomeTemplateVariables) {
  const ChatParams chat = parse_chat_body(
      R"({"messages": [{"role": "user", "content": "hi"}],
          "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
          "chat_template_kwargs": {"enable_thinking": false, "date_string": "1 Jan 2025"}})");
  const nlohmann::ordered_json& v = chat.template_variables;
  std::vector<std::string> keys;
  for (const auto& [key, value] : v.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"tools", "enable_thinking", "date_string"}));
  ASSERT_EQ(v["tools"].size(), 1u);
  EXPECT_EQ(v["tools"][0]["function"]["name"], "f");
  // The key order as sent, which a template's tojson shows.
  EXPECT_EQ(v["tools"][0].dump(),
            R"({"type":"function","function":{"name":"f","parameters":{"type":"object"}}})");
  EXPECT_EQ(v["enable_thinking"], false);
  EXPECT_EQ(v["date_string"], "1 Jan 2025");
  // Neither (or null): no variables.
  EXPECT_EQ(
      parse_chat_body(R"({"messages": [{"role": "user", "content": "hi"}]})").template_variables,
      nlohmann::ordered_json::object());
  EXPECT_EQ(parse_chat_template_variables(R"({"tools": null, "chat_template_kwargs": null})"),
            nlohmann::ordered_json::object());
  // A kwarg "tools" replaces the list, as **kwargs would.
  EXPECT_EQ(
      parse_chat_template_variables(R"({"tools": [{}], "chat_template_kwargs": {"tools": []}})")
          .dump(),
      R"({"tools":[]})");
}

TEST(ApiChat, BadToolsOrTemplateKwargsName400TheField) {
  const std::string m = R"("messages": [{"role": "user", "content": "hi"}])";
  const auto check = [&](const std::string& extra, const std::string& param,
                         const std::string& says) {
    const auto [got_param, message] = error_of("{" + m + ", " + extra + "}");
    EXPECT_EQ(got_param, param) << extra;
    EXPECT_NE(message.find(says), std::string::npos) << extra << ": " << message;
  };
  check(R"("tools": "get_weather")", "tools", "tools must be an array of tool objects");
  check(R"("tools": {"type": "function"})", "tools", "not object");
  check(R"("tools": [{"type": "function"}, 3])", "tools", "tools[1] must be a tool object");
  check(R"("chat_template_kwargs": [1])", "chat_template_kwargs",
        "chat_template_kwargs must be an object");
  check(R"("chat_template_kwargs": "x")", "chat_template_kwargs", "not string");
  check(R"("chat_template_kwargs": {"add_generation_prompt": false})", "chat_template_kwargs",
        "cannot set 'add_generation_prompt'");
  check(R"("chat_template_kwargs": {"messages": []})", "chat_template_kwargs",
        "cannot set 'messages'");
  check(R"("chat_template_kwargs": {"tools": 1})", "chat_template_kwargs",
        "tools must be an array");
}

}  // namespace
}  // namespace specula

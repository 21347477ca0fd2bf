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

}  // namespace
}  // namespace specula

// The completions body, field by field: every bad value is a 400 naming
// the field; unknown fields are ignored.
#include "serve/api_request.h"

#include <gtest/gtest.h>

#include "serve/api_error.h"

namespace specula {
namespace {

// The ApiError a body raises (status 0 when it parses).
ApiError error_of(const std::string& body) {
  try {
    (void)parse_completion_body(body);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "parsed");
}

struct BadBody {
  const char* body;
  const char* param;  // "" for errors about the whole body
  const char* says;   // a part of the message
};

TEST(ApiRequest, BadBodiesAre400NamingTheField) {
  const BadBody cases[] = {
      {"{\"prompt\": \"a\",", "", "not valid JSON"},
      {"[1, 2]", "", "must be a JSON object"},
      {"\"text\"", "", "must be a JSON object"},
      {"{}", "prompt", "prompt is missing"},
      {"{\"prompt\": null}", "prompt", "prompt is missing"},
      {"{\"prompt\": 5}", "prompt", "string or an array"},
      {"{\"prompt\": []}", "prompt", "empty array"},
      {"{\"prompt\": [1, \"a\"]}", "prompt", "several prompts"},
      {"{\"prompt\": [\"a\", \"b\"]}", "prompt", "several prompts"},
      {"{\"prompt\": [1, -2]}", "prompt", "prompt[1]"},
      {"{\"prompt\": [1, 2.5]}", "prompt", "prompt[1]"},
      {"{\"prompt\": \"a\", \"max_tokens\": 0}", "max_tokens", "at least 1"},
      {"{\"prompt\": \"a\", \"max_tokens\": -3}", "max_tokens", "-3"},
      {"{\"prompt\": \"a\", \"max_tokens\": \"10\"}", "max_tokens", "a string"},
      {"{\"prompt\": \"a\", \"max_tokens\": 1.5}", "max_tokens", "integer"},
      {"{\"prompt\": \"a\", \"temperature\": -0.1}", "temperature", "-0.1"},
      {"{\"prompt\": \"a\", \"temperature\": \"hot\"}", "temperature", "a string"},
      {"{\"prompt\": \"a\", \"top_p\": 1.5}", "top_p", "(0, 1]"},
      {"{\"prompt\": \"a\", \"top_p\": 0}", "top_p", "(0, 1]"},
      {"{\"prompt\": \"a\", \"top_k\": -1}", "top_k", "-1"},
      {"{\"prompt\": \"a\", \"min_p\": 2}", "min_p", "[0, 1]"},
      {"{\"prompt\": \"a\", \"seed\": \"x\"}", "seed", "integer"},
      {"{\"prompt\": \"a\", \"stop\": 3}", "stop", "string"},
      {"{\"prompt\": \"a\", \"stop\": [\"\"]}", "stop", "empty"},
      {"{\"prompt\": \"a\", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "at most 4"},
      {"{\"prompt\": \"a\", \"stream\": \"yes\"}", "stream", "true or false"},
      {"{\"prompt\": \"a\", \"stream_options\": 1}", "stream_options", "object"},
      {"{\"prompt\": \"a\", \"stream_options\": {\"include_usage\": 1}}",
       "stream_options.include_usage", "true or false"},
      {"{\"prompt\": \"a\", \"n\": 2}", "n", "one completion"},
      {"{\"prompt\": \"a\", \"echo\": true}", "echo", "not supported"},
      {"{\"prompt\": \"a\", \"logprobs\": 3}", "logprobs", "not supported"},
  };
  for (const BadBody& c : cases) {
    const ApiError e = error_of(c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.body << ": " << e.what();
  }
}

TEST(ApiRequest, ParsesEveryField) {
  const CompletionParams p = parse_completion_body(
      R"({"model": "x", "prompt": "Hello", "max_tokens": 7, "temperature": 0, "top_p": 0.5,
          "top_k": 3, "min_p": 0.1, "seed": -1, "stop": ["\n", "END"], "stream": true,
          "stream_options": {"include_usage": true}, "ignore_eos": true,
          "frequency_penalty": 0, "user": "someone", "unknown": {"nested": [1]}})");
  EXPECT_TRUE(p.prompt_is_text);
  EXPECT_EQ(p.prompt_text, "Hello");
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_EQ(p.sampling.temperature, 0.0f);
  EXPECT_EQ(p.sampling.top_p, 0.5f);
  EXPECT_EQ(p.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(p.sampling.min_p, 0.1f);
  EXPECT_TRUE(p.seed_given);
  EXPECT_EQ(p.sampling.seed, ~uint64_t{0});
  EXPECT_EQ(p.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_TRUE(p.ignore_eos);
}

TEST(ApiRequest, DefaultsAreOpenAIs) {
  const CompletionParams p = parse_completion_body(R"({"prompt": [5, 6, 7.0]})");
  EXPECT_FALSE(p.prompt_is_text);
  EXPECT_EQ(p.prompt_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_FALSE(p.max_tokens.has_value());
  EXPECT_EQ(p.sampling.temperature, 1.0f);
  EXPECT_EQ(p.sampling.top_p, 1.0f);
  EXPECT_EQ(p.sampling.top_k, 0);
  EXPECT_EQ(p.sampling.min_p, 0.0f);
  EXPECT_FALSE(p.seed_given);
  EXPECT_FALSE(p.stream);
  // A one-element batch is one prompt; a single stop string is a list of one.
  EXPECT_EQ(parse_completion_body(R"({"prompt": ["hi"], "stop": "x"})").prompt_text, "hi");
  EXPECT_EQ(parse_completion_body(R"({"prompt": [[1, 2]]})").prompt_ids,
            (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(parse_completion_body(R"({"prompt": "a", "stop": "x"})").stop,
            std::vector<std::string>{"x"});
}

ApiError request_error(const CompletionParams& p, size_t prompt_tokens, int32_t n_ctx) {
  try {
    (void)make_completion_request(p, std::vector<int32_t>(prompt_tokens, 1), n_ctx, 100, 9);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "accepted");
}

TEST(ApiRequest, LengthsAgainstTheContext) {
  CompletionParams p = parse_completion_body(R"({"prompt": "a", "max_tokens": 10})");
  // The prompt must leave a token to generate: both lengths in the message.
  const ApiError too_long = request_error(p, 64, 64);
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(too_long.param, "prompt");
  EXPECT_NE(std::string(too_long.what()).find("64 tokens"), std::string::npos);
  EXPECT_NE(std::string(too_long.what()).find("holds 64"), std::string::npos);
  const ApiError past = request_error(p, 60, 64);
  EXPECT_EQ(past.param, "max_tokens");
  EXPECT_NE(std::string(past.what()).find("at most 4"), std::string::npos) << past.what();
  EXPECT_EQ(request_error(p, 54, 64).status, 0);  // 54 + 10 = 64 fits exactly
  EXPECT_EQ(request_error(p, 0, 64).param, "prompt");

  // Without max_tokens: 16, or what the context leaves.
  p.max_tokens.reset();
  EXPECT_EQ(make_completion_request(p, std::vector<int32_t>(10, 1), 64, 100, 9).max_tokens, 16);
  EXPECT_EQ(make_completion_request(p, std::vector<int32_t>(60, 1), 64, 100, 9).max_tokens, 4);
  // The server's seed when the body has none; the body's otherwise.
  EXPECT_EQ(make_completion_request(p, {1}, 64, 100, 9).sampling.seed, 9u);
  p.seed_given = true;
  p.sampling.seed = 3;
  EXPECT_EQ(make_completion_request(p, {1}, 64, 100, 9).sampling.seed, 3u);
}

TEST(ApiRequest, TokenIdsOutsideTheVocabulary) {
  const CompletionParams p = parse_completion_body(R"({"prompt": [1, 100]})");
  try {
    (void)make_completion_request(p, p.prompt_ids, 64, 100, 0);
    FAIL() << "id 100 accepted with 100 ids";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "prompt");
    EXPECT_NE(std::string(e.what()).find("prompt[1]"), std::string::npos);
  }
}

TEST(ApiRequest, TokenizeAndDetokenizeBodies) {
  EXPECT_EQ(parse_tokenize_body(R"({"content": "hi"})").content, "hi");
  EXPECT_FALSE(parse_tokenize_body(R"({"content": "hi"})").add_special);
  EXPECT_TRUE(parse_tokenize_body(R"({"content": "", "add_special": true})").add_special);
  EXPECT_EQ(parse_detokenize_body(R"({"tokens": [1, 2]})", 10), (std::vector<int32_t>{1, 2}));
  auto param_of = [](auto&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e.param;
    }
    return std::string("none");
  };
  EXPECT_EQ(param_of([] { parse_tokenize_body("{}"); }), "content");
  EXPECT_EQ(param_of([] { parse_tokenize_body(R"({"content": 1})"); }), "content");
  EXPECT_EQ(param_of([] { parse_detokenize_body(R"({"tokens": "1"})", 10); }), "tokens");
  EXPECT_EQ(param_of([] { parse_detokenize_body(R"({"tokens": [10]})", 10); }), "tokens");
}

}  // namespace
}  // namespace specula

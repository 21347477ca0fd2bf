// POST /v1/chat/completions and /apply-template over real sockets against
// the fake scheduler, which answers a request with its prompt repeated: the
// completion shows the prompt's tokens.
#include <httplib.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "serve/http_server.h"
#include "serve/http_test_support.h"

namespace specula {
namespace {

using nlohmann::json;
using testing::FakeBackend;
using testing::RawConnection;
using testing::sse_data;

constexpr int32_t kImStart = 257;
constexpr int32_t kImEnd = 258;

// The byte tokenizer plus ChatML's two special tokens.
class ChatByteTokenizer final : public Tokenizer {
 public:
  int32_t n_vocab() const override { return 259; }
  int32_t bos() const override { return -1; }
  int32_t eos() const override { return 256; }
  bool add_bos() const override { return false; }
  bool is_end_of_generation(int32_t id) const override { return id == 256; }
  bool is_special(int32_t id) const override { return id >= 256; }
  std::vector<int32_t> encode(std::string_view text, bool, bool parse_special) const override {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < text.size();) {
      if (parse_special && text.substr(i).starts_with("<|im_start|>")) {
        ids.push_back(kImStart);
        i += 12;
      } else if (parse_special && text.substr(i).starts_with("<|im_end|>")) {
        ids.push_back(kImEnd);
        i += 10;
      } else {
        ids.push_back(static_cast<unsigned char>(text[i++]));
      }
    }
    return ids;
  }
  std::string token_to_piece(int32_t id) const override {
    if (id == kImStart) return "<|im_start|>";
    if (id == kImEnd) return "<|im_end|>";
    return id < 256 ? std::string(1, static_cast<char>(id)) : std::string();
  }
};

struct Served {
  explicit Served(bool with_template = true,
                  std::shared_ptr<const ChatTemplate> chat_template = nullptr)
      : backend(4, 8, 0.001) {
    signal(SIGPIPE, SIG_IGN);
    HttpServerOptions options;
    options.port = 0;
    options.keep_alive_seconds = 0.2;
    server = std::make_unique<HttpServer>(options);
    port = server->listen();
    ServedModel model{"fake-model", 512, 259, &tokenizer, &backend};
    if (chat_template) {
      model.chat_template = std::move(chat_template);
    } else if (with_template) {
      model.chat_template =
          std::make_shared<const ChatTemplate>(ChatTemplate::from_name_or_file("chatml"));
    }
    server->set_ready(model);
  }
  ~Served() {
    server->detach_backend();
    server->stop();
  }
  json post(const std::string& path, const std::string& body, int* status) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(10, 0);
    auto result = c.Post(path, body, "application/json");
    if (!result) {
      *status = -1;
      return {};
    }
    *status = result->status;
    return json::parse(result->body, nullptr, false);
  }
  ChatByteTokenizer tokenizer;
  FakeBackend backend;
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

const std::string kPrompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";

TEST(HttpChat, CompletionHasOpenAisShape) {
  Served s;
  int status = 0;
  const json body =
      s.post("/v1/chat/completions",
             R"({"model": "x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12})",
             &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_TRUE(body["id"].get<std::string>().starts_with("chatcmpl-"));
  EXPECT_EQ(body["model"], "fake-model");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  // The fake repeats the prompt's tokens: its first 12.
  EXPECT_EQ(body["choices"][0]["message"]["content"],
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>a");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  // 1 + "user\n" + "hi" + 1 + "\n" + 1 + "assistant\n"
  EXPECT_EQ(body["usage"]["prompt_tokens"], 21);
  EXPECT_EQ(body["usage"]["completion_tokens"], 12);
  EXPECT_TRUE(body.contains("speculative"));
}

TEST(HttpChat, UserTypedControlTokenStaysText) {
  Served s;
  int status = 0;
  const json body = s.post("/v1/chat/completions",
                           R"({"messages": [{"role": "user", "content": "<|im_end|>"}],
                               "max_tokens": 40, "return_tokens": true})",
                           &status);
  ASSERT_EQ(status, 200) << body.dump();
  // The prompt: 257 "user\n" [10 bytes of the user's text] 258 "\n" 257 "assistant\n".
  EXPECT_EQ(body["usage"]["prompt_tokens"], 1 + 5 + 10 + 1 + 1 + 1 + 10);
  const std::vector<int32_t> ids = body["choices"][0]["tokens"].get<std::vector<int32_t>>();
  ASSERT_GE(ids.size(), 17u);
  EXPECT_EQ(std::count(ids.begin(), ids.begin() + 29, kImEnd), 1);
  EXPECT_EQ(ids[6], '<');      // the user's text, as bytes
  EXPECT_EQ(ids[16], kImEnd);  // the template's own end of turn
}

TEST(HttpChat, StreamingSendsRoleThenDeltasThenDone) {
  Served s;
  RawConnection c(s.port);
  ASSERT_TRUE(c.connected());
  c.post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}],
          "max_tokens": 6, "stream": true, "stream_options": {"include_usage": true}})");
  c.read_all();
  const std::vector<std::string> data = sse_data(c.received());
  ASSERT_GE(data.size(), 5u) << c.received();
  EXPECT_EQ(data.back(), "[DONE]");
  const json first = json::parse(data[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (size_t i = 1; i + 3 < data.size(); ++i) {
    const json chunk = json::parse(data[i]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    EXPECT_FALSE(chunk["choices"][0]["delta"].contains("role"));
    EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
    text += chunk["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "<|im_start|>user\n");  // 6 tokens of the repeated prompt
  const json last = json::parse(data[data.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  const json usage = json::parse(data[data.size() - 2]);
  EXPECT_EQ(usage["usage"]["completion_tokens"], 6);
}

TEST(HttpChat, BadMessagesAre400NamingTheField) {
  Served s;
  int status = 0;
  json body = s.post("/v1/chat/completions", R"({"messages": []})", &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["error"]["param"], "messages");
  body =
      s.post("/v1/chat/completions", R"({"messages": [{"role": "bot", "content": "x"}]})", &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(body["error"]["message"].get<std::string>().find("bot"), std::string::npos);
}

TEST(HttpChat, GetOnTheChatRoutesIs405) {
  Served s;
  httplib::Client c("127.0.0.1", s.port);
  for (const char* path : {"/v1/chat/completions", "/apply-template"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 405) << path;
  }
}

TEST(HttpChat, PromptOverTheContextIs400NamingMessages) {
  Served s;
  int status = 0;
  const json body = s.post(
      "/v1/chat/completions",
      json{{"messages", {{{"role", "user"}, {"content", std::string(600, 'a')}}}}}.dump(), &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["error"]["param"], "messages");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("the context holds 512"),
            std::string::npos)
      << body.dump();
}

TEST(HttpChat, NoTemplateIsAClear400) {
  Served s(/*with_template=*/false);
  int status = 0;
  for (const char* path : {"/v1/chat/completions", "/apply-template"}) {
    const json body = s.post(path, R"({"messages": [{"role": "user", "content": "hi"}]})", &status);
    EXPECT_EQ(status, 400) << path;
    EXPECT_NE(body["error"]["message"].get<std::string>().find("--chat-template"),
              std::string::npos)
        << body.dump();
  }
}

TEST(HttpChat, ApplyTemplateReturnsTheRenderedPrompt) {
  Served s;
  int status = 0;
  const json body = s.post("/apply-template",
                           R"({"messages": [{"role": "system", "content": "s"},
                               {"role": "user", "content": "hi"}]})",
                           &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["prompt"], "<|im_start|>system\ns<|im_end|>\n" + kPrompt);
}

TEST(HttpChat, RaisingTemplateIs400WithItsMessage) {
  signal(SIGPIPE, SIG_IGN);
  FakeBackend backend(1, 1, 0.001);
  ChatByteTokenizer tokenizer;
  HttpServerOptions options;
  options.port = 0;
  HttpServer server(options);
  const int port = server.listen();
  ServedModel model{"m", 512, 259, &tokenizer, &backend};
  model.chat_template = std::make_shared<const ChatTemplate>(
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with a "
      "user turn') }}{% endif %}{{ messages[0]['content'] }}",
      "test template");
  server.set_ready(model);
  httplib::Client c("127.0.0.1", port);
  for (const char* path : {"/v1/chat/completions", "/apply-template"}) {
    auto res = c.Post(path, R"({"messages": [{"role": "assistant", "content": "x"}]})",
                      "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << path;
    EXPECT_NE(res->body.find("Conversation must start with a user turn"), std::string::npos)
        << res->body;
  }
  auto res = c.Post("/apply-template", R"({"messages": [{"role": "user", "content": "ok"}]})",
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["prompt"], "ok");
  server.detach_backend();
  server.stop();
}

// tests/data/chat_templates: a template, and a conversation as a request body
// (its tools as "tools", its variables as "chat_template_kwargs").
const std::string kTemplates = std::string(SPECULA_TEST_DATA_DIR) + "/chat_templates";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::shared_ptr<const ChatTemplate> data_template(const std::string& name) {
  return std::make_shared<const ChatTemplate>(
      read_text(kTemplates + "/templates/" + name + ".jinja"), name);
}

std::string conversation_body(const std::string& name) {
  for (const auto& c :
       nlohmann::ordered_json::parse(read_text(kTemplates + "/conversations.json"))) {
    if (c["name"] != name) continue;
    nlohmann::ordered_json body = {{"messages", c["messages"]}};
    if (c.contains("tools")) body["tools"] = c["tools"];
    if (c.contains("variables")) body["chat_template_kwargs"] = c["variables"];
    return body.dump();
  }
  ADD_FAILURE() << "no conversation " << name;
  return "";
}

std::string jinja2_output(const std::string& key) {
  const auto expected = json::parse(read_text(kTemplates + "/expected.json"));
  EXPECT_TRUE(expected.contains(key) && expected[key].contains("output")) << key;
  return expected.contains(key) ? expected[key].value("output", "") : "";
}

// /apply-template with tools (and chat_template_kwargs) gives jinja2's bytes:
// Qwen2.5 with a tool call and the tool's reply, Llama 3.1's template with
// the tools in the system turn and a date from the kwargs.
TEST(HttpChat, ApplyTemplatePassesToolsAndKwargsAsJinja2Does) {
  struct Case {
    const char* template_name;
    const char* conversation;
  };
  for (const Case& c :
       {Case{"qwen2.5", "tool-call-and-reply"}, Case{"qwen2.5", "with-tools"},
        Case{"llama3.3", "template-variables"}, Case{"llama3.3", "tool-call-and-reply"}}) {
    SCOPED_TRACE(std::string(c.template_name) + "/" + c.conversation);
    Served s(true, data_template(c.template_name));
    int status = 0;
    const json body = s.post("/apply-template", conversation_body(c.conversation), &status);
    ASSERT_EQ(status, 200) << body.dump();
    // The server's bos/eos are the (byte) vocabulary's: none and "".
    std::string want =
        jinja2_output(std::string(c.template_name) + "/" + c.conversation + "/agp=1");
    if (std::string(c.template_name) == "llama3.3")
      want.erase(0, std::string("<|begin_of_text|>").size());
    EXPECT_EQ(body["prompt"], want);
  }
}

// /v1/chat/completions renders with them too (the fake repeats the prompt).
TEST(HttpChat, ChatCompletionsPassesToolsAndKwargs) {
  Served s(true, std::make_shared<const ChatTemplate>(
                     "{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}"
                     "|{{ enable_thinking }}|{{ messages[0].content }}",
                     "test template"));
  int status = 0;
  const json body = s.post("/v1/chat/completions",
                           R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 12,
                               "tools": [{"type": "function", "function": {"name": "a"}},
                                         {"type": "function", "function": {"name": "b"}}],
                               "chat_template_kwargs": {"enable_thinking": false}})",
                           &status);
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["choices"][0]["message"]["content"], "a,b|False|hi");
  for (const char* path : {"/v1/chat/completions", "/apply-template"}) {
    const json bad =
        s.post(path, R"({"messages": [{"role": "user", "content": "hi"}], "tools": "a"})", &status);
    EXPECT_EQ(status, 400) << path;
    EXPECT_EQ(bad["error"]["param"], "tools") << path;
    const json bad_kwargs = s.post(
        path, R"({"messages": [{"role": "user", "content": "hi"}], "chat_template_kwargs": [1]})",
        &status);
    EXPECT_EQ(status, 400) << path;
    EXPECT_EQ(bad_kwargs["error"]["param"], "chat_template_kwargs") << path;
  }
}

}  // namespace
}  // namespace specula

// `specula serve` as a process with the shipped model: --chat-template
// (a bad one fails before listening; chatml renders the conversation),
// the 400 of a model with no template, and a greedy chat completion equal
// to the completion of its rendered prompt's tokens.
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "serve/serve_process.h"

namespace specula {
namespace {

using nlohmann::json;
using testing::ServeProcess;

const std::string kTarget = std::string(SPECULA_SOURCE_DIR) + "/models/specula-py-target-q8_0.gguf";

// `specula serve -m kTarget ARGS`, one slot of 256 tokens.
std::vector<std::string> serve_args(std::vector<std::string> args) {
  args.insert(args.begin(), {"-m", kTarget, "-t", "1", "--parallel", "1", "--ctx", "256"});
  return args;
}

const json kMessages = json::array({{{"role", "system"}, {"content", "You write Python."}},
                                    {{"role", "user"}, {"content", "def main():"}}});

TEST(ServeChatCli, UnknownChatTemplateFailsBeforeListening) {
  const testing::CliResult result =
      testing::run_cli("serve -m " + kTarget + " --port 0 --chat-template /nonexistent/t.jinja");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("not a built-in"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("ready on"), std::string::npos) << result.output;
}

TEST(ServeChatCli, ModelWithoutTemplateAnswers400) {
  ServeProcess server(serve_args({}));
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  if (server.log().find("has no chat template") == std::string::npos) {
    GTEST_SKIP() << "the shipped model has a chat template";
  }
  int status = 0;
  const json body = server.post("/v1/chat/completions", {{"messages", kMessages}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["error"]["param"], "messages");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("--chat-template"), std::string::npos);
}

TEST(ServeChatCli, ChatIsTheCompletionOfTheRenderedPrompt) {
  ServeProcess server(serve_args({"--chat-template", "chatml"}));
  ASSERT_GT(server.wait_ready(), 0) << server.log();
  int status = 0;
  const json rendered = server.post("/apply-template", {{"messages", kMessages}}, &status);
  ASSERT_EQ(status, 200) << rendered.dump();
  const std::string prompt = rendered["prompt"];
  EXPECT_EQ(prompt,
            "<|im_start|>system\nYou write Python.<|im_end|>\n<|im_start|>user\ndef "
            "main():<|im_end|>\n<|im_start|>assistant\n");

  const json chat =
      server.post("/v1/chat/completions",
                  {{"messages", kMessages}, {"max_tokens", 12}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << chat.dump();
  // With no special tokens typed by the user, the prompt is the rendered
  // text tokenized with special tokens parsed and nothing added.
  const json ids = server.post("/tokenize", {{"content", prompt}}, &status);
  ASSERT_EQ(status, 200);
  const json completion =
      server.post("/v1/completions",
                  {{"prompt", ids["tokens"]}, {"max_tokens", 12}, {"temperature", 0}}, &status);
  ASSERT_EQ(status, 200) << completion.dump();
  EXPECT_EQ(chat["usage"], completion["usage"]);
  EXPECT_EQ(chat["choices"][0]["message"]["content"], completion["choices"][0]["text"]);
  EXPECT_EQ(chat["choices"][0]["finish_reason"], completion["choices"][0]["finish_reason"]);
}

}  // namespace
}  // namespace specula

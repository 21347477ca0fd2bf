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

namespace specula {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string kTarget = std::string(SPECULA_SOURCE_DIR) + "/models/specula-py-target-q8_0.gguf";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `specula serve -m kTarget ARGS` on a free port; killed at the end.
class Server {
 public:
  explicit Server(std::vector<std::string> args) {
    signal(SIGPIPE, SIG_IGN);
    char pattern[] = "/tmp/specula-chat-serve-XXXXXX";
    const int fd = mkstemp(pattern);
    log_ = pattern;
    args.insert(args.begin(), {SPECULA_CLI_PATH, "serve", "--port", "0", "--host", "127.0.0.1",
                               "-m", kTarget, "-t", "1", "--parallel", "1", "--ctx", "256"});
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fd);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    const std::regex ready("ready on http://127\\.0\\.0\\.1:([0-9]+)");
    while (Clock::now() < deadline && port_ == 0) {
      std::smatch m;
      const std::string text = read_file(log_);
      if (std::regex_search(text, m, ready)) port_ = std::stoi(m[1]);
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    unlink(log_.c_str());
  }
  int port() const { return port_; }
  std::string log() const { return read_file(log_); }
  json post(const std::string& path, const json& body, int* status) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    auto res = c.Post(path, body.dump(), "application/json");
    *status = res ? res->status : -1;
    return res ? json::parse(res->body, nullptr, false) : json();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
  int port_ = 0;
};

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
  Server server({});
  ASSERT_GT(server.port(), 0) << server.log();
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
  Server server({"--chat-template", "chatml"});
  ASSERT_GT(server.port(), 0) << server.log();
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

// `specula chat` in a terminal: driven in a detached tmux session
// (send-keys, capture-pane), as a person would. Every wait polls the pane
// against a deadline; the test skips where tmux is missing
// (scripts/install-deps.sh installs it).
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

bool have_tmux() {
  return std::system("tmux -V >/dev/null 2>&1") == 0;
}

std::string read_command(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

// A tmux server of its own (-L), one session "chat" running `command`
// under bash, which prints "EXIT:<status>" after it (tmux 3.3a's own
// #{pane_dead_status} is sometimes never filled in: it can leave the exited
// program unreaped). Bash waits through a Ctrl-C that the program handles.
// The server is killed with the object.
class TmuxChat {
 public:
  TmuxChat(const TempDir& dir, const std::string& name, const std::string& command)
      : tmux_("tmux -L specula-chat-" + std::to_string(::getpid()) + "-" + name + " -f '" +
              dir.file(name + ".conf") + "'") {
    std::ofstream(dir.file(name + ".conf")) << "set -g remain-on-exit on\n"
                                            << "set -g history-limit 20000\n";
    started_ = std::system((tmux_ + " new-session -d -s chat -x 150 -y 40 bash -c '" + command +
                            "; echo EXIT:$?' >/dev/null 2>&1")
                               .c_str()) == 0;
  }
  ~TmuxChat() { std::system((tmux_ + " kill-server >/dev/null 2>&1").c_str()); }

  bool started() const { return started_; }
  void keys(const std::string& keys) {
    std::system((tmux_ + " send-keys -t chat " + keys + " >/dev/null 2>&1").c_str());
  }
  // The pane's text, its history included, lines joined where they wrapped.
  std::string screen() const {
    return read_command(tmux_ + " capture-pane -p -J -S -20000 -t chat 2>/dev/null");
  }
  // Empty while the program runs; its exit status once it exited.
  std::string exit_status() const {
    const std::string s = screen();
    const size_t at = s.rfind("EXIT:");
    if (at == std::string::npos) return "";
    const size_t end = s.find('\n', at);
    return s.substr(at + 5, end == std::string::npos ? std::string::npos : end - at - 5);
  }
  bool wait(const std::function<bool()>& done, double seconds) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  }
  // True when the last non-blank line is the prompt "> " (trailing spaces
  // are not captured).
  bool at_prompt() const {
    std::string s = screen();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    const size_t start = s.rfind('\n') == std::string::npos ? 0 : s.rfind('\n') + 1;
    return s.substr(start) == ">";
  }
  bool shows(const std::string& text) const { return screen().find(text) != std::string::npos; }

 private:
  std::string tmux_;
  bool started_ = false;
};

class ChatTmux : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    // Wide enough that an answer of thousands of tokens takes many seconds
    // even on a fast machine, so that Ctrl-C lands in the middle of it.
    wide_ = dir_->file("wide.gguf");
    const CliResult made =
        run_cli("make-model --out " + wide_ + " --embd 256 --layers 4 --heads 4 --ff 512");
    EXPECT_EQ(made.exit_code, 0) << made.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    if (!have_tmux()) GTEST_SKIP() << "tmux is not installed (scripts/install-deps.sh)";
  }

  static std::string chat(const std::string& model, const std::string& args) {
    return std::string(SPECULA_CLI_PATH) + " chat -m " + model +
           " --chat-template chatml -t 1 --temp 0 " + args;
  }

  static TempDir* dir_;
  static std::string target_, wide_;
};
TempDir* ChatTmux::dir_ = nullptr;
std::string ChatTmux::target_, ChatTmux::wide_;

TEST_F(ChatTmux, CtrlCStopsALongAnswerAndTheChatGoesOn) {
  // Plain decoding, no answer limit to speak of: only Ctrl-C (or a full
  // context, minutes away) ends this answer.
  TmuxChat tmux(*dir_, "long", chat(wide_, "--draft-max 0 -n 1000000 -c 16384"));
  ASSERT_TRUE(tmux.started());
  ASSERT_TRUE(tmux.wait([&] { return tmux.at_prompt(); }, 60)) << tmux.screen();
  EXPECT_TRUE(tmux.shows("/help")) << tmux.screen();  // the banner names the commands

  tmux.keys("'tell me a long story' Enter");
  // Streaming: text appears while the answer is still being decoded.
  ASSERT_TRUE(tmux.wait(
      [&] {
        const std::string s = tmux.screen();
        const size_t at = s.find("> tell me a long story");
        return at != std::string::npos && s.size() > at + 400;
      },
      60))
      << tmux.screen();
  EXPECT_FALSE(tmux.at_prompt());
  EXPECT_EQ(tmux.exit_status(), "");

  tmux.keys("C-c");
  ASSERT_TRUE(
      tmux.wait([&] { return tmux.shows("answer stopped (Ctrl-C)") && tmux.at_prompt(); }, 60))
      << tmux.screen();
  EXPECT_EQ(tmux.exit_status(), "");  // still running

  tmux.keys("/stats Enter");
  ASSERT_TRUE(tmux.wait([&] { return tmux.shows("stop: cancelled") && tmux.at_prompt(); }, 30))
      << tmux.screen();
  EXPECT_TRUE(tmux.shows("specula: prefilled ")) << tmux.screen();

  tmux.keys("/exit Enter");
  ASSERT_TRUE(tmux.wait([&] { return tmux.exit_status() == "0"; }, 30))
      << tmux.exit_status() << "\n"
      << tmux.screen();
}

TEST_F(ChatTmux, AShortAnswerReturnsThePromptAndCtrlCAtThePromptQuits) {
  TmuxChat tmux(*dir_, "short", chat(target_, "-n 6"));
  ASSERT_TRUE(tmux.started());
  ASSERT_TRUE(tmux.wait([&] { return tmux.at_prompt(); }, 60)) << tmux.screen();
  tmux.keys("'hi there' Enter");
  ASSERT_TRUE(tmux.wait(
      [&] {
        const std::string s = tmux.screen();
        return s.find("> hi there\n") != std::string::npos && tmux.at_prompt();
      },
      60))
      << tmux.screen();
  tmux.keys("/bogus Enter");
  ASSERT_TRUE(
      tmux.wait([&] { return tmux.shows("unknown command '/bogus'") && tmux.at_prompt(); }, 30))
      << tmux.screen();
  tmux.keys("C-c");
  ASSERT_TRUE(tmux.wait([&] { return tmux.exit_status() == "0"; }, 30))
      << tmux.exit_status() << "\n"
      << tmux.screen();
}

}  // namespace
}  // namespace specula::testing

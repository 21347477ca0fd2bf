// `specula chat` with bad flags or files: each a specific message naming
// the flag, exit 2 for what the parser rejects and 1 for what the command
// does, never a crash or a chat that starts anyway.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

class ChatErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    draft_ = pair.draft;
    std::ofstream(dir_->file("bad.jinja")) << "{% for m in messages %}{{ m.content }";
    std::ofstream(dir_->file("raises.jinja"))
        << "{% if messages[0].role == 'system' %}{{ raise_exception('no system role here') }}"
           "{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}";
  }
  static void TearDownTestSuite() { delete dir_; }

  static TempDir* dir_;
  static std::string target_, draft_;
};
TempDir* ChatErrors::dir_ = nullptr;
std::string ChatErrors::target_, ChatErrors::draft_;

TEST_F(ChatErrors, BadFlagsAndFilesGetAMessageNamingWhatToFix) {
  struct Case {
    std::string args;
    int exit_code;
    std::string message;
  };
  const std::string m = "-m " + target_ + " ";
  const std::string chatml = m + "--chat-template chatml ";
  const Case cases[] = {
      {"", 2, "--model is required"},
      {m, 1, "--chat-template"},  // the tiny model carries no template
      {chatml + "-n 0", 1, "-n is 0"},
      {chatml + "-n x", 2, "-n"},
      {chatml + "--temp -1", 1, "temperature -1 is invalid"},
      {chatml + "--top-p 2", 1, "top-p 2 is invalid"},
      {chatml + "--seed -1", 2, "--seed"},
      {chatml + "-c -5", 1, "--ctx is -5"},
      {chatml + "-t -2", 1, "-t is -2"},
      {chatml + "--draft-max -1", 1, "--draft-max is -1"},
      {chatml + "--policy bogus", 1, "unknown draft policy 'bogus'"},
      {chatml + "--drafter bogus", 1, "unknown drafter 'bogus'"},
      {chatml + "--drafter model", 1, "--draft"},  // the model drafter needs a draft file
      {chatml + "--suffix-cache-tokens 0", 1, "--suffix-cache-tokens is 0"},
      {chatml + "-d " + dir_->file("absent.gguf"), 1, "absent.gguf"},
      {m + "--chat-template nonesuch", 1, "not a built-in"},
      {m + "--chat-template " + dir_->file("bad.jinja"), 1, "bad.jinja"},
      {m + "--chat-template " + dir_->file("raises.jinja") + " --system hi", 1,
       "no system role here"},
      {chatml + "--bogus", 2, "--bogus"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args);
    const CliResult result = run_cli("chat " + c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << result.output;
    EXPECT_EQ(result.output.find("internal error"), std::string::npos) << result.output;
  }
}

TEST_F(ChatErrors, HelpListsTheFlagsAndTheCommands) {
  const CliResult result = run_cli("chat --help");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  for (const char* text : {"--model", "--draft", "--system", "--chat-template", "--temp",
                           "--max-tokens", "--ctx", "--policy", "/clear", "/stats", "/exit"}) {
    EXPECT_NE(result.output.find(text), std::string::npos) << text << "\n" << result.output;
  }
}

}  // namespace
}  // namespace specula::testing

// `specula chat` over a pipe (standard input not a terminal): one message
// per line, each answer printed and ended with a newline, nothing else on
// standard output. Greedy answers must be exactly those of a one-shot
// generation on the rendered conversation (chat_reference.h), although
// chat drafts speculatively and keeps its KV cache between turns.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "cli/chat_reference.h"
#include "cli/cli_runner.h"

namespace specula::testing {
namespace {

class ChatPipe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const TinyPair pair = make_tiny_pair(*dir_);
    target_ = pair.target;
    draft_ = pair.draft;
  }
  static void TearDownTestSuite() { delete dir_; }

  static std::string chat_args(const std::string& extra = "", int32_t n = kTokens) {
    return "-m " + target_ + " -d " + draft_ + " --chat-template chatml -t 1 --temp 0 -n " +
           std::to_string(n) + " " + extra;
  }

  static constexpr int32_t kTokens = 12;
  static TempDir* dir_;
  static std::string target_, draft_;
};
TempDir* ChatPipe::dir_ = nullptr;
std::string ChatPipe::target_, ChatPipe::draft_;

// The numbers of each "prefilled N tokens" line /stats printed.
std::vector<int> prefilled_counts(const std::string& out) {
  std::vector<int> counts;
  const std::regex line("prefilled ([0-9]+) tokens");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
       ++it) {
    counts.push_back(std::stoi((*it)[1].str()));
  }
  return counts;
}

TEST_F(ChatPipe, ThreeTurnsAnswerExactlyAsOneShotGenerationsOfTheRenderedConversation) {
  const std::string system = "You answer briefly.";
  ChatReference reference(target_, "chatml", system, kTokens);
  std::string expected;
  for (const char* user : {"hello", "how are you?", "tell me <|im_end|> more"}) {
    expected += reference.say(user).text + "\n";
  }
  const ChatRun run = run_chat(*dir_, "hello\nhow are you?\ntell me <|im_end|> more\n",
                               chat_args("--system '" + system + "'"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected) << run.err;
  // The answers are not all the same text: the comparison says something.
  EXPECT_GT(expected.size(), 3u);
}

TEST_F(ChatPipe, PlainDecodingGivesTheSameAnswers) {
  ChatReference reference(target_, "chatml", "", kTokens);
  const std::string one = reference.say("one").text;  // in order: a turn sees the one before
  const std::string two = reference.say("two").text;
  const std::string expected = one + "\n" + two + "\n";
  const ChatRun run = run_chat(*dir_, "one\ntwo\n", chat_args("--draft-max 0"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, expected);
}

TEST_F(ChatPipe, TheSecondTurnPrefillsOnlyItsNewTokens) {
  ChatReference reference(target_, "chatml", "", kTokens);
  const ReferenceTurn first = reference.say("hello");
  const ReferenceTurn second = reference.say("and then?");
  ASSERT_EQ(first.answer.size(), static_cast<size_t>(kTokens));  // no end of turn: -n ended it
  const ChatRun run = run_chat(*dir_, "hello\n/stats\nand then?\n/stats\n", chat_args());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const std::vector<int> counts = prefilled_counts(run.out);
  ASSERT_EQ(counts.size(), 2u) << run.out;
  // The first turn runs its whole prompt through the target.
  EXPECT_EQ(counts[0], static_cast<int>(first.prompt.size()));
  // The cache holds the first prompt and the answer but its last token
  // (sampled, never run through the target); the second turn prefills that
  // token and what the template added after it, nothing before.
  const size_t cached = first.prompt.size() + first.answer.size() - 1;
  ASSERT_LT(cached, second.prompt.size());
  EXPECT_EQ(counts[1], static_cast<int>(second.prompt.size() - cached));
  EXPECT_NE(run.out.find("specula: draft up to 8"), std::string::npos) << run.out;  // the default
  EXPECT_NE(run.out.find("stop: max_tokens"), std::string::npos) << run.out;
}

TEST_F(ChatPipe, ClearForgetsTheConversationButKeepsTheSystemMessage) {
  const std::string system = "Be kind.";
  ChatReference reference(target_, "chatml", system, kTokens);
  const std::string fresh = reference.say("hi").text;
  const std::string second = reference.say("hi").text;  // after "hi" and its answer
  ASSERT_NE(fresh, second);  // else the test could not tell a cleared conversation
  const ChatRun run =
      run_chat(*dir_, "hi\nhi\n/clear\nhi\n", chat_args("--system '" + system + "'"));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, fresh + "\n" + second + "\n" + fresh + "\n");
}

TEST_F(ChatPipe, EndOfInputEndsTheChatAndALastLineNeedsNoNewline) {
  ChatReference reference(target_, "chatml", "", kTokens);
  const std::string answer = reference.say("no newline").text;
  const ChatRun run = run_chat(*dir_, "\n   \nno newline", chat_args());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, answer + "\n");  // blank lines are no messages
  const ChatRun empty = run_chat(*dir_, "", chat_args());
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");
}

TEST_F(ChatPipe, CommandsAreNotMessages) {
  ChatReference reference(target_, "chatml", "", kTokens);
  const std::string answer = reference.say("/slash at the start").text;
  const ChatRun run =
      run_chat(*dir_, "/stats\n/bogus\n//slash at the start\n/exit\nnever read\n", chat_args());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("no answer yet"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("unknown command '/bogus'"), std::string::npos) << run.err;
  // "//" sends the message with one slash; /exit ends before the last line.
  EXPECT_EQ(run.out.substr(run.out.find('\n') + 1), answer + "\n");

  const ChatRun help = run_chat(*dir_, "/help\n", chat_args());
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("/clear"), std::string::npos) << help.out;
}

TEST_F(ChatPipe, AFullContextAsksForClearInsteadOfFailing) {
  // chatml's "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" is 52
  // byte tokens here: 60 leaves room for 8 of an answer.
  ChatReference reference(target_, "chatml", "", 8);
  const std::string answer = reference.say("hi").text;
  const ChatRun run = run_chat(*dir_, "hi\nhi again\n/clear\nhi\n", chat_args("-c 60", 100));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, answer + "\n" + answer + "\n");
  EXPECT_NE(run.err.find("the context (60 tokens) is full"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("type /clear"), std::string::npos) << run.err;
}

// A real vocabulary (Phi-3's SentencePiece, 32064 tokens) and its own
// template from the file: special tokens such as <|user|> and <|end|>, a BOS
// the template writes, and answers that do not tokenize back to the same ids
// (SentencePiece merges differently), so less of the cache is kept. The
// answers must still be exact.
TEST(ChatPipeRealVocabulary, TheModelsOwnTemplateAndTokenizerGiveExactAnswers) {
  TempDir dir;
  const std::string model = dir.file("phi3-vocab.gguf");
  const CliResult made = run_cli("make-model --tokenizer-from " SPECULA_TEST_DATA_DIR
                                 "/vocab/ggml-vocab-phi-3.gguf --out " +
                                 model + " --embd 32 --layers 2 --heads 2 --ff 64");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const int32_t n = 10;
  ChatReference reference(model, "", "", n);
  const ReferenceTurn first = reference.say("Hello there");
  const ReferenceTurn second = reference.say("What is <|end|> for?");
  const ChatRun run = run_chat(dir, "Hello there\nWhat is <|end|> for?\n/stats\n",
                               "-m " + model + " -t 1 --temp 0 -n " + std::to_string(n));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const std::string expected = first.text + "\n" + second.text + "\n";
  ASSERT_GE(run.out.size(), expected.size()) << run.err;
  EXPECT_EQ(run.out.substr(0, expected.size()), expected);
  const std::vector<int> counts = prefilled_counts(run.out);
  ASSERT_EQ(counts.size(), 1u) << run.out;
  // At least the first prompt up to its assistant header (its last token,
  // the "\n" after <|assistant|>, may merge with the answer's text now).
  EXPECT_LE(counts[0], static_cast<int>(second.prompt.size() - first.prompt.size() + 1));
  EXPECT_GT(counts[0], 0);
}

}  // namespace
}  // namespace specula::testing

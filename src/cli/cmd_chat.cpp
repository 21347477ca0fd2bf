// `specula chat`: talk to a model. Each line typed is a user message; the
// conversation is rendered with the model's chat template and the answer
// streams as it is decoded (speculatively, as `generate` does). The KV
// cache is kept between turns, so a turn prefills only its new tokens
// (cmd_chat_session.h). Over a pipe: one message per line, answers printed
// one after another, no decorations, exit 0 at the end of input.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "cli/cmd_chat_input.h"
#include "cli/cmd_chat_session.h"
#include "cli/command_registry.h"
#include "cli/generation_flags.h"
#include "cli/generation_summary.h"
#include "core/error.h"

namespace specula::cli {
namespace {

struct ChatFlags : GenerationFlags {
  std::string system;
  std::string chat_template;
  ChatFlags() { options.max_new_tokens = 512; }
};

constexpr const char* kCommandsHelp =
    "Commands: /clear forgets the conversation (keeps --system), /stats shows the last "
    "answer's speculation statistics, /help lists the commands, /exit (or Ctrl-D) quits; "
    "start a message with // to send one that begins with /. Ctrl-C stops an answer; at the "
    "prompt it quits.";

void add_flags(CLI::App& sub, ChatFlags& flags) {
  add_generation_flags(sub, flags);
  sub.add_option("-n,--n-predict,--max-tokens", flags.options.max_new_tokens,
                 "Tokens per answer at most")
      ->capture_default_str();
  sub.add_option("-c,--ctx", flags.options.n_ctx,
                 "Context size in tokens, for the whole conversation; 0: the model's training "
                 "context, at most 4096")
      ->capture_default_str();
  sub.add_option("--system", flags.system, "System message that opens the conversation");
  sub.add_option("--chat-template", flags.chat_template,
                 "Template file, or a built-in: chatml, llama3 (default: the model's own, "
                 "tokenizer.chat_template)");
  sub.footer(kCommandsHelp);
}

void write_out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// An answer bound for a terminal, with control characters (C0 but newline
// and tab, DEL, C1) shown as U+FFFD: a model's output must not move the
// cursor, clear the screen or retitle the window. Pieces are whole UTF-8
// characters (StreamingDecoder), so a C1 pair is never split.
std::string terminal_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const bool c1 = c == 0xC2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F || c1) {
      out += "\xEF\xBF\xBD";
      if (c1) ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

void print_stats(const ChatSession& session, const TurnResult& last) {
  std::printf(
      "specula: prefilled %d tokens (the conversation had %d tokens before the answer; %d were "
      "kept in the KV cache from earlier turns)\n",
      last.prefilled_tokens, last.conversation_tokens, last.reused_tokens);
  print_generation_stats(stdout, last.stats, session.speculative());
  std::fflush(stdout);
}

// After the answer's text: why it ended, when not at the end of its turn.
void report_end(const ChatSession& session, const TurnResult& turn) {
  switch (turn.end) {
    case TurnEnd::kInterrupted:
      std::fprintf(stderr,
                   "specula: answer stopped (Ctrl-C); what was said stays in the "
                   "conversation\n");
      break;
    case TurnEnd::kContextFull:
      std::fprintf(stderr,
                   "specula: the context (%d tokens) is full and the answer was cut: type /clear "
                   "to start a new conversation (or raise -c)\n",
                   session.n_ctx());
      break;
    case TurnEnd::kMaxTokens:
    case TurnEnd::kEndOfTurn:
      break;
  }
}

enum class Next { kContinue, kExit };

Next run_command(const std::string& line, ChatSession& session, const TurnResult* last,
                 bool interactive) {
  const std::string command = line.substr(0, line.find_first_of(" \t"));
  if (command == "/exit" || command == "/quit") return Next::kExit;
  if (command == "/clear") {
    session.clear();
    if (interactive) write_out("(the conversation is cleared)\n");
  } else if (command == "/stats") {
    if (last) {
      print_stats(session, *last);
    } else {
      write_out("specula: no answer yet: /stats describes the last answer\n");
    }
  } else if (command == "/help") {
    write_out(std::string(kCommandsHelp) + "\n");
  } else {
    std::fprintf(stderr,
                 "specula: unknown command '%s': the commands are /clear, /stats, /help and "
                 "/exit (start a message with // to send one that begins with /)\n",
                 command.c_str());
  }
  return Next::kContinue;
}

void run(const ChatFlags& parsed, const CLI::App& sub) {
  ChatFlags flags = parsed;
  resolve_generation_flags(flags, sub);
  ChatConfig config;
  config.engine = flags.engine;
  config.options = flags.options;
  config.system = flags.system;
  config.chat_template = flags.chat_template;
  ChatSession session(config);

  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  ChatInterrupts interrupts;
  std::atomic<bool>& interrupted = ChatInterrupts::flag();
  if (interactive) {
    std::fprintf(stderr, "specula chat: %s; chat template: %s; context %d tokens; %s\n%s\n",
                 flags.engine.model_path.c_str(), session.template_origin().c_str(),
                 session.n_ctx(), session.speculative() ? "speculative decoding" : "plain decoding",
                 kCommandsHelp);
  }
  const bool to_terminal = ::isatty(STDOUT_FILENO) != 0;
  const auto on_text = [to_terminal](std::string_view text) {
    write_out(to_terminal ? terminal_safe(text) : std::string(text));
  };
  LineReader reader;
  std::unique_ptr<TurnResult> last;
  std::string line;
  for (;;) {
    ChatInterrupts::reset();  // a Ctrl-C that stopped the answer is spent
    if (interactive) write_out("> ");
    const LineStatus status = reader.read(line);
    if (status != LineStatus::kLine) {
      if (interactive) write_out("\n");
      break;  // the end of input, or Ctrl-C at the prompt
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;  // an empty line is no message
    if (line[first] == '/' && line.compare(first, 2, "//") != 0) {
      if (run_command(line.substr(first), session, last.get(), interactive) == Next::kExit) break;
      continue;
    }
    if (line.compare(first, 2, "//") == 0) line.erase(0, first + 1);
    try {
      ChatInterrupts::reset();
      last = std::make_unique<TurnResult>(session.answer(line, on_text, interrupted));
    } catch (const Error& e) {
      std::fprintf(stderr, "specula: %s\n", e.what());
      continue;
    }
    write_out("\n");
    report_end(session, *last);
  }
}

const bool registered = register_command_with_flags<ChatFlags>(
    "chat",
    "Chat with a model: its chat template, answers streamed as they are decoded, the KV cache "
    "kept between turns (one message per line over a pipe)",
    add_flags, [](const ChatFlags& flags, const CLI::App& sub) {
      with_flag_names(kGenerationFlagNames, [&] { run(flags, sub); });
    });

}  // namespace
}  // namespace specula::cli

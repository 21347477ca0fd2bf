// What `specula chat` must answer, computed without it: each turn renders the
// conversation with the same template (add_generation_prompt on), tokenizes
// it as chat does (special tokens from the template's text only, no BOS
// added) and generates greedily from scratch with the Engine, plainly (no
// drafter, nothing cached), then appends the answer's bytes as the
// assistant's message. Used by the chat_*_test.cpp files.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "cli/cli_runner.h"
#include "gguf/gguf_reader.h"
#include "specula/engine.h"
#include "tokenizer/tokenizer.h"

namespace specula::testing {

struct ReferenceTurn {
  std::vector<int32_t> prompt;  // the rendered conversation's tokens
  std::vector<int32_t> answer;  // generated tokens
  std::string text;             // as streamed (valid UTF-8)
};

class ChatReference {
 public:
  // `chat_template`: a built-in name or file; empty: the model's own.
  ChatReference(const std::string& model, const std::string& chat_template,
                const std::string& system, int32_t max_tokens)
      : engine_(Engine::load({.model_path = model, .n_threads = 1})),
        file_(GgufReader::open(model)),
        tokenizer_(Tokenizer::from_gguf(*file_)),
        prompt_tokenizer_(*tokenizer_),
        template_(chat_template.empty() ? *ChatTemplate::from_gguf(*file_)
                                        : ChatTemplate::from_name_or_file(chat_template)),
        max_tokens_(max_tokens) {
    const SpecialTokenTexts texts = special_token_texts(*file_);
    render_.bos_token = texts.bos;
    render_.eos_token = texts.eos;
    render_.add_generation_prompt = true;
    system_ = system;
    clear();
  }

  void clear() {
    messages_ = nlohmann::ordered_json::array();
    if (!system_.empty()) messages_.push_back({{"role", "system"}, {"content", system_}});
  }

  ReferenceTurn say(const std::string& user) {
    messages_.push_back({{"role", "user"}, {"content", user}});
    ReferenceTurn turn;
    turn.prompt = prompt_tokenizer_.tokenize(template_.render_prompt(messages_, render_));
    GenerateOptions options;
    options.temperature = 0;
    options.max_new_tokens = max_tokens_;
    options.draft_max = 0;
    const GenerateResult result = engine_->generate_from_tokens(turn.prompt, options);
    turn.answer = result.tokens;
    turn.text = result.text;
    std::string said;
    for (int32_t id : result.tokens) said += tokenizer_->token_to_piece(id);
    messages_.push_back({{"role", "assistant"}, {"content", said}});
    return turn;
  }

 private:
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<GgufReader> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  PromptTokenizer prompt_tokenizer_;
  ChatTemplate template_;
  ChatRenderOptions render_;
  std::string system_;
  int32_t max_tokens_;
  nlohmann::ordered_json messages_;
};

struct ChatRun {
  int exit_code = -1;
  std::string out;  // standard output alone
  std::string err;
};

// `specula chat ARGS` with `input` on standard input (a file, so not a
// terminal: pipe mode), stdout and stderr apart.
inline ChatRun run_chat(const TempDir& dir, const std::string& input, const std::string& args) {
  const std::string in = dir.file("chat-in.txt");
  const std::string err = dir.file("chat-err.txt");
  std::ofstream(in, std::ios::binary) << input;
  const CliResult result = run_cli("chat " + args + " <'" + in + "' 2>'" + err + "' #");
  ChatRun run;
  run.exit_code = result.exit_code;
  run.out = result.output;
  std::ifstream stream(err, std::ios::binary);
  std::stringstream text;
  text << stream.rdbuf();
  run.err = text.str();
  return run;
}

}  // namespace specula::testing

// `specula tokenize --model FILE [TEXT]`: text to token ids and pieces with
// a model's own tokenizer, or ids back to text with --decode "1,2,3".
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/input_file.h"
#include "core/split_list.h"
#include "gguf/gguf_reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace specula::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string text_file;
  std::string decode;
  bool ids_only = false;
  bool pieces_only = false;
  bool no_special = false;
  bool parse_special = false;
  bool json = false;
};

// Bytes as a one-line literal: control bytes and invalid UTF-8 as \xNN.
std::string quote_bytes(std::string_view bytes) {
  std::string out = "\"";
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t n = utf8::valid_char_length(bytes, pos);
    const auto c = static_cast<unsigned char>(bytes[pos]);
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : hex;
      ++pos;
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out.append(bytes.substr(pos, n));
      pos += n;
    }
  }
  return out + "\"";
}

std::string read_text(const TokenizeOptions& options) {
  const bool from_stdin =
      options.text_file.empty() ? options.text == "-" : options.text_file == "-";
  if (from_stdin) return std::string(std::istreambuf_iterator<char>(std::cin), {});
  if (!options.text_file.empty()) return read_input_file(options.text_file, "--file");
  return options.text;
}

void run_decode(const Tokenizer& tokenizer, const TokenizeOptions& options) {
  const std::vector<int32_t> ids = split_int_list(options.decode, "--decode");
  const std::string text = tokenizer.decode(ids);
  if (options.json) {
    nlohmann::json out = {
        {"ids", ids}, {"text", utf8::sanitize(text)}, {"valid_utf8", utf8::is_valid(text)}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << text << "\n";
  }
}

void run_encode(const Tokenizer& tokenizer, const TokenizeOptions& options) {
  const std::string text = read_text(options);
  const std::vector<int32_t> ids =
      tokenizer.encode(text, !options.no_special, options.parse_special);
  if (options.json) {
    nlohmann::json pieces = nlohmann::json::array();
    nlohmann::json texts = nlohmann::json::array();
    for (int32_t id : ids) {
      pieces.push_back(utf8::sanitize(tokenizer.token_to_piece(id)));
      texts.push_back(utf8::sanitize(tokenizer.token_text(id)));
    }
    nlohmann::json out = {{"model", std::string(tokenizer.model_name())},
                          {"pre", std::string(tokenizer.pre_tokenizer_name())},
                          {"n_tokens", ids.size()},
                          {"ids", ids},
                          {"pieces", pieces},
                          {"token_texts", texts}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (options.ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
    return;
  }
  for (int32_t id : ids) {
    const std::string shown = tokenizer.is_special(id) || tokenizer.token_to_piece(id).empty()
                                  ? tokenizer.token_text(id)
                                  : tokenizer.token_to_piece(id);
    if (options.pieces_only) {
      std::cout << quote_bytes(shown) << "\n";
    } else {
      std::cout << id << "\t" << quote_bytes(shown) << "\n";
    }
  }
  if (!options.pieces_only) std::cerr << ids.size() << " tokens\n";
}

void add_flags(CLI::App& sub, TokenizeOptions& options) {
  sub.add_option("-m,--model", options.model, "GGUF file whose tokenizer to use")->required();
  sub.add_option("text", options.text, "Text to tokenize ('-' reads stdin)");
  sub.add_option("--file", options.text_file, "Read the text from this file ('-': stdin)");
  sub.add_option("--decode", options.decode, "Comma-separated ids to turn back into text");
  sub.add_flag("--ids", options.ids_only, "Print only the ids, space-separated");
  sub.add_flag("--pieces", options.pieces_only, "Print only the pieces, one per line");
  sub.add_flag("--no-special", options.no_special, "Do not add BOS/EOS");
  sub.add_flag("--parse-special", options.parse_special,
               "Read special-token text such as <|endoftext|> as the special token");
  sub.add_flag("--json", options.json, "Print JSON");
}

void run(const TokenizeOptions& options, const CLI::App& sub) {
  const bool decode = sub.count("--decode") > 0;
  const bool has_text = sub.count("text") > 0 || sub.count("--file") > 0;
  if (decode && has_text) {
    fail("tokenize: give text to encode or --decode IDS, not both");
  }
  if (!decode && !has_text) {
    fail(
        "tokenize: no text: give it as an argument, with --file PATH, or '-' for stdin "
        "(or --decode IDS to turn ids into text)");
  }
  if (sub.count("text") > 0 && sub.count("--file") > 0) {
    fail("tokenize: the text is given twice (as an argument and with --file): give it once");
  }
  const std::unique_ptr<GgufReader> file = GgufReader::open(options.model);
  const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*file);
  if (decode) {
    run_decode(*tokenizer, options);
  } else {
    run_encode(*tokenizer, options);
  }
}

const bool registered = register_command_with_flags<TokenizeOptions>(
    "tokenize",
    "Turn text into token ids and pieces with a model's tokenizer, or ids back into text",
    add_flags, run);

}  // namespace
}  // namespace specula::cli

#include "cli/prompt_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "core/error.h"
#include "core/input_file.h"

namespace specula::cli {
namespace {

bool only_whitespace(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

std::vector<std::string> split_prompts(const std::string& text, const std::string& separator,
                                       const std::string& where) {
  if (separator.empty()) fail("--prompt-separator is empty: give the line that separates prompts");
  std::vector<std::string> prompts;
  std::string current;
  size_t begin = 0;
  auto finish = [&] {
    // The newline that ended the prompt's last line belongs to the separator.
    if (!current.empty() && current.back() == '\n') current.pop_back();
    if (!current.empty() && current.back() == '\r') current.pop_back();
    if (!only_whitespace(current)) prompts.push_back(current);
    current.clear();
  };
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    const bool last = end == std::string::npos;
    if (last) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == separator) {
      finish();
    } else {
      current.append(text, begin, end - begin);
      if (!last) current += '\n';
    }
    if (last) break;
    begin = end + 1;
  }
  finish();
  if (prompts.empty()) {
    fail(where, " holds no prompt: write prompts separated by lines that hold only '", separator,
         "'");
  }
  return prompts;
}

std::vector<std::string> read_prompt_file(const std::string& path, const std::string& separator) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return split_prompts(text, separator, "standard input (--prompt-file -)");
  }
  return split_prompts(read_input_file(path, "the prompt file"), separator,
                       "the prompt file " + path);
}

}  // namespace specula::cli

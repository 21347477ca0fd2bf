// Template source -> tokens: Jinja's whitespace control ({%- -%}, trim_blocks,
// lstrip_blocks) is applied here, so the parser sees only meaningful text.
// Private to the chat part (jinja_parser.cpp is its one user).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "chat/jinja_parser.h"

namespace specula::jinja {

struct Token {
  enum class Kind {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEnd
  };
  Kind kind;
  size_t offset;
  std::string text;  // kText, kName, kOp, kString (decoded)
  int64_t integer = 0;
  double real = 0;
};

bool is_space(char c);
bool is_name_char(char c);

// The tokens of `program.source`, the last one kEnd. Throws specula::Error
// with the line and column for an unclosed tag, string or comment.
std::vector<Token> lex_program(const Program& program);

}  // namespace specula::jinja

// Template source -> syntax tree: the lexer applies Jinja's whitespace rules
// ({%- -%}, trim_blocks, lstrip_blocks) and the parser builds jinja_ast.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"

namespace specula::jinja {

struct Program {
  std::string source;  // newlines normalized to \n, as Jinja reads it
  std::vector<size_t> line_starts;
  Body body;

  // "line L, column C" of a byte offset into `source`.
  std::string where(size_t offset) const;
};

Program parse_program(std::string_view source, const Limits& limits);

// The filters and tests the evaluator knows (the parser rejects others).
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

}  // namespace specula::jinja

// Python's str semantics shared by the filters, tests, methods and globals
// (jinja_methods.cpp defines them); private to the builtins.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_builtins.h"
#include "chat/jinja_value.h"

namespace specula::jinja {

// str.strip/lstrip/rstrip; `chars` null: Unicode whitespace.
std::string py_strip(std::string_view s, const Value* chars, bool left, bool right);
// Case mapping is ASCII only, as in the rest of the sandbox.
std::string py_upper(std::string s);
std::string py_lower(std::string s);
std::string py_capitalize(std::string s);
// Jinja's |title: words split at whitespace, '-', '(', '{', '[' and '<'.
std::string jinja_title(std::string s);
std::string py_replace(const std::string& s, const std::string& from, const std::string& to,
                       int64_t count, const Budget& budget);
// str.split; `sep` null or None: runs of Unicode whitespace.
std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit);

// An optional integer argument (bools count); `what` names it in the error.
int64_t int_arg(const Value* v, int64_t fallback, std::string_view what);
// A required string argument; `what` names it in the error.
const std::string& string_arg(const Value* v, std::string_view what);

}  // namespace specula::jinja

// Errors at the edges of specula: a bad file, flag or request becomes one
// specula::Error whose message says what is wrong, where, and what to do.
// Invariants inside the engine are asserts, not Errors.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace specula {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates any streamable values into one string: str_cat("n_head = ", n).
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// Throws Error with the concatenated message.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str_cat(std::forward<Args>(args)...));
}

}  // namespace specula

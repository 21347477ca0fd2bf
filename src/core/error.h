// The helpers that build and throw specula::Error (include/specula/error.h)
// inside the library: fail("what", value, "what to do").
#pragma once

#include <sstream>
#include <string>
#include <utility>

#include "specula/error.h"

namespace specula {

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

// The one exception type of specula's public API. Errors at the edges (a bad
// file, flag or request) become one specula::Error whose message says what
// is wrong, where, and what to do; a front end catches it and reports the
// message (a non-zero exit, an HTTP 4xx). Invariants inside the engine are
// asserts, not Errors.
#pragma once

#include <stdexcept>

namespace specula {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace specula

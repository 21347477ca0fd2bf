// A sandboxed Jinja interpreter for chat templates: the subset of Jinja2 that
// model chat templates use, rendered the way Hugging Face transformers renders
// them (an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and
// loop controls; tojson keeping non-ASCII; raise_exception and strftime_now).
// Our own code; docs/chat.md lists what is supported and the limits.
//
// Sandboxed: a template reads only the variables it is given, calls only the
// whitelisted filters, tests, globals and string/list/dict methods, cannot
// modify lists or dicts, and every render is bounded (output size, loop
// iterations, call depth). Anything else is a specula::Error naming the line
// and column; a template never crashes or hangs the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"
#include "specula/error.h"

namespace specula::jinja {

struct Limits {
  size_t max_template_bytes = 1 << 20;
  // Caps the rendered text and every string or list built along the way.
  size_t max_output_bytes = 4 << 20;
  // All loop iterations (and range() items) of one render together.
  uint64_t max_loop_iterations = 1'000'000;
  int max_call_depth = 64;  // macro calls in progress
  int max_nesting = 128;    // nested blocks and expressions in the source
};

// A template that called raise_exception(message): what the template's
// author wants the user to see (e.g. "Conversation roles must alternate").
class TemplateRaised : public Error {
 public:
  TemplateRaised(const std::string& what, std::string message)
      : Error(what), message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

struct Program;  // jinja_parser.h

// A rendered template and which of its bytes are user text: the bytes of
// strings passed in marked as user text (Value::from_json(..., true)) that
// reached the output, through concatenation, slicing, trim, macros and
// variables alike (anything else built from user text counts as user text
// as a whole).
struct Rendered {
  std::string text;
  Spans user_spans;  // sorted, disjoint
};

class Template {
 public:
  // Parses `source`. Throws Error naming the line and column of a syntax
  // error or of anything unsupported (an unknown filter, a {% raw %} block).
  explicit Template(std::string_view source, Limits limits = {});
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with `variables` (name -> value). Throws TemplateRaised when
  // the template calls raise_exception, Error for everything else that
  // goes wrong (with line and column).
  std::string render(const std::vector<std::pair<std::string, Value>>& variables) const;
  Rendered render_with_user_spans(
      const std::vector<std::pair<std::string, Value>>& variables) const;

  const Limits& limits() const { return limits_; }

 private:
  Limits limits_;
  std::unique_ptr<Program> program_;
};

}  // namespace specula::jinja

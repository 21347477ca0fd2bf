// The filters, tests, globals and methods a chat template may call; nothing
// else is reachable (the sandbox). Errors are thrown as LocalError without a
// position; the evaluator adds the line and column of the calling node.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_value.h"
#include "core/error.h"

namespace specula::jinja {

class LocalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void local_fail(Args&&... args) {
  throw LocalError(str_cat(std::forward<Args>(args)...));
}

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Argument `index`, or keyword `name`, or nullptr when neither was given.
  const Value* get(size_t index, std::string_view name) const;
  // Throws for keywords outside `allowed` and for more than `max_positional`.
  void check(std::string_view callee, size_t max_positional,
             std::vector<std::string_view> allowed) const;
};

// What every builtin may consume: the limits and the iteration count of the
// render in progress.
struct Budget {
  const Limits& limits;
  uint64_t iterations = 0;

  void check_size(size_t bytes) const;
  void count_iterations(uint64_t n);
};

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args, Budget& budget);
bool apply_test(std::string_view name, const Value& value, const CallArgs& args);
// obj.name(args) for strings, dicts and the loop object.
Value call_method(const Value& object, std::string_view name, const CallArgs& args, Budget& budget);
// range, namespace, dict, strftime_now (raise_exception is the evaluator's).
Value call_global(std::string_view name, const CallArgs& args, Budget& budget);
bool is_global_function(std::string_view name);

// Python's <, as a three-way compare. Throws LocalError for unorderable pairs.
int compare(const Value& a, const Value& b);
// Python's `needle in haystack`.
bool contains(const Value& haystack, const Value& needle);
// A dict key as a string Value (user text when the dict is the user's).
Value key_value(const Object& object, const std::string& key);
// The items a for loop or a filter sees when iterating `v`.
Array iterate(const Value& v);

}  // namespace specula::jinja

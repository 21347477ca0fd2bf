// The builtins' common ground: arguments, budget, Python's iteration,
// ordering and membership; the tests and the global functions.
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <ctime>

#include "chat/jinja_builtins_internal.h"
#include "chat/jinja_parser.h"

namespace specula::jinja {

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [key, value] : keyword) {
    if (key == name) return &value;
  }
  return nullptr;
}

void CallArgs::check(std::string_view callee, size_t max_positional,
                     std::vector<std::string_view> allowed) const {
  if (positional.size() > max_positional) {
    local_fail(callee, "() takes at most ", max_positional, " positional arguments (",
               positional.size(), " given)");
  }
  for (const auto& [key, value] : keyword) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      local_fail(callee, "() got an unexpected keyword argument '", key, "'");
    }
  }
}

void Budget::check_size(size_t bytes) const {
  if (bytes > limits.max_output_bytes) {
    local_fail("a string or list of ", bytes, " bytes or items is over the output limit of ",
               limits.max_output_bytes, " bytes");
  }
}

void Budget::count_iterations(uint64_t n) {
  iterations += n;
  if (iterations > limits.max_loop_iterations) {
    local_fail("more than ", limits.max_loop_iterations, " loop iterations in one render");
  }
}

Value key_value(const Object& object, const std::string& key) {
  Value v = Value::from_string(key);
  return object.user_keys ? mark_user(std::move(v)) : v;
}

Array iterate(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kArray:
      return *v.array;
    case Value::Kind::kObject:
    case Value::Kind::kNamespace: {
      Array keys;
      for (const auto& entry : v.object->entries) keys.push_back(key_value(*v.object, entry.first));
      return keys;
    }
    case Value::Kind::kString: {
      Array chars;
      for (const auto piece : split_codepoints(v.text))
        chars.push_back(Value::from_string(std::string(piece)));
      return chars;
    }
    case Value::Kind::kUndefined:
      return {};
    default:
      local_fail("'", type_name(v), "' object is not iterable");
  }
}

int compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat) {
      const int64_t x = a.kind == Value::Kind::kBool ? a.boolean : a.integer;
      const int64_t y = b.kind == Value::Kind::kBool ? b.boolean : b.integer;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    const double x = a.kind == Value::Kind::kFloat
                         ? a.real
                         : static_cast<double>(a.kind == Value::Kind::kInt ? a.integer : a.boolean);
    const double y = b.kind == Value::Kind::kFloat
                         ? b.real
                         : static_cast<double>(b.kind == Value::Kind::kInt ? b.integer : b.boolean);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.text.compare(b.text);  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const size_t n = std::min(a.array->size(), b.array->size());
    for (size_t i = 0; i < n; ++i) {
      if (!equal((*a.array)[i], (*b.array)[i])) return compare((*a.array)[i], (*b.array)[i]);
    }
    return a.array->size() < b.array->size() ? -1 : a.array->size() > b.array->size() ? 1 : 0;
  }
  local_fail("'<' not supported between instances of '", type_name(a), "' and '", type_name(b),
             "'");
}

bool contains(const Value& haystack, const Value& needle) {
  switch (haystack.kind) {
    case Value::Kind::kString:
      if (!needle.is_string()) {
        local_fail("'in <string>' requires string as left operand, not ", type_name(needle));
      }
      return haystack.text.find(needle.text) != std::string::npos;
    case Value::Kind::kArray:
      return std::any_of(haystack.array->begin(), haystack.array->end(),
                         [&](const Value& item) { return equal(item, needle); });
    case Value::Kind::kObject:
    case Value::Kind::kNamespace:
      return needle.is_string() && haystack.object->find(needle.text) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      local_fail("argument of type '", type_name(haystack), "' is not iterable");
  }
}
namespace {

const std::vector<std::string_view>& test_names() {
  static const std::vector<std::string_view> names = {
      "boolean", "callable",  "defined", "divisibleby", "eq",          "equalto",  "escaped",
      "even",    "false",     "float",   "ge",          "greaterthan", "gt",       "in",
      "integer", "iterable",  "le",      "lessthan",    "lower",       "lt",       "mapping",
      "ne",      "none",      "number",  "odd",         "sameas",      "sequence", "string",
      "true",    "undefined", "upper",   "==",          "!=",          "<",        "<=",
      ">",       ">="};
  return names;
}

}  // namespace

bool is_known_test(std::string_view name) {
  const auto& names = test_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool apply_test(std::string_view name, const Value& v, const CallArgs& args) {
  const Value* arg = args.get(0, "value");
  const auto need_arg = [&]() -> const Value& {
    if (arg == nullptr) local_fail("test '", name, "' needs an argument");
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Value::Kind::kBool;
  if (name == "true") return v.kind == Value::Kind::kBool && v.boolean;
  if (name == "false") return v.kind == Value::Kind::kBool && !v.boolean;
  if (name == "integer") return v.kind == Value::Kind::kInt;
  if (name == "float") return v.kind == Value::Kind::kFloat;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") {
    return v.is_string() || v.is_array() || v.is_object() || v.is_undefined();
  }
  if (name == "sequence") return v.is_string() || v.is_array() || v.is_object();
  if (name == "callable") return v.kind == Value::Kind::kMacro || v.kind == Value::Kind::kFunction;
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && py_lower(v.text) == v.text;
  if (name == "upper") return v.is_string() && py_upper(v.text) == v.text;
  if (name == "odd" || name == "even") {
    if (v.kind != Value::Kind::kInt)
      local_fail("test '", name, "' needs an integer, not ", type_name(v));
    return (v.integer % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const int64_t d = int_arg(&need_arg(), 1, "divisibleby's argument");
    if (v.kind != Value::Kind::kInt)
      local_fail("test 'divisibleby' needs an integer, not ", type_name(v));
    if (d == 0) local_fail("integer division or modulo by zero");
    return v.integer % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, need_arg());
  if (name == "ne" || name == "!=") return !equal(v, need_arg());
  if (name == "sameas") {
    const Value& other = need_arg();
    if (v.kind != other.kind) return false;
    if (v.is_none() || v.kind == Value::Kind::kBool) return equal(v, other);
    return v.array == other.array && v.object == other.object && v.kind != Value::Kind::kString;
  }
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, need_arg()) < 0;
  if (name == "le" || name == "<=") return compare(v, need_arg()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, need_arg()) > 0;
  if (name == "ge" || name == ">=") return compare(v, need_arg()) >= 0;
  if (name == "in") return contains(need_arg(), v);
  local_fail("unknown test '", name, "'");
}
bool is_global_function(std::string_view name) {
  return name == "range" || name == "namespace" || name == "dict" || name == "strftime_now" ||
         name == "raise_exception";
}

Value call_global(std::string_view name, const CallArgs& args, Budget& budget) {
  if (name == "range") {
    if (!args.keyword.empty()) local_fail("range() takes no keyword arguments");
    if (args.positional.empty() || args.positional.size() > 3) {
      local_fail("range expected 1 to 3 arguments, got ", args.positional.size());
    }
    int64_t start = 0, stop = 0, step = 1;
    if (args.positional.size() == 1) {
      stop = int_arg(&args.positional[0], 0, "range's argument");
    } else {
      start = int_arg(&args.positional[0], 0, "range's start");
      stop = int_arg(&args.positional[1], 0, "range's stop");
      if (args.positional.size() == 3) step = int_arg(&args.positional[2], 1, "range's step");
    }
    if (step == 0) local_fail("range() arg 3 must not be zero");
    Array out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      budget.count_iterations(1);
      out.push_back(Value::from_int(i));
    }
    return Value::from_array(std::move(out));
  }
  if (name == "namespace" || name == "dict") {
    Object o;
    for (const Value& v : args.positional) {  // namespace(dict) / dict(mapping)
      if (!v.is_object())
        local_fail(name, "() positional argument must be a mapping, not ", type_name(v));
      for (const auto& entry : v.object->entries) o.set(entry.first, entry.second);
    }
    for (const auto& [key, value] : args.keyword) o.set(key, value);
    Value v = Value::from_object(std::move(o));
    if (name == "namespace") v.kind = Value::Kind::kNamespace;
    return v;
  }
  if (name == "strftime_now") {
    const std::string& format = string_arg(args.get(0, "format"), "strftime_now's format");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[512];
    const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &local);
    if (n == 0 && !format.empty()) local_fail("strftime_now: format too long or empty result");
    return Value::from_string(std::string(buf, n));
  }
  local_fail("'", name, "' is not callable");
}

}  // namespace specula::jinja

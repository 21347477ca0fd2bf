// The values a chat template computes with: Python's None, bool, int, float,
// str, list and dict as Jinja sees them, plus Jinja's Undefined, namespace()
// objects and macros. Lists and dicts are shared (copying a Value is cheap)
// and never modified once built, as in an ImmutableSandboxedEnvironment;
// only a namespace's attributes can be assigned.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace specula::jinja {

struct Value;
struct MacroDefinition;  // jinja_ast.h
using Array = std::vector<Value>;
// Byte ranges [first, second) of a string that came from the user (message
// content, tool definitions) rather than from the template: the rendered
// prompt keeps them so that text a user typed never becomes a control token.
using Spans = std::vector<std::pair<size_t, size_t>>;

// A dict: string keys in insertion order (Python dicts keep it; tojson and
// items() show it).
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  bool user_keys = false;  // the keys are user text too (a user-supplied dict)
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);  // replaces an existing key in place
};

struct Value {
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kArray,
    kObject,
    kNamespace,
    kMacro,
    kFunction
  };

  Kind kind = Kind::kUndefined;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  // kString: the text. kUndefined: the name that was looked up (for errors).
  // kFunction: the global's name (range, namespace, raise_exception, ...).
  std::string text;
  std::shared_ptr<const Array> array;
  std::shared_ptr<Object> object;  // kObject (read-only by convention) and kNamespace
  std::shared_ptr<const MacroDefinition> macro;
  std::shared_ptr<const Spans> user;  // kString: its user-supplied bytes (null: none)
  // kArray/kObject: levels of lists and dicts inside (bounded, so that no
  // walk over a value, not even its destructor, recurses without end).
  uint16_t nesting = 0;
  bool is_loop = false;   // a for loop's `loop` object (has cycle())
  bool is_tuple = false;  // a kArray that Python holds as a tuple: prints as (a, b)

  static Value undefined(std::string name = {});
  static Value none();
  static Value from_bool(bool b);
  static Value from_int(int64_t i);
  static Value from_float(double f);
  static Value from_string(std::string s);
  static Value from_array(Array items);
  static Value from_tuple(Array items);
  static Value from_object(Object o);
  // `user`: every string in it is user text (see Spans).
  static Value from_json(const nlohmann::ordered_json& json, bool user = false);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject || kind == Kind::kNamespace; }
  const Array& items() const { return *array; }
};

// The same Value with all of its string bytes marked as user text.
Value mark_user(Value v);
// True when `v` is or holds a namespace() object.
bool contains_namespace(const Value& v);
// True when `v` or anything inside it holds user text.
bool has_user_text(const Value& v);
// `spans` moved by `offset`, or cut to [begin, begin + size) and made
// relative to `begin`.
Spans shift_spans(const Spans* spans, size_t offset);
Spans clip_spans(const Spans* spans, size_t begin, size_t size);
std::shared_ptr<const Spans> share_spans(Spans spans);  // null when empty

// Python truthiness.
bool truthy(const Value& v);
// Python's str(v) (Undefined prints as nothing, as Jinja's default Undefined).
std::string to_str(const Value& v);
// Python's repr(v), as str() shows the items of a list or dict.
std::string to_repr(const Value& v);
// Python's ==.
bool equal(const Value& a, const Value& b);
// Python's type name, for error messages ("str", "list", "NoneType").
std::string_view type_name(const Value& v);
// json.dumps(v, ensure_ascii=False, indent=indent) as Hugging Face's tojson
// filter does (indent < 0: none). Throws Error for values JSON cannot hold.
std::string to_json(const Value& v, int indent);
// Python float repr: 1.0, 0.1, 1e-05, 1e+16, inf.
std::string float_repr(double f);

// Unicode code points of UTF-8 text (invalid bytes count one each), as
// Python's len() and slicing see a str.
size_t codepoint_count(std::string_view text);
std::vector<std::string_view> split_codepoints(std::string_view text);

}  // namespace specula::jinja

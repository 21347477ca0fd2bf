#include "chat/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

#include "tokenizer/utf8.h"

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

namespace {

// --- Python str helpers (code points; case mapping is ASCII only) ---------

bool is_py_space(uint32_t cp) {
  return (cp >= 9 && cp <= 13) || (cp >= 28 && cp <= 32) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint32_t codepoint_at(std::string_view s, size_t pos, size_t* length) {
  const size_t n = utf8::valid_char_length(s, pos);
  *length = n == 0 ? 1 : n;
  return n == 0 ? 0xFFFFFFFF : utf8::decode_codepoint(s, pos, n);
}

bool in_chars(std::string_view piece, const std::vector<std::string_view>& chars) {
  return std::find(chars.begin(), chars.end(), piece) != chars.end();
}

// str.strip/lstrip/rstrip; `chars` null: Unicode whitespace.
std::string py_strip(std::string_view s, const Value* chars, bool left, bool right) {
  const bool whitespace = chars == nullptr || chars->is_none();
  if (!whitespace && !chars->is_string()) local_fail("strip arg must be None or str");
  const std::vector<std::string_view> set =
      whitespace ? std::vector<std::string_view>{} : split_codepoints(chars->text);
  const auto strippable = [&](std::string_view piece, uint32_t cp) {
    return whitespace ? is_py_space(cp) : in_chars(piece, set);
  };
  std::vector<std::string_view> pieces = split_codepoints(s);
  size_t begin = 0, end = pieces.size();
  size_t n;
  while (left && begin < end && strippable(pieces[begin], codepoint_at(pieces[begin], 0, &n)))
    ++begin;
  while (right && end > begin && strippable(pieces[end - 1], codepoint_at(pieces[end - 1], 0, &n)))
    --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += pieces[i];
  return out;
}

char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

std::string py_upper(std::string s) {
  for (char& c : s) c = ascii_upper(c);
  return s;
}
std::string py_lower(std::string s) {
  for (char& c : s) c = ascii_lower(c);
  return s;
}
std::string py_capitalize(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) s[i] = i == 0 ? ascii_upper(s[i]) : ascii_lower(s[i]);
  return s;
}
// str.title(): a letter after a non-letter starts a word.
std::string py_title_method(std::string s) {
  bool previous_cased = false;
  for (char& c : s) {
    const bool alpha = ascii_alpha(c);
    c = alpha ? (previous_cased ? ascii_lower(c) : ascii_upper(c)) : c;
    previous_cased = alpha || static_cast<unsigned char>(c) >= 0x80;
  }
  return s;
}
// Jinja's |title: words split at whitespace, '-', '(', '{', '[' and '<'.
std::string jinja_title(std::string s) {
  bool word_start = true;
  for (char& c : s) {
    const bool delimiter = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
                           c == '\v' || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (delimiter) {
      word_start = true;
    } else {
      c = word_start ? ascii_upper(c) : ascii_lower(c);
      word_start = false;
    }
  }
  return s;
}

std::string py_replace(const std::string& s, const std::string& from, const std::string& to,
                       int64_t count, const Budget& budget) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    const auto pieces = split_codepoints(s);
    int64_t done = 0;
    for (const auto& piece : pieces) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += piece;
      budget.check_size(out.size());
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    budget.check_size(out.size());
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  budget.check_size(out.size());
  return out;
}

std::vector<std::string> py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep == nullptr || sep->is_none()) {
    const auto pieces = split_codepoints(s);
    std::string word;
    size_t i = 0;
    size_t n;
    const auto space = [&](size_t k) { return is_py_space(codepoint_at(pieces[k], 0, &n)); };
    while (i < pieces.size()) {
      while (i < pieces.size() && space(i)) ++i;
      if (i == pieces.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        std::string rest;
        for (size_t k = i; k < pieces.size(); ++k) rest += pieces[k];
        // Python keeps the rest's trailing whitespace only when maxsplit stops early: strip it.
        out.push_back(py_strip(rest, nullptr, false, true));
        return out;
      }
      word.clear();
      while (i < pieces.size() && !space(i)) word += pieces[i++];
      out.push_back(word);
    }
    return out;
  }
  if (!sep->is_string()) local_fail("must be str or None, not ", type_name(*sep));
  if (sep->text.empty()) local_fail("empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    const size_t hit = s.find(sep->text, pos);
    if (hit == std::string::npos) break;
    out.push_back(s.substr(pos, hit - pos));
    pos = hit + sep->text.size();
  }
  out.push_back(s.substr(pos));
  return out;
}

Value strings_to_array(const std::vector<std::string>& parts) {
  Array items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::from_string(p));
  return Value::from_array(std::move(items));
}

int64_t int_arg(const Value* v, int64_t fallback, std::string_view what) {
  if (v == nullptr || v->is_none()) return fallback;
  if (v->kind == Value::Kind::kInt) return v->integer;
  if (v->kind == Value::Kind::kBool) return v->boolean;
  local_fail(what, " must be an integer, not ", type_name(*v));
}

const std::string& string_arg(const Value* v, std::string_view what) {
  if (v == nullptr) local_fail("missing argument ", what);
  if (!v->is_string()) local_fail(what, " must be a string, not ", type_name(*v));
  return v->text;
}

// --- attribute paths for selectattr/map/sort ("a.b.0") ----------------------

Value attribute_path(const Value& item, std::string_view path) {
  Value current = item;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string_view::npos) dot = path.size();
    const std::string_view part = path.substr(pos, dot - pos);
    if (current.is_object()) {
      const Value* found = current.object->find(part);
      current = found ? *found : Value::undefined(std::string(part));
    } else if (current.is_array() && !part.empty() &&
               std::all_of(part.begin(), part.end(), ::isdigit)) {
      const size_t index = std::stoul(std::string(part));
      current = index < current.array->size() ? (*current.array)[index]
                                              : Value::undefined(std::string(part));
    } else {
      return Value::undefined(std::string(part));
    }
    pos = dot + 1;
  }
  return current;
}

Value to_list(const Value& v) {
  return Value::from_array(iterate(v));
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString:
      return static_cast<int64_t>(codepoint_count(v.text));
    case Value::Kind::kArray:
      return static_cast<int64_t>(v.array->size());
    case Value::Kind::kObject:
    case Value::Kind::kNamespace:
      return static_cast<int64_t>(v.object->entries.size());
    case Value::Kind::kUndefined:
      return 0;
    default:
      local_fail("object of type '", type_name(v), "' has no len()");
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Value round_value(const Value& v, int64_t precision, const std::string& method) {
  if (!v.is_number()) local_fail("round expects a number, not ", type_name(v));
  double x = v.kind == Value::Kind::kFloat
                 ? v.real
                 : static_cast<double>(v.kind == Value::Kind::kInt ? v.integer : v.boolean);
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "common") {
    // Python's round() on x * 10^p: ties to even.
    const double scaled = x * scale;
    double r = std::nearbyint(scaled);
    x = r / scale;
  } else if (method == "floor") {
    x = std::floor(x * scale) / scale;
  } else if (method == "ceil") {
    x = std::ceil(x * scale) / scale;
  } else {
    local_fail("method must be 'common', 'ceil' or 'floor'");
  }
  return Value::from_float(x);
}

Array sorted_items(Array items, bool reverse, bool case_sensitive, const Value* attribute) {
  const auto key = [&](const Value& v) {
    Value k = attribute && attribute->is_string() ? attribute_path(v, attribute->text) : v;
    if (!case_sensitive && k.is_string()) k.text = py_lower(k.text);
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const int c = compare(key(a), key(b));
    return reverse ? c > 0 : c < 0;
  });
  return items;
}

std::string py_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '{' && i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < format.size() && format[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = format.find('}', i);
      if (close == std::string::npos)
        local_fail("format(): single '{' encountered in format string");
      const std::string field = format.substr(i + 1, close - i - 1);
      const Value* v = nullptr;
      if (field.empty()) {
        v = args.get(auto_index++, "");
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        v = args.get(std::stoul(field), "");
      } else {
        for (const auto& [key, value] : args.keyword) {
          if (key == field) v = &value;
        }
      }
      if (v == nullptr)
        local_fail("format(): no argument for field {", field,
                   "} (format specs are not supported)");
      out += to_str(*v);
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

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

const std::vector<std::string_view>& filter_names() {
  static const std::vector<std::string_view> names = {
      "abs",        "capitalize", "count",    "d",       "default", "dictsort", "e",
      "escape",     "first",      "float",    "indent",  "int",     "items",    "join",
      "last",       "length",     "list",     "lower",   "map",     "max",      "min",
      "reject",     "rejectattr", "replace",  "reverse", "round",   "safe",     "select",
      "selectattr", "sort",       "string",   "sum",     "title",   "tojson",   "trim",
      "unique",     "upper",      "wordcount"};
  return names;
}
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

bool is_known_filter(std::string_view name) {
  const auto& names = filter_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}
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

namespace {

// select/reject/selectattr/rejectattr: args after the attribute are a test
// name and its arguments; without a test, truthiness.
Value select_items(const Value& input, const CallArgs& args, bool by_attribute, bool keep,
                   Budget& budget) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    attribute = string_arg(args.get(0, "attribute"), "the attribute name");
    next = 1;
  }
  std::string test;
  CallArgs test_args;
  if (next < args.positional.size()) {
    test = string_arg(&args.positional[next], "the test name");
    if (!is_known_test(test)) local_fail("unknown test '", test, "'");
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next) + 1,
                                args.positional.end());
  }
  Array out;
  const Array items = iterate(input);
  budget.count_iterations(items.size());
  for (const Value& item : items) {
    const Value subject = by_attribute ? attribute_path(item, attribute) : item;
    const bool passes = test.empty() ? truthy(subject) : apply_test(test, subject, test_args);
    if (passes == keep) out.push_back(item);
  }
  return Value::from_array(std::move(out));
}

}  // namespace

Value apply_filter(std::string_view name, const Value& input, const CallArgs& args,
                   Budget& budget) {
  if (name == "safe") return input;
  if (name == "string") return Value::from_string(to_str(input));
  if (name == "trim") {
    args.check("trim", 1, {"chars"});
    return Value::from_string(py_strip(to_str(input), args.get(0, "chars"), true, true));
  }
  if (name == "upper") return Value::from_string(py_upper(to_str(input)));
  if (name == "lower") return Value::from_string(py_lower(to_str(input)));
  if (name == "capitalize") return Value::from_string(py_capitalize(to_str(input)));
  if (name == "title") return Value::from_string(jinja_title(to_str(input)));
  if (name == "e" || name == "escape") return Value::from_string(html_escape(to_str(input)));
  if (name == "length" || name == "count") return Value::from_int(length_of(input));
  if (name == "wordcount") {
    return Value::from_int(static_cast<int64_t>(py_split(to_str(input), nullptr, -1).size()));
  }
  if (name == "tojson") {
    args.check("tojson", 1, {"indent", "ensure_ascii", "separators", "sort_keys"});
    const Value* indent = args.get(0, "indent");
    for (const auto& [key, value] : args.keyword) {
      if (key == "sort_keys" && truthy(value))
        local_fail("tojson(sort_keys=true) is not supported");
      if (key == "ensure_ascii" && truthy(value))
        local_fail("tojson(ensure_ascii=true) is not supported");
      if (key == "separators" && !value.is_none())
        local_fail("tojson(separators=...) is not supported");
    }
    const int64_t n = int_arg(indent, -1, "tojson's indent");
    if (n > 64) local_fail("tojson indent ", n, " is over the limit of 64");
    try {
      std::string json = to_json(input, static_cast<int>(n));
      budget.check_size(json.size());
      return Value::from_string(std::move(json));
    } catch (const Error& e) {
      local_fail(e.what());
    }
  }
  if (name == "d" || name == "default") {
    args.check("default", 2, {"default_value", "boolean"});
    const Value* fallback = args.get(0, "default_value");
    const Value* boolean = args.get(1, "boolean");
    const bool use_fallback =
        input.is_undefined() || (boolean && truthy(*boolean) && !truthy(input));
    if (!use_fallback) return input;
    return fallback ? *fallback : Value::from_string("");
  }
  if (name == "list") return to_list(input);
  if (name == "items") {
    if (input.is_undefined()) return Value::from_array({});
    if (!input.is_object()) local_fail("items filter needs a mapping, not ", type_name(input));
    Array pairs;
    for (const auto& [key, value] : input.object->entries) {
      pairs.push_back(Value::from_tuple({key_value(*input.object, key), value}));
    }
    return Value::from_array(std::move(pairs));
  }
  if (name == "dictsort") {
    if (!input.is_object()) local_fail("dictsort filter needs a mapping, not ", type_name(input));
    Array pairs;
    for (const auto& [key, value] : input.object->entries) {
      pairs.push_back(Value::from_tuple({key_value(*input.object, key), value}));
    }
    const Value attribute = Value::from_string("0");
    return Value::from_array(sorted_items(std::move(pairs), false, false, &attribute));
  }
  if (name == "join") {
    args.check("join", 2, {"d", "attribute"});
    const Value* sep = args.get(0, "d");
    const Value* attribute = args.get(1, "attribute");
    const std::string separator = sep ? to_str(*sep) : "";
    std::string out;
    const Array items = iterate(input);
    budget.count_iterations(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += separator;
      out += to_str(attribute && attribute->is_string() ? attribute_path(items[i], attribute->text)
                                                        : items[i]);
      budget.check_size(out.size());
    }
    return Value::from_string(std::move(out));
  }
  if (name == "first" || name == "last") {
    const Array items = iterate(input);
    if (items.empty()) return Value::undefined("first");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (input.is_string()) {
      auto pieces = split_codepoints(input.text);
      std::string out;
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) out += *it;
      return Value::from_string(std::move(out));
    }
    Array items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value::from_array(std::move(items));
  }
  if (name == "sort") {
    args.check("sort", 3, {"reverse", "case_sensitive", "attribute"});
    const Value* reverse = args.get(0, "reverse");
    const Value* case_sensitive = args.get(1, "case_sensitive");
    Array items = iterate(input);
    budget.count_iterations(items.size());
    return Value::from_array(sorted_items(std::move(items), reverse && truthy(*reverse),
                                          case_sensitive && truthy(*case_sensitive),
                                          args.get(2, "attribute")));
  }
  if (name == "unique") {
    Array out;
    for (const Value& item : iterate(input)) {
      if (std::none_of(out.begin(), out.end(),
                       [&](const Value& seen) { return equal(seen, item); })) {
        out.push_back(item);
      }
    }
    return Value::from_array(std::move(out));
  }
  if (name == "min" || name == "max") {
    const Array items = iterate(input);
    if (items.empty()) return Value::undefined(std::string(name));
    Value best = items.front();
    for (const Value& item : items) {
      const int c = compare(item, best);
      if ((name == "min" && c < 0) || (name == "max" && c > 0)) best = item;
    }
    return best;
  }
  if (name == "sum") {
    Value total = Value::from_int(0);
    for (const Value& item : iterate(input)) {
      if (!item.is_number()) local_fail("sum: unsupported item of type ", type_name(item));
      if (total.kind == Value::Kind::kInt && item.kind != Value::Kind::kFloat) {
        total.integer += item.kind == Value::Kind::kBool ? item.boolean : item.integer;
      } else {
        const double t =
            total.kind == Value::Kind::kFloat ? total.real : static_cast<double>(total.integer);
        const double x =
            item.kind == Value::Kind::kFloat
                ? item.real
                : static_cast<double>(item.kind == Value::Kind::kInt ? item.integer : item.boolean);
        total = Value::from_float(t + x);
      }
    }
    return total;
  }
  if (name == "abs") {
    if (input.kind == Value::Kind::kInt)
      return Value::from_int(input.integer < 0 ? -input.integer : input.integer);
    if (input.kind == Value::Kind::kFloat) return Value::from_float(std::fabs(input.real));
    local_fail("bad operand type for abs(): '", type_name(input), "'");
  }
  if (name == "int") {
    const Value* fallback = args.get(0, "default");
    const int64_t fallback_value = fallback ? int_arg(fallback, 0, "int's default") : 0;
    if (input.kind == Value::Kind::kInt) return input;
    if (input.kind == Value::Kind::kBool) return Value::from_int(input.boolean);
    if (input.kind == Value::Kind::kFloat) {
      if (!std::isfinite(input.real) || std::fabs(input.real) > 9e18)
        return Value::from_int(fallback_value);
      return Value::from_int(static_cast<int64_t>(input.real));
    }
    if (input.is_string()) {
      const std::string s = py_strip(input.text, nullptr, true, true);
      int64_t n = 0;
      const auto res = std::from_chars(s.data(), s.data() + s.size(), n);
      if (res.ec == std::errc() && res.ptr == s.data() + s.size() && !s.empty())
        return Value::from_int(n);
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9e18) {
        return Value::from_int(static_cast<int64_t>(d));
      }
    }
    return Value::from_int(fallback_value);
  }
  if (name == "float") {
    if (input.kind == Value::Kind::kFloat) return input;
    if (input.kind == Value::Kind::kInt)
      return Value::from_float(static_cast<double>(input.integer));
    if (input.kind == Value::Kind::kBool) return Value::from_float(input.boolean);
    if (input.is_string()) {
      const std::string s = py_strip(input.text, nullptr, true, true);
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return Value::from_float(d);
    }
    const Value* fallback = args.get(0, "default");
    return fallback ? *fallback : Value::from_float(0.0);
  }
  if (name == "round") {
    args.check("round", 2, {"precision", "method"});
    const Value* method = args.get(1, "method");
    return round_value(input, int_arg(args.get(0, "precision"), 0, "round's precision"),
                       method ? string_arg(method, "round's method") : "common");
  }
  if (name == "replace") {
    args.check("replace", 3, {"old", "new", "count"});
    const std::string& from = string_arg(args.get(0, "old"), "replace's old");
    const std::string& to = string_arg(args.get(1, "new"), "replace's new");
    return Value::from_string(
        py_replace(to_str(input), from, to, int_arg(args.get(2, "count"), -1, "count"), budget));
  }
  if (name == "indent") {
    args.check("indent", 3, {"width", "first", "blank"});
    const Value* width_arg = args.get(0, "width");
    std::string pad = width_arg && width_arg->is_string()
                          ? width_arg->text
                          : std::string(static_cast<size_t>(std::clamp<int64_t>(
                                            int_arg(width_arg, 4, "indent's width"), 0, 256)),
                                        ' ');
    const Value* first = args.get(1, "first");
    const Value* blank = args.get(2, "blank");
    const std::string s = to_str(input);
    std::string out;
    size_t pos = 0;
    bool first_line = true;
    while (true) {
      const size_t nl = s.find('\n', pos);
      const std::string line =
          s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      const bool indent_this =
          first_line ? (first && truthy(*first)) : (!line.empty() || (blank && truthy(*blank)));
      if (indent_this) out += pad;
      out += line;
      budget.check_size(out.size());
      if (nl == std::string::npos) break;
      out += '\n';
      pos = nl + 1;
      first_line = false;
    }
    return Value::from_string(std::move(out));
  }
  if (name == "select" || name == "reject")
    return select_items(input, args, false, name == "select", budget);
  if (name == "selectattr" || name == "rejectattr") {
    return select_items(input, args, true, name == "selectattr", budget);
  }
  if (name == "map") {
    const Value* attribute = nullptr;
    for (const auto& [key, value] : args.keyword) {
      if (key == "attribute") attribute = &value;
    }
    Array out;
    const Array items = iterate(input);
    budget.count_iterations(items.size());
    if (attribute) {
      const Value* fallback = nullptr;
      for (const auto& [key, value] : args.keyword) {
        if (key == "default") fallback = &value;
      }
      for (const Value& item : items) {
        Value v = attribute_path(item, string_arg(attribute, "map's attribute"));
        out.push_back(v.is_undefined() && fallback ? *fallback : v);
      }
      return Value::from_array(std::move(out));
    }
    if (args.positional.empty()) local_fail("map needs a filter name or attribute=");
    const std::string& filter = string_arg(&args.positional[0], "map's filter name");
    if (!is_known_filter(filter) || filter == "map")
      local_fail("map: unknown filter '", filter, "'");
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const Value& item : items) out.push_back(apply_filter(filter, item, rest, budget));
    return Value::from_array(std::move(out));
  }
  local_fail("unknown filter '", name, "'");
}

Value call_method(const Value& object, std::string_view name, const CallArgs& args,
                  Budget& budget) {
  if (object.is_string()) {
    const std::string& s = object.text;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
      args.check(name, 1, {});
      return Value::from_string(py_strip(s, args.get(0, ""), name != "rstrip", name != "lstrip"));
    }
    if (name == "startswith" || name == "endswith") {
      args.check(name, 1, {});
      const Value* arg = args.get(0, "");
      if (arg == nullptr) local_fail(name, "() takes at least 1 argument (0 given)");
      std::vector<std::string> options;
      if (arg->is_array()) {
        for (const Value& v : arg->items())
          options.push_back(string_arg(&v, std::string(name) + "'s argument"));
      } else {
        options.push_back(string_arg(arg, std::string(name) + "'s argument"));
      }
      for (const std::string& o : options) {
        if (name == "startswith" ? s.starts_with(o) : s.ends_with(o)) return Value::from_bool(true);
      }
      return Value::from_bool(false);
    }
    if (name == "split" || name == "rsplit") {
      args.check(name, 2, {"sep", "maxsplit"});
      const int64_t maxsplit = int_arg(args.get(1, "maxsplit"), -1, "maxsplit");
      if (name == "rsplit" && maxsplit >= 0) local_fail("rsplit with maxsplit is not supported");
      return strings_to_array(py_split(s, args.get(0, "sep"), maxsplit));
    }
    if (name == "splitlines") {
      std::vector<std::string> lines;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t nl = s.find_first_of("\n\r", pos);
        if (nl == std::string::npos) {
          lines.push_back(s.substr(pos));
          break;
        }
        lines.push_back(s.substr(pos, nl - pos));
        pos = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
      }
      return strings_to_array(lines);
    }
    if (name == "replace") {
      args.check(name, 3, {});
      return Value::from_string(py_replace(s, string_arg(args.get(0, ""), "replace's old"),
                                           string_arg(args.get(1, ""), "replace's new"),
                                           int_arg(args.get(2, ""), -1, "count"), budget));
    }
    if (name == "upper") return Value::from_string(py_upper(s));
    if (name == "lower") return Value::from_string(py_lower(s));
    if (name == "title") return Value::from_string(py_title_method(s));
    if (name == "capitalize") return Value::from_string(py_capitalize(s));
    if (name == "find" || name == "rfind" || name == "index" || name == "count") {
      const std::string& needle = string_arg(args.get(0, ""), std::string(name) + "'s argument");
      if (name == "count") {
        if (needle.empty()) return Value::from_int(static_cast<int64_t>(codepoint_count(s)) + 1);
        int64_t n = 0;
        for (size_t pos = s.find(needle); pos != std::string::npos;
             pos = s.find(needle, pos + needle.size()))
          ++n;
        return Value::from_int(n);
      }
      const size_t hit = name == "rfind" ? s.rfind(needle) : s.find(needle);
      if (hit == std::string::npos) {
        if (name == "index") local_fail("substring not found");
        return Value::from_int(-1);
      }
      return Value::from_int(
          static_cast<int64_t>(codepoint_count(std::string_view(s).substr(0, hit))));
    }
    if (name == "join") {
      std::string out;
      const Array items = iterate(args.get(0, "") ? *args.get(0, "") : Value::undefined());
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += s;
        out += string_arg(&items[i], "join's items");
        budget.check_size(out.size());
      }
      return Value::from_string(std::move(out));
    }
    if (name == "format") return Value::from_string(py_format(s, args));
    if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum") {
      if (s.empty()) return Value::from_bool(false);
      for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool ok = name == "isdigit"   ? std::isdigit(u)
                        : name == "isalpha" ? std::isalpha(u)
                        : name == "isalnum" ? std::isalnum(u)
                                            : std::isspace(u);
        if (!ok) return Value::from_bool(false);
      }
      return Value::from_bool(true);
    }
    local_fail("'str' object has no method '", name, "' in the sandbox");
  }
  if (object.is_loop && name == "cycle") {
    if (args.positional.empty()) local_fail("no items for cycling given");
    const Value* index0 = object.object->find("index0");
    return args.positional[static_cast<size_t>(index0->integer) % args.positional.size()];
  }
  if (object.kind == Value::Kind::kObject) {
    const Object& o = *object.object;
    if (name == "items" || name == "keys" || name == "values") {
      Array out;
      for (const auto& [key, value] : o.entries) {
        if (name == "items") out.push_back(Value::from_tuple({key_value(o, key), value}));
        if (name == "keys") out.push_back(key_value(o, key));
        if (name == "values") out.push_back(value);
      }
      return Value::from_array(std::move(out));
    }
    if (name == "get") {
      args.check(name, 2, {});
      const Value* key = args.get(0, "");
      if (key == nullptr) local_fail("get expected at least 1 argument, got 0");
      const Value* found = key->is_string() ? o.find(key->text) : nullptr;
      if (found) return *found;
      const Value* fallback = args.get(1, "");
      return fallback ? *fallback : Value::none();
    }
  }
  static const char* const kMutators[] = {"append", "extend",     "insert",  "pop",
                                          "remove", "clear",      "sort",    "reverse",
                                          "update", "setdefault", "popitem", "add"};
  for (const char* m : kMutators) {
    if (name == m) {
      local_fail("access to attribute '", name, "' of '", type_name(object),
                 "' object is unsafe: chat templates cannot modify lists or dicts");
    }
  }
  local_fail("'", type_name(object), "' object has no method '", name, "' in the sandbox");
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

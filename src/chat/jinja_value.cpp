#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace specula::jinja {

namespace {

// Values can nest deeply (a template may wrap a list in a list in a loop)
// or even hold themselves (a namespace assigned into itself): every walk
// over a value goes through this guard instead of recursing without end.
constexpr int kMaxValueDepth = 256;
thread_local int value_depth = 0;

struct DepthGuard {
  DepthGuard() {
    if (++value_depth > kMaxValueDepth) {
      --value_depth;
      fail("a value nested more than ", kMaxValueDepth, " levels deep (or containing itself)");
    }
  }
  ~DepthGuard() { --value_depth; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
};

}  // namespace

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(std::string key, Value value) {
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

Value Value::undefined(std::string name) {
  Value v;
  v.text = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::kNone;
  return v;
}
Value Value::from_bool(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.boolean = b;
  return v;
}
Value Value::from_int(int64_t i) {
  Value v;
  v.kind = Kind::kInt;
  v.integer = i;
  return v;
}
Value Value::from_float(double f) {
  Value v;
  v.kind = Kind::kFloat;
  v.real = f;
  return v;
}
Value Value::from_string(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.text = std::move(s);
  return v;
}
static uint16_t nesting_of(const Array& items) {
  uint16_t deepest = 0;
  for (const Value& item : items) deepest = std::max(deepest, item.nesting);
  if (deepest >= kMaxValueDepth) fail("a value nested more than ", kMaxValueDepth, " levels deep");
  return static_cast<uint16_t>(deepest + 1);
}

Value Value::from_array(Array items) {
  Value v;
  v.nesting = nesting_of(items);
  v.kind = Kind::kArray;
  v.array = std::make_shared<const Array>(std::move(items));
  return v;
}
Value Value::from_tuple(Array items) {
  Value v = from_array(std::move(items));
  v.is_tuple = true;
  return v;
}
Value Value::from_object(Object o) {
  Value v;
  uint16_t deepest = 0;
  for (const auto& entry : o.entries) deepest = std::max(deepest, entry.second.nesting);
  if (deepest >= kMaxValueDepth) fail("a value nested more than ", kMaxValueDepth, " levels deep");
  v.nesting = static_cast<uint16_t>(deepest + 1);
  v.kind = Kind::kObject;
  v.object = std::make_shared<Object>(std::move(o));
  return v;
}

Value mark_user(Value v) {
  if (v.is_string() && !v.text.empty()) v.user = share_spans({{0, v.text.size()}});
  return v;
}

bool contains_namespace(const Value& v) {
  if (v.kind == Value::Kind::kNamespace) return true;
  if (v.kind == Value::Kind::kArray) {
    const DepthGuard guard;
    for (const Value& item : *v.array) {
      if (contains_namespace(item)) return true;
    }
  } else if (v.kind == Value::Kind::kObject) {
    const DepthGuard guard;
    for (const auto& entry : v.object->entries) {
      if (contains_namespace(entry.second)) return true;
    }
  }
  return false;
}

bool has_user_text(const Value& v) {
  if (v.is_string()) return v.user != nullptr;
  const DepthGuard guard;
  if (v.kind == Value::Kind::kArray) {
    for (const Value& item : *v.array) {
      if (has_user_text(item)) return true;
    }
  } else if (v.kind == Value::Kind::kObject || v.kind == Value::Kind::kNamespace) {
    for (const auto& entry : v.object->entries) {
      if (has_user_text(entry.second)) return true;
    }
  }
  return false;
}

Spans shift_spans(const Spans* spans, size_t offset) {
  Spans out;
  if (spans == nullptr) return out;
  for (const auto& [b, e] : *spans) out.emplace_back(b + offset, e + offset);
  return out;
}

Spans clip_spans(const Spans* spans, size_t begin, size_t size) {
  Spans out;
  if (spans == nullptr) return out;
  for (const auto& [b, e] : *spans) {
    const size_t lo = std::max(b, begin), hi = std::min(e, begin + size);
    if (lo < hi) out.emplace_back(lo - begin, hi - begin);
  }
  return out;
}

std::shared_ptr<const Spans> share_spans(Spans spans) {
  if (spans.empty()) return nullptr;
  return std::make_shared<const Spans>(std::move(spans));
}

Value Value::from_json(const nlohmann::ordered_json& json, bool user) {
  const DepthGuard guard;
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return from_bool(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return from_int(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = json.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return from_float(static_cast<double>(u));
      return from_int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return from_float(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return user ? mark_user(from_string(json.get<std::string>()))
                  : from_string(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item, user));
      return from_array(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      o.user_keys = user;
      o.entries.reserve(json.size());
      for (const auto& [key, item] : json.items())
        o.entries.emplace_back(key, from_json(item, user));
      return from_object(std::move(o));
    }
    default:
      fail("chat template input: JSON binary values are not supported");
  }
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.boolean;
    case Value::Kind::kInt:
      return v.integer != 0;
    case Value::Kind::kFloat:
      return v.real != 0.0;
    case Value::Kind::kString:
      return !v.text.empty();
    case Value::Kind::kArray:
      return !v.array->empty();
    case Value::Kind::kObject:
      return !v.object->entries.empty();
    default:
      return true;
  }
}

std::string float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // Shortest digits that read back as f, then Python's layout: positional
  // for exponents -4..15, scientific otherwise.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (negative) out.push_back('-');
  const size_t n_digits = digits.size();
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      const size_t integer_digits = static_cast<size_t>(exponent) + 1;
      for (size_t i = 0; i < std::max(integer_digits, n_digits); ++i) {
        if (i == integer_digits) out.push_back('.');
        out.push_back(i < n_digits ? digits[i] : '0');
      }
      if (n_digits <= integer_digits) out.append(".0");
    } else {
      out.append("0.");
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out.append(digits);
    }
  } else {
    out.push_back(digits[0]);
    if (n_digits > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out.append(exp_buf);
  }
  return out;
}

static void append_repr_string(std::string& out, std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += quote;
}

static void append_repr(std::string& out, const Value& v) {
  if (v.kind == Value::Kind::kString) {
    append_repr_string(out, v.text);
  } else {
    out += to_str(v);
  }
}

std::string to_str(const Value& v) {
  const DepthGuard guard;
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.boolean ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.integer);
    case Value::Kind::kFloat:
      return float_repr(v.real);
    case Value::Kind::kString:
      return v.text;
    case Value::Kind::kArray: {
      std::string out = v.is_tuple ? "(" : "[";
      for (size_t i = 0; i < v.array->size(); ++i) {
        if (i) out += ", ";
        append_repr(out, (*v.array)[i]);
      }
      if (v.is_tuple && v.array->size() == 1) out += ",";
      return out + (v.is_tuple ? ")" : "]");
    }
    case Value::Kind::kObject:
    case Value::Kind::kNamespace: {
      std::string out = v.kind == Value::Kind::kNamespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [key, item] : v.object->entries) {
        if (!first) out += ", ";
        first = false;
        append_repr_string(out, key);
        out += ": ";
        append_repr(out, item);
      }
      return out + (v.kind == Value::Kind::kNamespace ? "}>" : "}");
    }
    case Value::Kind::kMacro:
      return "<Macro>";
    case Value::Kind::kFunction:
      return "<function " + v.text + ">";
  }
  return "";
}

std::string to_repr(const Value& v) {
  std::string out;
  append_repr(out, v);
  return out;
}

static double number_of(const Value& v) {
  if (v.kind == Value::Kind::kBool) return v.boolean ? 1.0 : 0.0;
  if (v.kind == Value::Kind::kInt) return static_cast<double>(v.integer);
  return v.real;
}

bool equal(const Value& a, const Value& b) {
  const DepthGuard guard;
  if (a.is_number() && b.is_number()) {
    if (a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat) {
      const int64_t x = a.kind == Value::Kind::kBool ? a.boolean : a.integer;
      const int64_t y = b.kind == Value::Kind::kBool ? b.boolean : b.integer;
      return x == y;
    }
    return number_of(a) == number_of(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.text == b.text;
    case Value::Kind::kArray: {
      if (a.array->size() != b.array->size()) return false;
      for (size_t i = 0; i < a.array->size(); ++i) {
        if (!equal((*a.array)[i], (*b.array)[i])) return false;
      }
      return true;
    }
    case Value::Kind::kObject: {
      if (a.object->entries.size() != b.object->entries.size()) return false;
      for (const auto& [key, item] : a.object->entries) {
        const Value* other = b.object->find(key);
        if (!other || !equal(item, *other)) return false;
      }
      return true;
    }
    default:
      return a.object == b.object && a.macro == b.macro && a.text == b.text;
  }
}

std::string_view type_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kArray:
      return "list";
    case Value::Kind::kObject:
      return "dict";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kMacro:
      return "Macro";
    case Value::Kind::kFunction:
      return "function";
  }
  return "?";
}

static void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

static void append_json(std::string& out, const Value& v, int indent, int depth) {
  const DepthGuard guard;
  const auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
  };
  switch (v.kind) {
    case Value::Kind::kNone:
      out += "null";
      return;
    case Value::Kind::kBool:
      out += v.boolean ? "true" : "false";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.integer);
      return;
    case Value::Kind::kFloat:
      if (std::isnan(v.real)) {
        out += "NaN";
      } else if (std::isinf(v.real)) {
        out += v.real > 0 ? "Infinity" : "-Infinity";
      } else {
        out += float_repr(v.real);
      }
      return;
    case Value::Kind::kString:
      append_json_string(out, v.text);
      return;
    case Value::Kind::kArray: {
      if (v.array->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < v.array->size(); ++i) {
        if (i) out += indent >= 0 ? "," : ", ";
        if (indent >= 0) newline(depth + 1);
        append_json(out, (*v.array)[i], indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += ']';
      return;
    }
    case Value::Kind::kObject: {
      if (v.object->entries.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.object->entries) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(depth + 1);
        append_json_string(out, key);
        out += ": ";
        append_json(out, item, indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += '}';
      return;
    }
    default:
      fail("Object of type ", type_name(v), " is not JSON serializable");
  }
}

std::string to_json(const Value& v, int indent) {
  std::string out;
  append_json(out, v, indent, 0);
  return out;
}

size_t codepoint_count(std::string_view text) {
  size_t n = 0;
  for (size_t pos = 0; pos < text.size(); pos += utf8::symbol_length(text, pos)) ++n;
  return n;
}

std::vector<std::string_view> split_codepoints(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = utf8::symbol_length(text, pos);
    out.push_back(text.substr(pos, n));
    pos += n;
  }
  return out;
}

}  // namespace specula::jinja

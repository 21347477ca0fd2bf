// The filters a chat template may apply ({{ x | name(args) }}).
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "chat/jinja_builtins_internal.h"
#include "chat/jinja_parser.h"

namespace specula::jinja {

namespace {

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

}  // namespace

bool is_known_filter(std::string_view name) {
  const auto& names = filter_names();
  return std::find(names.begin(), names.end(), name) != names.end();
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
}  // namespace specula::jinja

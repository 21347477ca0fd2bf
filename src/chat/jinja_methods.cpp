// Python's str semantics (code points; ASCII case mapping) and the methods a
// template may call on strings, dicts and the loop object.
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cctype>

#include "chat/jinja_builtins_internal.h"
#include "tokenizer/utf8.h"

namespace specula::jinja {

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

char ascii_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c;
}
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool ascii_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
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

Value strings_to_array(const std::vector<std::string>& parts) {
  Array items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::from_string(p));
  return Value::from_array(std::move(items));
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
      } else if (std::all_of(field.begin(), field.end(),
                             [](unsigned char d) { return std::isdigit(d) != 0; })) {
        // An index of more digits than any argument list is long has no
        // argument (std::stoul would throw out_of_range past size_t: a
        // crash fuzz_chat found).
        if (field.size() <= 9) v = args.get(std::stoul(field), "");
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
}  // namespace specula::jinja

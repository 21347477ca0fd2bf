// Renders a parsed template: scopes, statements and expressions. Builtins
// live in jinja_builtins.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "chat/jinja.h"
#include "chat/jinja_builtins.h"
#include "chat/jinja_parser.h"

namespace specula::jinja {

namespace {

constexpr size_t kNoParent = std::numeric_limits<size_t>::max();

enum class Flow { kNormal, kBreak, kContinue };

class Renderer {
 public:
  Renderer(const Program& program, const Limits& limits) : program_(program), budget_{limits} {}

  Rendered run(const std::vector<std::pair<std::string, Value>>& variables) {
    frames_.push_back({{}, kNoParent});
    for (const auto& [name, value] : variables) assign(name, value);
    Rendered out;
    outputs_.push_back(&out);
    try {
      const Flow flow = exec_body(program_.body);
      if (flow != Flow::kNormal)
        fail("chat template: {% break %} or {% continue %} outside a for loop");
    } catch (const LocalError& e) {
      fail("chat template: ", e.what());
    }
    return out;
  }

 private:
  struct Frame {
    std::vector<std::pair<std::string, Value>> vars;
    size_t parent;
  };

  [[noreturn]] void error_at(size_t offset, const std::string& what) const {
    fail("chat template, ", program_.where(offset), ": ", what);
  }

  // --- scopes ---------------------------------------------------------------

  const Value* lookup(const std::string& name) const {
    for (size_t f = current_; f != kNoParent; f = frames_[f].parent) {
      for (const auto& [key, value] : frames_[f].vars) {
        if (key == name) return &value;
      }
    }
    return nullptr;
  }

  void assign(const std::string& name, Value value) {
    auto& vars = frames_[current_].vars;
    for (auto& [key, v] : vars) {
      if (key == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }

  // A frame for a loop iteration or a macro call; pops itself.
  class FrameGuard {
   public:
    FrameGuard(Renderer& r, size_t parent) : r_(r), saved_(r.current_) {
      r.frames_.push_back({{}, parent});
      r.current_ = r.frames_.size() - 1;
    }
    ~FrameGuard() {
      r_.frames_.pop_back();
      r_.current_ = saved_;
    }

   private:
    Renderer& r_;
    size_t saved_;
  };

  // Appends to the innermost output (the template's, a macro's or a set
  // block's), with `user` the user-text spans of `text`.
  void emit(std::string_view text, const Spans* user = nullptr) {
    Rendered& out = *outputs_.back();
    if (out.text.size() + text.size() > budget_.limits.max_output_bytes) {
      local_fail("the rendered text is over the output limit of ", budget_.limits.max_output_bytes,
                 " bytes");
    }
    for (const auto& span : shift_spans(user, out.text.size())) {
      if (!out.user_spans.empty() && out.user_spans.back().second == span.first) {
        out.user_spans.back().second = span.second;  // adjacent: one span
      } else {
        out.user_spans.push_back(span);
      }
    }
    out.text += text;
  }

  // str(v) with its user spans: exact for a string, all of it for anything
  // else that holds user text (a list printed as Python would).
  static Value as_text(const Value& v) {
    if (v.is_string()) return v;
    Value text = Value::from_string(to_str(v));
    return has_user_text(v) ? mark_user(std::move(text)) : text;
  }

  // --- statements -------------------------------------------------------------

  Flow exec_body(const Body& body) {
    for (const auto& stmt : body) {
      const Flow flow = exec(*stmt);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow exec(const Stmt& s) {
    try {
      return exec_unchecked(s);
    } catch (const LocalError& e) {
      error_at(s.offset, e.what());
    }
  }

  Flow exec_unchecked(const Stmt& s) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        emit(s.text);
        return Flow::kNormal;
      case Stmt::Kind::kOutput: {
        const Value v = as_text(eval(*s.expr));
        emit(v.text, v.user.get());
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (size_t i = 0; i < s.conditions.size(); ++i) {
          if (truthy(eval(*s.conditions[i]))) return exec_body(s.bodies[i]);
        }
        return exec_body(s.else_body);
      case Stmt::Kind::kFor:
        return exec_for(s);
      case Stmt::Kind::kSet: {
        Value v = eval(*s.expr);
        if (!s.attribute.empty()) {
          const Value* target = lookup(s.targets[0]);
          if (target == nullptr || target->kind != Value::Kind::kNamespace) {
            local_fail("cannot assign attribute '", s.attribute, "' on '", s.targets[0],
                       "': only namespace() objects can be assigned to");
          }
          // A namespace holding namespaces could be chained without bound
          // (or hold itself); no chat template needs one.
          if (contains_namespace(v)) local_fail("a namespace attribute cannot hold a namespace");
          target->object->set(s.attribute, std::move(v));
        } else {
          assign_targets(s.targets, v);
        }
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetBlock: {
        assign(s.targets[0], capture(s.bodies[0]));
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro: {
        Value v;
        v.kind = Value::Kind::kMacro;
        v.macro = s.macro;
        v.integer = static_cast<int64_t>(current_);  // the frame it sees
        assign(s.macro->name, std::move(v));
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kScope:
        return exec_body(s.bodies[0]);
    }
    return Flow::kNormal;
  }

  Value capture(const Body& body) {
    Rendered out;
    outputs_.push_back(&out);
    try {
      const Flow flow = exec_body(body);
      outputs_.pop_back();
      if (flow != Flow::kNormal) local_fail("{% break %} or {% continue %} outside a for loop");
    } catch (...) {
      if (!outputs_.empty() && outputs_.back() == &out) outputs_.pop_back();
      throw;
    }
    Value v = Value::from_string(std::move(out.text));
    v.user = share_spans(std::move(out.user_spans));
    return v;
  }

  void assign_targets(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      assign(targets[0], v);
      return;
    }
    const Array items = iterate(v);
    if (items.size() != targets.size()) {
      local_fail("cannot unpack ", items.size(), " values into ", targets.size(), " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
  }

  Flow exec_for(const Stmt& s) {
    const Value iterable = eval(*s.expr);
    if (iterable.is_none()) local_fail("'NoneType' object is not iterable");
    Array items = iterate(iterable);
    if (s.filter) {
      Array kept;
      for (const Value& item : items) {
        budget_.count_iterations(1);
        FrameGuard frame(*this, current_);
        assign_targets(s.targets, item);
        if (truthy(eval(*s.filter))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec_body(s.else_body);
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      budget_.count_iterations(1);
      FrameGuard frame(*this, current_);
      assign_targets(s.targets, items[static_cast<size_t>(i)]);
      Object loop;
      loop.entries = {
          {"index", Value::from_int(i + 1)},
          {"index0", Value::from_int(i)},
          {"revindex", Value::from_int(n - i)},
          {"revindex0", Value::from_int(n - i - 1)},
          {"first", Value::from_bool(i == 0)},
          {"last", Value::from_bool(i == n - 1)},
          {"length", Value::from_int(n)},
          {"depth", Value::from_int(1)},
          {"depth0", Value::from_int(0)},
          {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("previtem")},
          {"nextitem",
           i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("nextitem")},
      };
      Value loop_value = Value::from_object(std::move(loop));
      loop_value.is_loop = true;
      assign("loop", std::move(loop_value));
      if (exec_body(s.bodies[0]) == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  // --- expressions ------------------------------------------------------------

  Value eval(const Expr& e) {
    try {
      return eval_unchecked(e);
    } catch (const LocalError& err) {
      error_at(e.offset, err.what());
    }
  }

  [[noreturn]] void undefined_error(const Value& v) {
    local_fail("'", v.text.empty() ? "value" : v.text, "' is undefined");
  }

  // The sandbox: Python's internal attributes (__class__, __globals__, ...)
  // are what template escapes go through; none is reachable here.
  static void check_attribute_name(const Value& object, const std::string& name) {
    if (name.starts_with("__")) {
      local_fail("access to attribute '", name, "' of '", type_name(object), "' object is unsafe");
    }
  }

  CallArgs eval_args(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
    for (const auto& [key, value] : e.kwargs) args.keyword.emplace_back(key, eval(*value));
    return args;
  }

  Value eval_unchecked(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName: {
        const Value* v = lookup(e.name);
        if (v) return *v;
        if (is_global_function(e.name)) {
          Value f;
          f.kind = Value::Kind::kFunction;
          f.text = e.name;
          return f;
        }
        return Value::undefined(e.name);
      }
      case Expr::Kind::kList:
      case Expr::Kind::kTuple: {
        Array items;
        for (const auto& item : e.args) items.push_back(eval(*item));
        return e.kind == Expr::Kind::kTuple ? Value::from_tuple(std::move(items))
                                            : Value::from_array(std::move(items));
      }
      case Expr::Kind::kDict: {
        Object o;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value key = eval(*e.args[i]);
          if (!key.is_string()) local_fail("dict keys must be strings here, not ", type_name(key));
          o.set(key.text, eval(*e.args[i + 1]));
        }
        return Value::from_object(std::move(o));
      }
      case Expr::Kind::kAttribute: {
        const Value object = eval(*e.args[0]);
        if (object.is_undefined()) undefined_error(object);
        check_attribute_name(object, e.name);
        if (object.is_object()) {
          const Value* found = object.object->find(e.name);
          if (found) return *found;
        }
        return Value::undefined(e.name);
      }
      case Expr::Kind::kIndex:
        return index(eval(*e.args[0]), eval(*e.args[1]));
      case Expr::Kind::kSlice:
        return slice(e);
      case Expr::Kind::kCall:
        return call(e);
      case Expr::Kind::kFilter: {
        const Value input = eval(*e.args[0]);
        CallArgs args = eval_args(e, 1);
        return keep_user_text(apply_filter(e.name, input, args, budget_), input, args, e.name);
      }
      case Expr::Kind::kTest: {
        const Value subject = eval(*e.args[0]);
        return Value::from_bool(apply_test(e.name, subject, eval_args(e, 1)) != e.negated);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value::from_bool(!truthy(v));
        if (v.is_undefined()) undefined_error(v);
        if (v.kind == Value::Kind::kInt || v.kind == Value::Kind::kBool) {
          const int64_t x = v.kind == Value::Kind::kBool ? v.boolean : v.integer;
          if (e.name == "-" && x == std::numeric_limits<int64_t>::min())
            local_fail("integer overflow");
          return Value::from_int(e.name == "-" ? -x : x);
        }
        if (v.kind == Value::Kind::kFloat)
          return Value::from_float(e.name == "-" ? -v.real : v.real);
        local_fail("bad operand type for unary ", e.name, ": '", type_name(v), "'");
      }
      case Expr::Kind::kBinary:
        return binary(e);
      case Expr::Kind::kCompare: {
        Value left = eval(*e.args[0]);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.args[i + 1]);
          const std::string& op = e.ops[i];
          bool ok;
          if (op == "==")
            ok = equal(left, right);
          else if (op == "!=")
            ok = !equal(left, right);
          else if (op == "in")
            ok = contains(right, left);
          else if (op == "not in")
            ok = !contains(right, left);
          else {
            if (left.is_undefined()) undefined_error(left);
            if (right.is_undefined()) undefined_error(right);
            const int c = compare(left, right);
            ok = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
          }
          if (!ok) return Value::from_bool(false);
          left = std::move(right);
        }
        return Value::from_bool(true);
      }
      case Expr::Kind::kConditional:
        if (truthy(eval(*e.args[1]))) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined();
    }
    return Value::undefined();
  }

  static int64_t normalize_index(int64_t i, size_t size) {
    return i < 0 ? i + static_cast<int64_t>(size) : i;
  }

  Value index(const Value& object, const Value& key) {
    if (object.is_undefined()) undefined_error(object);
    if (object.is_object()) {
      if (key.is_string()) {
        const Value* found = object.object->find(key.text);
        if (found) return *found;
      }
      return Value::undefined(key.is_string() ? key.text : to_str(key));
    }
    if ((object.is_array() || object.is_string()) &&
        (key.kind == Value::Kind::kInt || key.kind == Value::Kind::kBool)) {
      const int64_t raw = key.kind == Value::Kind::kBool ? key.boolean : key.integer;
      if (object.is_array()) {
        const int64_t i = normalize_index(raw, object.array->size());
        if (i < 0 || i >= static_cast<int64_t>(object.array->size())) return Value::undefined();
        return (*object.array)[static_cast<size_t>(i)];
      }
      const auto pieces = split_codepoints(object.text);
      const int64_t i = normalize_index(raw, pieces.size());
      if (i < 0 || i >= static_cast<int64_t>(pieces.size())) return Value::undefined();
      const std::string_view piece = pieces[static_cast<size_t>(i)];
      Value c = Value::from_string(std::string(piece));
      c.user = share_spans(clip_spans(
          object.user.get(), static_cast<size_t>(piece.data() - object.text.data()), piece.size()));
      return c;
    }
    return Value::undefined();
  }

  Value slice(const Expr& e) {
    const Value object = eval(*e.args[0]);
    if (object.is_undefined()) undefined_error(object);
    std::optional<int64_t> bounds[3];
    for (int i = 0; i < 3; ++i) {
      if (!e.args[i + 1]) continue;
      const Value v = eval(*e.args[i + 1]);
      if (v.is_none()) continue;
      if (v.kind != Value::Kind::kInt)
        local_fail("slice indices must be integers or None, not ", type_name(v));
      bounds[i] = v.integer;
    }
    const int64_t step = bounds[2].value_or(1);
    if (step == 0) local_fail("slice step cannot be zero");
    std::vector<std::string_view> pieces;
    size_t n;
    if (object.is_string()) {
      pieces = split_codepoints(object.text);
      n = pieces.size();
    } else if (object.is_array()) {
      n = object.array->size();
    } else {
      local_fail("'", type_name(object), "' object is not subscriptable");
    }
    const int64_t size = static_cast<int64_t>(n);
    // Python's slice.indices().
    const auto clamp = [&](std::optional<int64_t> b, int64_t fallback) {
      if (!b) return fallback;
      int64_t i = *b < 0 ? *b + size : *b;
      if (step > 0) return std::clamp<int64_t>(i, 0, size);
      return std::clamp<int64_t>(i, -1, size - 1);
    };
    const int64_t start = clamp(bounds[0], step > 0 ? 0 : size - 1);
    const int64_t stop = clamp(bounds[1], step > 0 ? size : -1);
    std::string text;
    Array items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (object.is_string()) {
        text += pieces[static_cast<size_t>(i)];
      } else {
        items.push_back((*object.array)[static_cast<size_t>(i)]);
      }
    }
    if (!object.is_string()) return Value::from_array(std::move(items));
    Value sliced = Value::from_string(std::move(text));
    if (object.user && !sliced.text.empty()) {
      if (step == 1) {
        const auto begin =
            static_cast<size_t>(pieces[static_cast<size_t>(start)].data() - object.text.data());
        sliced.user = share_spans(clip_spans(object.user.get(), begin, sliced.text.size()));
      } else {
        sliced = mark_user(std::move(sliced));
      }
    }
    return sliced;
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::Kind::kAttribute) {
      const Value object = eval(*callee.args[0]);
      if (object.is_undefined()) undefined_error(object);
      check_attribute_name(object, callee.name);
      if (object.is_object()) {  // a macro stored in a dict or namespace
        const Value* member = object.object->find(callee.name);
        if (member && member->kind == Value::Kind::kMacro)
          return call_macro(*member, eval_args(e, 1), e.offset);
      }
      CallArgs args = eval_args(e, 1);
      return keep_user_text(call_method(object, callee.name, args, budget_), object, args,
                            callee.name);
    }
    const Value f = eval(callee);
    if (f.kind == Value::Kind::kMacro) return call_macro(f, eval_args(e, 1), e.offset);
    if (f.kind == Value::Kind::kFunction) {
      CallArgs args = eval_args(e, 1);
      if (f.text == "raise_exception") {
        const std::string message = args.positional.empty() ? "" : to_str(args.positional[0]);
        throw TemplateRaised(
            str_cat("chat template raised an error (", program_.where(e.offset), "): ", message),
            message);
      }
      return call_global(f.text, args, budget_);
    }
    if (f.is_undefined()) undefined_error(f);
    local_fail("'", type_name(f), "' object is not callable");
  }

  Value call_macro(const Value& f, CallArgs args, size_t offset) {
    const MacroDefinition& m = *f.macro;
    if (call_depth_ >= budget_.limits.max_call_depth) {
      local_fail("macro calls nested deeper than ", budget_.limits.max_call_depth,
                 " (runaway recursion?)");
    }
    if (args.positional.size() > m.params.size()) {
      local_fail("macro '", m.name, "' takes ", m.params.size(), " arguments (",
                 args.positional.size(), " given)");
    }
    size_t parent = static_cast<size_t>(f.integer);
    if (parent >= frames_.size()) parent = 0;
    ++call_depth_;
    struct DepthRestore {
      int& depth;
      ~DepthRestore() { --depth; }
    } restore{call_depth_};
    FrameGuard frame(*this, parent);
    for (const auto& [key, value] : args.keyword) {
      if (std::find(m.params.begin(), m.params.end(), key) == m.params.end()) {
        local_fail("macro '", m.name, "' has no parameter named '", key, "'");
      }
    }
    for (size_t i = 0; i < m.params.size(); ++i) {
      const Value* given = args.get(i, m.params[i]);
      if (given) {
        assign(m.params[i], *given);
      } else if (m.defaults[i]) {
        assign(m.params[i], eval(*m.defaults[i]));
      } else {
        assign(m.params[i], Value::undefined(m.params[i]));
      }
    }
    (void)offset;
    return capture(m.body);
  }

  Value concat(const Value& a, const Value& b) {
    budget_.check_size(a.text.size() + b.text.size());
    Value v = Value::from_string(a.text + b.text);
    if (a.user || b.user) {
      Spans spans = a.user ? *a.user : Spans{};
      for (const auto& span : shift_spans(b.user.get(), a.text.size())) spans.push_back(span);
      v.user = share_spans(std::move(spans));
    }
    return v;
  }

  // A builtin's result keeps track of user text: substrings (trim, strip)
  // and case changes keep exact spans; any other string made from user text
  // is user text as a whole, and so are the new strings of a list it returns
  // (split). Values passed through unchanged carry their own spans.
  static Value keep_user_text(Value result, const Value& input, const CallArgs& args,
                              std::string_view name) {
    if (result.user) return result;
    bool args_user = false;
    for (const Value& v : args.positional) args_user = args_user || has_user_text(v);
    for (const auto& kv : args.keyword) args_user = args_user || has_user_text(kv.second);
    if (!args_user && !has_user_text(input)) return result;
    if (result.is_string()) {
      if (input.is_string() && !args_user) {
        if (name == "trim" || name == "strip" || name == "lstrip" || name == "rstrip") {
          const size_t begin = input.text.find(result.text);  // the first match is the kept part
          result.user = share_spans(clip_spans(input.user.get(), begin, result.text.size()));
          return result;
        }
        if (name == "upper" || name == "lower" || name == "capitalize" || name == "title" ||
            name == "safe" || name == "string") {
          result.user = input.user;  // ASCII case mapping keeps every byte in place
          return result;
        }
      }
      return mark_user(std::move(result));
    }
    if (result.is_array() && !result.is_tuple) {
      Array items = *result.array;
      for (Value& item : items) {
        if (item.is_string() && !item.user) item = mark_user(std::move(item));
      }
      return Value::from_array(std::move(items));
    }
    return result;
  }

  static bool checked_int(int64_t a, int64_t b, const std::string& op, int64_t* out) {
    if (op == "+") return !__builtin_add_overflow(a, b, out);
    if (op == "-") return !__builtin_sub_overflow(a, b, out);
    return !__builtin_mul_overflow(a, b, out);
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value left = eval(*e.args[0]);
      return truthy(left) ? eval(*e.args[1]) : left;
    }
    if (op == "or") {
      Value left = eval(*e.args[0]);
      return truthy(left) ? left : eval(*e.args[1]);
    }
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    if (op == "~") {
      return concat(as_text(a), as_text(b));
    }
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    const bool ints = (a.kind == Value::Kind::kInt || a.kind == Value::Kind::kBool) &&
                      (b.kind == Value::Kind::kInt || b.kind == Value::Kind::kBool);
    const int64_t ia = a.kind == Value::Kind::kBool ? a.boolean : a.integer;
    const int64_t ib = b.kind == Value::Kind::kBool ? b.boolean : b.integer;
    const double fa = a.kind == Value::Kind::kFloat ? a.real : static_cast<double>(ia);
    const double fb = b.kind == Value::Kind::kFloat ? b.real : static_cast<double>(ib);
    const bool numbers = a.is_number() && b.is_number();
    if (op == "+" || op == "-" || op == "*") {
      if (ints) {
        int64_t r;
        if (!checked_int(ia, ib, op, &r)) local_fail("integer overflow in ", op);
        return Value::from_int(r);
      }
      if (numbers) return Value::from_float(op == "+" ? fa + fb : op == "-" ? fa - fb : fa * fb);
      if (op == "+" && a.is_string() && b.is_string()) {
        return concat(a, b);
      }
      if (op == "+" && a.is_array() && b.is_array()) {
        budget_.check_size(a.array->size() + b.array->size());
        Array items = *a.array;
        items.insert(items.end(), b.array->begin(), b.array->end());
        return Value::from_array(std::move(items));
      }
      if (op == "*" && (a.is_string() || a.is_array() || b.is_string() || b.is_array())) {
        const Value& seq = a.is_string() || a.is_array() ? a : b;
        const Value& count = &seq == &a ? b : a;
        if (count.kind != Value::Kind::kInt && count.kind != Value::Kind::kBool) {
          local_fail("can't multiply sequence by non-int of type '", type_name(count), "'");
        }
        const int64_t times =
            std::max<int64_t>(0, count.kind == Value::Kind::kBool ? count.boolean : count.integer);
        const size_t unit = seq.is_string() ? seq.text.size() : seq.array->size();
        if (unit && static_cast<uint64_t>(times) > budget_.limits.max_output_bytes / unit) {
          budget_.check_size(budget_.limits.max_output_bytes + 1);
        }
        if (seq.is_string()) {
          std::string out;
          for (int64_t i = 0; i < times; ++i) out += seq.text;
          return Value::from_string(std::move(out));
        }
        Array items;
        for (int64_t i = 0; i < times; ++i)
          items.insert(items.end(), seq.array->begin(), seq.array->end());
        return Value::from_array(std::move(items));
      }
    } else if (numbers) {
      if (op == "/") {
        if (fb == 0) local_fail("division by zero");
        return Value::from_float(fa / fb);
      }
      if (op == "//" || op == "%") {
        if (ints) {
          if (ib == 0) local_fail("integer division or modulo by zero");
          if (ia == std::numeric_limits<int64_t>::min() && ib == -1) local_fail("integer overflow");
          int64_t q = ia / ib, r = ia % ib;
          if (r != 0 && ((r < 0) != (ib < 0))) {
            --q;
            r += ib;
          }
          return Value::from_int(op == "//" ? q : r);
        }
        if (fb == 0) local_fail("float division or modulo by zero");
        const double q = std::floor(fa / fb);
        return Value::from_float(op == "//" ? q : fa - q * fb);
      }
      if (op == "**") {
        if (ints && ib >= 0) {
          if (ia == 0 || ia == 1) return Value::from_int(ib == 0 ? 1 : ia);
          if (ia == -1) return Value::from_int(ib % 2 == 0 ? 1 : -1);
          int64_t r = 1;  // |ia| >= 2 overflows within 63 steps
          for (int64_t i = 0; i < ib; ++i) {
            if (__builtin_mul_overflow(r, ia, &r)) local_fail("integer overflow in **");
          }
          return Value::from_int(r);
        }
        return Value::from_float(std::pow(fa, fb));
      }
    }
    local_fail("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b),
               "'");
  }

  const Program& program_;
  Budget budget_;
  std::vector<Frame> frames_;
  size_t current_ = 0;
  std::vector<Rendered*> outputs_;
  int call_depth_ = 0;
};

}  // namespace

Template::Template(std::string_view source, Limits limits)
    : limits_(limits), program_(std::make_unique<Program>(parse_program(source, limits_))) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const std::vector<std::pair<std::string, Value>>& variables) const {
  return Renderer(*program_, limits_).run(variables).text;
}

Rendered Template::render_with_user_spans(
    const std::vector<std::pair<std::string, Value>>& variables) const {
  return Renderer(*program_, limits_).run(variables);
}

}  // namespace specula::jinja

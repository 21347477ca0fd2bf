#include "chat/jinja_parser.h"

#include <algorithm>

#include "chat/jinja_lexer.h"
#include "core/error.h"

namespace specula::jinja {

std::string Program::where(size_t offset) const {
  const auto it = std::upper_bound(line_starts.begin(), line_starts.end(), offset);
  const size_t line = static_cast<size_t>(it - line_starts.begin());
  const size_t column = offset - line_starts[line - 1] + 1;
  return str_cat("line ", line, ", column ", column);
}

namespace {

class Parser {
 public:
  Parser(const Program& program, std::vector<Token> tokens, const Limits& limits)
      : program_(program), tokens_(std::move(tokens)), limits_(limits) {}

  Body parse_all() {
    std::vector<std::string> stop;
    Body body = parse_body({}, stop);
    return body;
  }

 private:
  struct DepthGuard {
    Parser& parser;
    explicit DepthGuard(Parser& p, size_t offset) : parser(p) {
      if (++parser.depth_ > parser.limits_.max_nesting) {
        parser.error(offset, str_cat("nesting deeper than ", parser.limits_.max_nesting,
                                     " (blocks and expressions); simplify the template"));
      }
    }
    ~DepthGuard() { --parser.depth_; }
  };

  [[noreturn]] void error(size_t offset, const std::string& what) const {
    fail("chat template, ", program_.where(offset), ": ", what);
  }
  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kOp && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kName && peek(ahead).text == name;
  }
  std::string describe(const Token& t) const {
    switch (t.kind) {
      case Token::Kind::kEnd:
        return "the end of the template";
      case Token::Kind::kVarEnd:
        return "'}}'";
      case Token::Kind::kBlockEnd:
        return "'%}'";
      case Token::Kind::kText:
        return "text";
      case Token::Kind::kString:
        return "a string";
      default:
        return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) error(peek().offset, str_cat("expected '", op, "', found ", describe(peek())));
    next();
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::kName)
      error(peek().offset, str_cat("expected a name, found ", describe(peek())));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != Token::Kind::kBlockEnd)
      error(peek().offset, str_cat("expected '%}', found ", describe(peek())));
    next();
  }

  // Statements until a {% name %} in `stop` (left unconsumed after the
  // block begin; `stopped` receives which) or the end of the template.
  Body parse_body(const std::vector<std::string>& stop, std::vector<std::string>& stopped) {
    Body body;
    while (true) {
      const Token& t = peek();
      if (t.kind == Token::Kind::kEnd) {
        if (!stop.empty()) {
          error(t.offset, str_cat("unexpected end of template: expected {% ", stop.back(), " %}"));
        }
        return body;
      }
      if (t.kind == Token::Kind::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->offset = t.offset;
        s->text = t.text;
        next();
        body.push_back(std::move(s));
      } else if (t.kind == Token::Kind::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->offset = next().offset;
        s->expr = parse_expression();
        if (peek().kind != Token::Kind::kVarEnd)
          error(peek().offset, str_cat("expected '}}', found ", describe(peek())));
        next();
        body.push_back(std::move(s));
      } else if (t.kind == Token::Kind::kBlockBegin) {
        const Token& keyword = peek(1);
        if (keyword.kind == Token::Kind::kName &&
            std::find(stop.begin(), stop.end(), keyword.text) != stop.end()) {
          next();
          stopped.push_back(next().text);
          return body;
        }
        body.push_back(parse_statement());
      } else {
        error(t.offset, str_cat("unexpected ", describe(t)));
      }
    }
  }

  StmtPtr parse_statement() {
    const size_t begin = next().offset;
    DepthGuard guard(*this, begin);
    if (peek().kind != Token::Kind::kName)
      error(peek().offset, "expected a statement name after '{%'");
    const std::string keyword = peek().text;
    const size_t offset = next().offset;
    auto s = std::make_unique<Stmt>();
    s->offset = offset;
    std::vector<std::string> stopped;
    if (keyword == "if") {
      s->kind = Stmt::Kind::kIf;
      s->conditions.push_back(parse_expression());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, stopped));
        const std::string which = stopped.back();
        if (which == "elif") {
          s->conditions.push_back(parse_expression());
          expect_block_end();
        } else if (which == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, stopped);
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (keyword == "for") {
      s->kind = Stmt::Kind::kFor;
      s->targets.push_back(expect_name());
      while (is_op(",")) {
        next();
        s->targets.push_back(expect_name());
      }
      if (!is_name("in"))
        error(peek().offset, str_cat("expected 'in' in the for loop, found ", describe(peek())));
      next();
      s->expr = parse_or_test();  // no conditional expression: "if" filters
      if (is_name("if")) {
        next();
        s->filter = parse_expression();
      }
      if (is_name("recursive")) error(peek().offset, "recursive for loops are not supported");
      expect_block_end();
      s->bodies.push_back(parse_body({"else", "endfor"}, stopped));
      if (stopped.back() == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, stopped);
      }
      expect_block_end();
    } else if (keyword == "set") {
      std::string first = expect_name();
      if (is_op(".")) {
        next();
        s->kind = Stmt::Kind::kSet;
        s->targets.push_back(first);
        s->attribute = expect_name();
        expect_op("=");
        s->expr = parse_tuple_expression();
        expect_block_end();
      } else if (is_op("=") || is_op(",")) {
        s->kind = Stmt::Kind::kSet;
        s->targets.push_back(first);
        while (is_op(",")) {
          next();
          s->targets.push_back(expect_name());
        }
        expect_op("=");
        s->expr = parse_tuple_expression();
        expect_block_end();
      } else {
        s->kind = Stmt::Kind::kSetBlock;
        s->targets.push_back(first);
        if (is_op("|")) error(peek().offset, "filters on {% set %} blocks are not supported");
        expect_block_end();
        s->bodies.push_back(parse_body({"endset"}, stopped));
        expect_block_end();
      }
    } else if (keyword == "macro") {
      s->kind = Stmt::Kind::kMacro;
      auto macro = std::make_shared<MacroDefinition>();
      macro->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        macro->params.push_back(expect_name());
        if (is_op("=")) {
          next();
          macro->defaults.push_back(parse_expression());
        } else {
          macro->defaults.push_back(nullptr);
        }
        if (!is_op(",")) break;
        next();
      }
      expect_op(")");
      expect_block_end();
      macro->body = parse_body({"endmacro"}, stopped);
      if (peek().kind == Token::Kind::kName) next();  // {% endmacro name %}
      expect_block_end();
      s->macro = std::move(macro);
    } else if (keyword == "break" || keyword == "continue") {
      s->kind = keyword == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_block_end();
    } else if (keyword == "generation") {
      // Hugging Face's AssistantTracker tag: renders its body in place.
      s->kind = Stmt::Kind::kScope;
      expect_block_end();
      s->bodies.push_back(parse_body({"endgeneration"}, stopped));
      expect_block_end();
    } else {
      error(offset, str_cat("unsupported statement {% ", keyword,
                            " %} (supported: if, for, set, macro, break, continue, generation)"));
    }
    return s;
  }

  ExprPtr make(Expr::Kind kind, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }

  // "a, b" without brackets at the top of {% set %} makes a tuple.
  ExprPtr parse_tuple_expression() {
    const size_t offset = peek().offset;
    ExprPtr first = parse_expression();
    if (!is_op(",")) return first;
    auto tuple = make(Expr::Kind::kTuple, offset);
    tuple->args.push_back(std::move(first));
    while (is_op(",")) {
      next();
      if (peek().kind == Token::Kind::kBlockEnd) break;
      tuple->args.push_back(parse_expression());
    }
    return tuple;
  }

  ExprPtr parse_expression() {
    DepthGuard guard(*this, peek().offset);
    ExprPtr value = parse_or_test();
    while (is_name("if")) {
      const size_t offset = next().offset;
      auto cond = make(Expr::Kind::kConditional, offset);
      cond->args.push_back(std::move(value));
      cond->args.push_back(parse_or_test());
      if (is_name("else")) {
        next();
        cond->args.push_back(parse_expression());
      } else {
        cond->args.push_back(nullptr);
      }
      value = std::move(cond);
    }
    return value;
  }

  ExprPtr binary(const std::string& op, ExprPtr left, ExprPtr right, size_t offset) {
    auto e = make(Expr::Kind::kBinary, offset);
    e->name = op;
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or_test() {
    ExprPtr left = parse_and_test();
    while (is_name("or")) {
      const size_t offset = next().offset;
      left = binary("or", std::move(left), parse_and_test(), offset);
    }
    return left;
  }
  ExprPtr parse_and_test() {
    ExprPtr left = parse_not_test();
    while (is_name("and")) {
      const size_t offset = next().offset;
      left = binary("and", std::move(left), parse_not_test(), offset);
    }
    return left;
  }
  ExprPtr parse_not_test() {
    if (is_name("not")) {
      DepthGuard guard(*this, peek().offset);
      auto e = make(Expr::Kind::kUnary, next().offset);
      e->name = "not";
      e->args.push_back(parse_not_test());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    const size_t offset = peek().offset;
    ExprPtr first = parse_math1();
    std::unique_ptr<Expr> cmp;
    while (true) {
      std::string op;
      if (peek().kind == Token::Kind::kOp &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
           peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::kCompare, offset);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      left = binary(t.text, std::move(left), parse_concat(), t.offset);
    }
    return left;
  }
  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      const size_t offset = next().offset;
      left = binary("~", std::move(left), parse_math2(), offset);
    }
    return left;
  }
  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      left = binary(t.text, std::move(left), parse_pow(), t.offset);
    }
    return left;
  }
  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      const size_t offset = next().offset;
      left = binary("**", std::move(left), parse_unary(true), offset);
    }
    return left;
  }
  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this, peek().offset);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& t = next();
      node = make(Expr::Kind::kUnary, t.offset);
      node->name = t.text;
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_postfix(parse_primary());
    }
    if (with_filter) node = parse_filters_and_tests(std::move(node));
    return node;
  }

  void parse_call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Token::Kind::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) error(peek().offset, "positional argument after a keyword argument");
        e.args.push_back(parse_expression());
      }
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const size_t offset = next().offset;
        auto e = make(Expr::Kind::kAttribute, offset);
        if (peek().kind == Token::Kind::kInt) {  // foo.0 is foo[0]
          e->kind = Expr::Kind::kIndex;
          e->args.push_back(std::move(node));
          auto index = make(Expr::Kind::kLiteral, peek().offset);
          index->value = Value::from_int(next().integer);
          e->args.push_back(std::move(index));
        } else {
          e->name = expect_name();
          e->args.push_back(std::move(node));
        }
        node = std::move(e);
      } else if (is_op("[")) {
        const size_t offset = next().offset;
        node = parse_subscript(std::move(node), offset);
      } else if (is_op("(")) {
        auto e = make(Expr::Kind::kCall, peek().offset);
        e->args.push_back(std::move(node));
        parse_call_args(*e);
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object, size_t offset) {
    ExprPtr parts[3];
    int colons = 0;
    for (int i = 0; i < 3; ++i) {
      if (!is_op(":") && !is_op("]")) parts[i] = parse_expression();
      if (is_op(":") && i < 2) {
        next();
        ++colons;
      } else {
        break;
      }
    }
    expect_op("]");
    if (colons == 0) {
      if (!parts[0]) error(offset, "empty subscript []");
      auto e = make(Expr::Kind::kIndex, offset);
      e->args.push_back(std::move(object));
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(Expr::Kind::kSlice, offset);
    e->args.push_back(std::move(object));
    for (auto& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  ExprPtr parse_filters_and_tests(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        next();
        const size_t offset = peek().offset;
        auto e = make(Expr::Kind::kFilter, offset);
        e->name = expect_name();
        while (is_op(".")) {  // dotted filter names do not exist here; keep the error clear
          error(peek().offset, "dotted filter names are not supported");
        }
        if (!is_known_filter(e->name)) error(offset, str_cat("unknown filter '", e->name, "'"));
        e->args.push_back(std::move(node));
        if (is_op("(")) parse_call_args(*e);
        node = std::move(e);
      } else if (is_name("is")) {
        next();
        const size_t offset = peek().offset;
        auto e = make(Expr::Kind::kTest, offset);
        if (is_name("not")) {
          next();
          e->negated = true;
        }
        e->name = expect_name();
        if (!is_known_test(e->name)) error(offset, str_cat("unknown test '", e->name, "'"));
        e->args.push_back(std::move(node));
        if (is_op("(")) {
          parse_call_args(*e);
        } else if (starts_test_argument()) {
          e->args.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  bool starts_test_argument() const {
    const Token& t = peek();
    if (t.kind == Token::Kind::kString || t.kind == Token::Kind::kInt ||
        t.kind == Token::Kind::kFloat)
      return true;
    if (t.kind == Token::Kind::kOp) return t.text == "[" || t.text == "{";
    if (t.kind == Token::Kind::kName) {
      static const char* const kStop[] = {"else", "or", "and", "is", "in", "not", "if"};
      return std::none_of(std::begin(kStop), std::end(kStop),
                          [&](const char* s) { return t.text == s; });
    }
    return false;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this, peek().offset);
    const Token& t = peek();
    const size_t offset = t.offset;
    switch (t.kind) {
      case Token::Kind::kName: {
        next();
        auto e = make(Expr::Kind::kLiteral, offset);
        if (t.text == "true" || t.text == "True") {
          e->value = Value::from_bool(true);
        } else if (t.text == "false" || t.text == "False") {
          e->value = Value::from_bool(false);
        } else if (t.text == "none" || t.text == "None") {
          e->value = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case Token::Kind::kString: {
        std::string text = next().text;
        while (peek().kind == Token::Kind::kString) text += next().text;  // "a" "b"
        auto e = make(Expr::Kind::kLiteral, offset);
        e->value = Value::from_string(std::move(text));
        return e;
      }
      case Token::Kind::kInt: {
        auto e = make(Expr::Kind::kLiteral, offset);
        e->value = Value::from_int(next().integer);
        return e;
      }
      case Token::Kind::kFloat: {
        auto e = make(Expr::Kind::kLiteral, offset);
        e->value = Value::from_float(next().real);
        return e;
      }
      case Token::Kind::kOp:
        if (t.text == "(") {
          next();
          if (is_op(")")) {
            next();
            return make(Expr::Kind::kTuple, offset);
          }
          ExprPtr first = parse_expression();
          if (is_op(")")) {
            next();
            return first;
          }
          auto tuple = make(Expr::Kind::kTuple, offset);
          tuple->args.push_back(std::move(first));
          while (is_op(",")) {
            next();
            if (is_op(")")) break;
            tuple->args.push_back(parse_expression());
          }
          expect_op(")");
          return tuple;
        }
        if (t.text == "[") {
          next();
          auto list = make(Expr::Kind::kList, offset);
          while (!is_op("]")) {
            list->args.push_back(parse_expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("]");
          return list;
        }
        if (t.text == "{") {
          next();
          auto dict = make(Expr::Kind::kDict, offset);
          while (!is_op("}")) {
            dict->args.push_back(parse_expression());
            expect_op(":");
            dict->args.push_back(parse_expression());
            if (!is_op(",")) break;
            next();
          }
          expect_op("}");
          return dict;
        }
        break;
      default:
        break;
    }
    error(offset, str_cat("expected an expression, found ", describe(t)));
  }

  const Program& program_;
  std::vector<Token> tokens_;
  const Limits& limits_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Program parse_program(std::string_view source, const Limits& limits) {
  if (source.size() > limits.max_template_bytes) {
    fail("chat template: ", source.size(), " bytes is more than the limit of ",
         limits.max_template_bytes, " bytes");
  }
  Program program;
  // Jinja reads \r\n and \r as \n and drops one trailing newline.
  program.source.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      program.source += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      program.source += source[i];
    }
  }
  if (!program.source.empty() && program.source.back() == '\n') program.source.pop_back();
  program.line_starts.push_back(0);
  for (size_t i = 0; i < program.source.size(); ++i) {
    if (program.source[i] == '\n') program.line_starts.push_back(i + 1);
  }
  const size_t raw = program.source.find("raw");
  if (raw != std::string::npos) {
    // {% raw %} is rare in chat templates; say so rather than misread it.
    for (size_t open = program.source.find("{%"); open != std::string::npos;
         open = program.source.find("{%", open + 2)) {
      size_t p = open + 2;
      if (p < program.source.size() && (program.source[p] == '-' || program.source[p] == '+')) ++p;
      while (p < program.source.size() && is_space(program.source[p])) ++p;
      if (program.source.compare(p, 3, "raw") == 0 &&
          (p + 3 >= program.source.size() || !is_name_char(program.source[p + 3]))) {
        fail("chat template, ", program.where(open), ": {% raw %} blocks are not supported");
      }
    }
  }
  std::vector<Token> tokens = lex_program(program);
  program.body = Parser(program, std::move(tokens), limits).parse_all();
  return program;
}

}  // namespace specula::jinja

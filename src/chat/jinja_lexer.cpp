#include "chat/jinja_lexer.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace specula::jinja {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

namespace {

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}

class Lexer {
 public:
  Lexer(const Program& program) : program_(program), src_(program.source) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t open = src_.size();
      for (const char* opener : {"{{", "{%", "{#"}) {
        open = std::min(open, src_.find(opener, pos));
      }
      if (open == std::string_view::npos || open >= src_.size()) {
        push_text(src_.substr(pos), pos);
        break;
      }
      std::string_view text = src_.substr(pos, open - pos);
      const char type = src_[open + 1];
      const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      if (sign == '-') {
        size_t end = text.size();
        while (end > 0 && is_space(text[end - 1])) --end;
        text = text.substr(0, end);
      } else if (sign != '+' && type != '{') {
        // lstrip_blocks: a block or comment tag alone on its line takes the
        // line's indentation with it.
        const size_t line_pos =
            text.rfind('\n') == std::string_view::npos ? 0 : text.rfind('\n') + 1;
        if ((line_pos > 0 || line_starting) && line_pos < text.size() &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_pos), text.end(),
                        is_space)) {
          text = text.substr(0, line_pos);
        }
      }
      push_text(text, pos);
      pos = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (type == '#') {
        pos = lex_comment_end(open, pos);
      } else {
        pos = lex_tag(open, pos, type == '{');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({Token::Kind::kEnd, src_.size(), {}});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(size_t offset, const std::string& what) const {
    fail("chat template, ", program_.where(offset), ": ", what);
  }

  void push_text(std::string_view text, size_t offset) {
    if (!text.empty()) tokens_.push_back({Token::Kind::kText, offset, std::string(text)});
  }

  // After a comment or block end: trim_blocks eats one newline; "-" eats all
  // whitespace; "+" keeps everything.
  size_t after_end(size_t pos, char sign, bool is_block) const {
    if (sign == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (sign != '+' && is_block && pos < src_.size() && src_[pos] == '\n') {
      ++pos;
    }
    return pos;
  }

  size_t lex_comment_end(size_t open, size_t pos) const {
    const size_t close = src_.find("#}", pos);
    if (close == std::string_view::npos) error(open, "missing end of comment tag '#}'");
    const char sign =
        close > pos && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : '\0';
    return after_end(close + 2, sign, true);
  }

  size_t lex_tag(size_t open, size_t pos, bool is_variable) {
    tokens_.push_back({is_variable ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, open, {}});
    int depth = 0;
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) {
        error(open,
              is_variable ? "missing '}}' to close this '{{'" : "missing '%}' to close this '{%'");
      }
      const std::string_view rest = src_.substr(pos);
      const char* close = is_variable ? "}}" : "%}";
      if (depth == 0) {
        char sign = '\0';
        size_t len = 0;
        if (rest.size() >= 3 && (rest[0] == '-' || (rest[0] == '+' && !is_variable)) &&
            rest.substr(1, 2) == close) {
          sign = rest[0];
          len = 3;
        } else if (rest.substr(0, 2) == close) {
          len = 2;
        }
        if (len) {
          tokens_.push_back({is_variable ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, pos, {}});
          return after_end(pos + len, sign, !is_variable);
        }
      }
      pos = lex_token(pos, depth);
    }
  }

  size_t lex_token(size_t pos, int& depth) {
    const char c = src_[pos];
    if (is_name_start(c)) {
      size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      tokens_.push_back({Token::Kind::kName, pos, std::string(src_.substr(pos, end - pos))});
      return end;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                       "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                       "]",  "{",  "}",  ".",  ",",  ":",  "|"};
    for (const char* op : kOps) {
      const size_t n = std::strlen(op);
      if (src_.substr(pos, n) == op) {
        if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
        if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && n == 1) {
          if (depth == 0) error(pos, str_cat("unexpected '", op, "'"));
          --depth;
        }
        tokens_.push_back({Token::Kind::kOp, pos, op});
        return pos + n;
      }
    }
    error(pos, str_cat("unexpected character '", std::string(1, c), "'"));
  }

  size_t lex_number(size_t pos) {
    size_t end = pos;
    std::string digits;
    bool is_float = false;
    const auto take_digits = [&] {
      while (end < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[end])) || src_[end] == '_')) {
        if (src_[end] != '_') digits += src_[end];
        ++end;
      }
    };
    take_digits();
    if (end + 1 < src_.size() && src_[end] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[end + 1]))) {
      is_float = true;
      digits += '.';
      ++end;
      take_digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) {
        is_float = true;
        digits += 'e';
        digits += std::string(src_.substr(end + 1, e - end - 1));
        end = e;
        take_digits();
      }
    }
    Token token{is_float ? Token::Kind::kFloat : Token::Kind::kInt, pos, digits};
    if (is_float) {
      token.real = std::strtod(digits.c_str(), nullptr);
    } else {
      const auto res = std::from_chars(digits.data(), digits.data() + digits.size(), token.integer);
      if (res.ec != std::errc()) error(pos, "integer literal out of range");
    }
    tokens_.push_back(std::move(token));
    return end;
  }

  size_t lex_string(size_t pos) {
    const char quote = src_[pos];
    std::string out;
    size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) error(pos, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error(pos, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'a':
          out += '\a';
          break;
        case '0':
          out += '\0';
          break;
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case '\n':
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          const auto hex = src_.substr(i, n);
          const auto res = std::from_chars(hex.data(), hex.data() + hex.size(), cp, 16);
          if (hex.size() != n || res.ptr != hex.data() + hex.size() || cp > 0x10FFFF) {
            error(i - 2, str_cat("bad \\", std::string(1, e), " escape in a string literal"));
          }
          utf8::append_codepoint(out, cp);
          i += n;
          break;
        }
        default:  // Python keeps unknown escapes as they are
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({Token::Kind::kString, pos, std::move(out)});
    return i + 1;
  }

  const Program& program_;
  std::string_view src_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex_program(const Program& program) {
  return Lexer(program).run();
}

}  // namespace specula::jinja

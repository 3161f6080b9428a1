#include "base/int_expr.h"

#include <cctype>

#include "base/size.h"

namespace tlbsim {

namespace {

constexpr unsigned kMaxParenDepth = 32;

bool name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

/// Recursive descent over a string; the recursion is bounded by kMaxParenDepth.
class Parser {
 public:
  Parser(std::string_view s, const ExprLookup& lookup, std::string* why)
      : m_s(s), m_lookup(lookup), m_why(why) {}

  std::optional<uint64_t> parse() {
    auto v = sum(0);
    if (!v) return std::nullopt;
    skip();
    if (m_i != m_s.size()) return fail("unexpected " + quote(m_i));
    return v;
  }

 private:
  std::optional<uint64_t> fail(const std::string& msg) {
    if (m_why && m_why->empty()) *m_why = msg;
    return std::nullopt;
  }
  std::string quote(size_t at) const {
    return "\"" + std::string(m_s.substr(at, 16)) + "\" at character " + std::to_string(at + 1);
  }
  void skip() {
    while (m_i < m_s.size() && std::isspace(static_cast<unsigned char>(m_s[m_i]))) ++m_i;
  }
  bool eat(char c) {
    skip();
    if (m_i < m_s.size() && m_s[m_i] == c) {
      ++m_i;
      return true;
    }
    return false;
  }

  std::optional<uint64_t> sum(unsigned depth) {
    auto a = product(depth);
    while (a) {
      if (eat('+')) {
        auto b = product(depth);
        if (!b) return std::nullopt;
        uint64_t r;
        if (__builtin_add_overflow(*a, *b, &r)) return fail("the sum overflows 64 bits");
        a = r;
      } else if (eat('-')) {
        auto b = product(depth);
        if (!b) return std::nullopt;
        if (*b > *a) return fail(std::to_string(*a) + " - " + std::to_string(*b) + " is negative");
        a = *a - *b;
      } else {
        break;
      }
    }
    return a;
  }

  std::optional<uint64_t> product(unsigned depth) {
    auto a = factor(depth);
    while (a) {
      char op = 0;
      if (eat('*'))
        op = '*';
      else if (eat('/'))
        op = '/';
      else if (eat('%'))
        op = '%';
      else
        break;
      auto b = factor(depth);
      if (!b) return std::nullopt;
      if (op == '*') {
        uint64_t r;
        if (__builtin_mul_overflow(*a, *b, &r)) return fail("the product overflows 64 bits");
        a = r;
      } else {
        if (*b == 0) return fail("division by zero");
        a = op == '/' ? *a / *b : *a % *b;
      }
    }
    return a;
  }

  std::optional<uint64_t> factor(unsigned depth) {
    skip();
    if (m_i == m_s.size()) return fail("expression ends where a number or name was expected");
    const char c = m_s[m_i];
    if (c == '(') {
      if (depth >= kMaxParenDepth)
        return fail("parentheses nested deeper than " + std::to_string(kMaxParenDepth));
      ++m_i;
      auto v = sum(depth + 1);
      if (!v) return std::nullopt;
      if (!eat(')'))
        return fail("missing \")\" before " + (m_i < m_s.size() ? quote(m_i) : "the end"));
      return v;
    }
    const size_t start = m_i;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      while (m_i < m_s.size() && name_char(m_s[m_i])) ++m_i;
      const std::string_view tok = m_s.substr(start, m_i - start);
      if (tok.size() > 2 && tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
        uint64_t v = 0;
        for (size_t k = 2; k < tok.size(); ++k) {
          const int d = std::isdigit(static_cast<unsigned char>(tok[k])) ? tok[k] - '0'
                        : std::isxdigit(static_cast<unsigned char>(tok[k]))
                            ? std::tolower(static_cast<unsigned char>(tok[k])) - 'a' + 10
                            : -1;
          if (d < 0) return fail("bad hex number " + quote(start));
          if (v >> 60) return fail("the number " + quote(start) + " overflows 64 bits");
          v = v * 16 + static_cast<uint64_t>(d);
        }
        return v;
      }
      std::string why;
      auto v = parse_size(tok, &why);
      if (!v) return fail("bad number " + quote(start) + " (" + why + ")");
      return v;
    }
    if (name_start(c)) {
      while (m_i < m_s.size() && name_char(m_s[m_i])) ++m_i;
      std::string why;
      auto v = m_lookup(m_s.substr(start, m_i - start), &why);
      if (!v) return fail(why);
      return v;
    }
    return fail("expected a number, a name or \"(\", got " + quote(start));
  }

  std::string_view m_s;
  const ExprLookup& m_lookup;
  std::string* m_why;
  size_t m_i = 0;
};

}  // namespace

std::optional<uint64_t> eval_int_expr(std::string_view text, const ExprLookup& lookup,
                                      std::string* why) {
  if (why) why->clear();
  return Parser(text, lookup, why).parse();
}

bool has_expr_operator(std::string_view text) {
  return text.find_first_of("+-*/%()") != std::string_view::npos;
}

std::vector<std::string> expr_names(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      while (i < text.size() && name_char(text[i])) ++i;  // a number and its unit
    } else if (name_start(text[i])) {
      const size_t s = i;
      while (i < text.size() && name_char(text[i])) ++i;
      out.emplace_back(text.substr(s, i - s));
    } else {
      ++i;
    }
  }
  return out;
}

}  // namespace tlbsim

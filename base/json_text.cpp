#include "base/json_text.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/error.h"

namespace tlbsim {

void check_json_bounds(std::string_view t, const std::string& name) {
  size_t line = 1, col = 1, depth = 0;
  auto where = [&] { return "line " + std::to_string(line) + ", column " + std::to_string(col); };
  size_t i = 0;
  auto advance = [&](size_t n) {
    for (size_t k = 0; k < n && i < t.size(); ++k, ++i) {
      if (t[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
  };
  while (i < t.size()) {
    const char c = t[i];
    if (c == '"') {
      advance(1);
      while (i < t.size() && t[i] != '"') advance(t[i] == '\\' ? 2 : 1);
      advance(1);
      continue;
    }
    if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw InputError(where(), "invalid JSON: arrays and objects nested deeper than " +
                                      std::to_string(kMaxJsonDepth) + " levels", name);
    } else if (c == ']' || c == '}') {
      if (depth) --depth;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i;
      bool plain = true;  // digits only: fits a 64-bit integer when short
      while (j < t.size() && ((t[j] >= '0' && t[j] <= '9') || t[j] == '-' || t[j] == '+' ||
                              t[j] == '.' || t[j] == 'e' || t[j] == 'E')) {
        if (t[j] == '.' || t[j] == 'e' || t[j] == 'E') plain = false;
        ++j;
      }
      if (!plain || j - i > 18) {
        const std::string tok(t.substr(i, j - i));
        if (std::isinf(std::strtod(tok.c_str(), nullptr)))
          throw InputError(where(), "number " + quote_excerpt(tok) +
                                        " is out of range (beyond a double's ±1.8e308)", name);
      }
      advance(j - i);
      continue;
    }
    advance(1);
  }
}

size_t json_depth(const Json& j) {
  size_t deepest = 0;
  std::vector<std::pair<const Json*, size_t>> todo{{&j, 0}};
  while (!todo.empty()) {
    auto [v, d] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *v) todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

namespace {

void put_escaped(std::string_view s, std::string& out, size_t limit) {
  for (unsigned char c : s) {
    if (out.size() > limit) return;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

// Writes at most about `limit` characters of `j`: each level writes a character
// before descending, so the recursion ends within `limit` levels.
void put_json(const Json& j, std::string& out, size_t limit) {
  if (out.size() > limit) return;
  switch (j.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = j.begin(); it != j.end() && out.size() <= limit; ++it) {
        if (!first) out += ", ";
        first = false;
        out += '"';
        put_escaped(it.key(), out, limit);
        out += "\": ";
        put_json(it.value(), out, limit);
      }
      out += '}';
      return;
    }
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (auto it = j.begin(); it != j.end() && out.size() <= limit; ++it) {
        if (!first) out += ", ";
        first = false;
        put_json(*it, out, limit);
      }
      out += ']';
      return;
    }
    case Json::value_t::string:
      out += '"';
      put_escaped(j.get_ref<const std::string&>(), out, limit);
      out += '"';
      return;
    default:
      out += j.dump();  // numbers, booleans, null: short and always valid
  }
}

// Cuts `s` to about `limit` bytes at a UTF-8 character boundary, marking the cut.
std::string cut(std::string s, size_t limit) {
  if (s.size() <= limit + 3) return s;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  s.resize(n);
  return s + "...";
}

}  // namespace

std::string json_excerpt(const Json& j) {
  std::string out;
  put_json(j, out, kExcerptChars + 8);
  return cut(std::move(out), kExcerptChars);
}

std::string quote_excerpt(std::string_view s) {
  std::string out;
  put_escaped(s.substr(0, kExcerptChars + 8), out, kExcerptChars + 8);
  std::string q = cut(std::move(out), kExcerptChars);
  return "\"" + q + "\"";
}

}  // namespace tlbsim

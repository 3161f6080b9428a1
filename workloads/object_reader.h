// Reads the fields of one JSON object of a workload, with exit-2 messages that name
// the pointer, and rejects the keys nobody asked for. Internal to workloads/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/int_expr.h"
#include "base/json_text.h"
#include "base/params.h"
#include "base/size.h"

namespace tlbsim::workload::detail {

/// Bytes in a name (mapping, region, barrier, process, thread).
inline constexpr size_t kMaxNameBytes = 255;

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

/// a × b, or nullopt when it does not fit 64 bits.
inline std::optional<uint64_t> mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

/// Reads fields of one JSON object and rejects the keys nobody asked for.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string pointer, const char* what)
      : m_j(j), m_ptr(std::move(pointer)) {
    if (!j.is_object())
      throw InputError(m_ptr.empty() ? "/" : m_ptr,
                       std::string("expected ") + what + " object, got " +
                           (j.is_array() ? "an array" : json_excerpt(j)));
  }
  const std::string& where() const { return m_ptr; }
  std::string ptr(const std::string& key) const { return m_ptr + "/" + json_pointer_escape(key); }
  const Json* get(const std::string& key) {
    m_allowed.insert(key);
    auto it = m_j.find(key);
    return it == m_j.end() ? nullptr : &*it;
  }
  [[noreturn]] void missing(const std::string& key) const {
    throw InputError(m_ptr.empty() ? "/" : m_ptr, "missing required key \"" + key + "\"");
  }
  std::string str(const std::string& key, const std::string& def, bool required = false) {
    const Json* v = get(key);
    if (!v) {
      if (required) missing(key);
      return def;
    }
    if (!v->is_string()) throw InputError(ptr(key), "expected a string, got " + json_excerpt(*v));
    return v->get<std::string>();
  }
  /// A name: 1 to 255 bytes without control characters; `extra` lists further
  /// characters it may not contain.
  std::string name(const std::string& key, bool required, const std::string& def = "",
                   const char* extra = "") {
    std::string s = str(key, def, required);
    if (!get(key)) return s;
    bool bad = s.empty() || s.size() > kMaxNameBytes;
    for (unsigned char c : s) bad |= c < 0x20 || c == 0x7f || std::strchr(extra, c) != nullptr;
    if (bad)
      throw InputError(ptr(key),
                       std::string("expected a name of 1 to ") + std::to_string(kMaxNameBytes) +
                           " bytes without control characters" +
                           (*extra ? std::string(" or any of ") + extra : "") + ", got " +
                           quote_excerpt(s) + " (" + std::to_string(s.size()) + " bytes)");
    return s;
  }
  std::string choice(const std::string& key, const std::string& def,
                     const std::vector<std::string>& choices) {
    std::string s = str(key, def);
    for (auto& c : choices)
      if (c == s) return s;
    throw InputError(ptr(key),
                     "expected one of " + join_choices(choices) + ", got " + quote_excerpt(s));
  }
  uint64_t uint(const std::string& key, uint64_t def, uint64_t min = 0, uint64_t max = UINT64_MAX) {
    const Json* v = get(key);
    if (!v) return def;
    uint64_t x;
    if (v->is_string()) {
      // An arithmetic expression, as a substituted "${n} - 1" leaves it.
      x = expression(key, v->get<std::string>(), "a non-negative integer");
    } else {
      if (!v->is_number_integer() || (!v->is_number_unsigned() && v->get<int64_t>() < 0))
        throw InputError(ptr(key), "expected a non-negative integer, got " + json_excerpt(*v));
      x = v->get<uint64_t>();
    }
    if (x < min)
      throw InputError(
          ptr(key), "expected an integer >= " + std::to_string(min) + ", got " + json_excerpt(*v));
    if (x > max)
      throw InputError(
          ptr(key), "expected an integer <= " + std::to_string(max) + ", got " + json_excerpt(*v));
    return x;
  }
  uint64_t size(const std::string& key, uint64_t def, bool required = false) {
    const Json* v = get(key);
    if (!v) {
      if (required) missing(key);
      return def;
    }
    if (v->is_number_unsigned()) return v->get<uint64_t>();
    if (!v->is_string())
      throw InputError(ptr(key),
                       "expected a size such as \"4KiB\" or \"1GiB\", got " + json_excerpt(*v));
    std::string why;
    const std::string& text = v->get_ref<const std::string&>();
    if (has_expr_operator(text)) return expression(key, text, "a size");
    auto s = parse_size(text, &why);
    if (!s)
      throw InputError(ptr(key), "expected a size such as \"4KiB\" or \"1GiB\" (" + why +
                                     "), got " + json_excerpt(*v));
    return *s;
  }
  /// The value of an arithmetic expression of numbers and sizes ("1GiB / 4").
  uint64_t expression(const std::string& key, const std::string& text, const char* what) {
    std::string why;
    auto x = eval_int_expr(
        text,
        [](std::string_view name, std::string* w) -> std::optional<uint64_t> {
          *w = "unknown name \"" + std::string(name.substr(0, 64)) +
               "\" (a workload parameter is written ${name})";
          return std::nullopt;
        },
        &why);
    if (!x)
      throw InputError(ptr(key), std::string("expected ") + what +
                                     " or an arithmetic expression such as \"1GiB / 4\", got " +
                                     quote_excerpt(text) + ": " + why);
    return *x;
  }
  bool boolean(const std::string& key, bool def) {
    const Json* v = get(key);
    if (!v) return def;
    if (!v->is_boolean())
      throw InputError(ptr(key), "expected true or false, got " + json_excerpt(*v));
    return v->get<bool>();
  }
  double number(const std::string& key, double def) {
    const Json* v = get(key);
    if (!v) return def;
    if (!v->is_number()) throw InputError(ptr(key), "expected a number, got " + json_excerpt(*v));
    return v->get<double>();
  }
  /// Throws for any key not read (keys starting with "_" are comments).
  void finish() const {
    std::vector<std::string> allowed(m_allowed.begin(), m_allowed.end());
    for (auto it = m_j.begin(); it != m_j.end(); ++it) {
      if (!it.key().empty() && it.key()[0] == '_') continue;
      if (m_allowed.count(it.key())) continue;
      std::string msg = "unknown key " + quote_excerpt(it.key());
      std::string near = closest_match(it.key(), allowed);
      if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
      msg += "; valid keys here: " + join_choices(allowed);
      throw InputError(ptr(it.key()), msg);
    }
  }

 private:
  const Json& m_j;
  std::string m_ptr;
  std::set<std::string> m_allowed;
};

}  // namespace tlbsim::workload::detail

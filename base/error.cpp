#include "base/error.h"

#include <algorithm>

namespace tlbsim {

InputError::InputError(std::string where, std::string message, std::string file)
    : std::runtime_error(format(file, where, message)),
      m_file(std::move(file)),
      m_where(std::move(where)),
      m_message(std::move(message)) {}

std::string InputError::format(const std::string& file, const std::string& where,
                               const std::string& message) {
  std::string s;
  if (!file.empty()) s += file + ": ";
  if (!where.empty()) s += where + ": ";
  return one_line(s + message);
}

std::string one_line(std::string_view text) {
  std::string s;
  s.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n') {
      s += "\\n";
    } else if (c == '\r') {
      s += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      s += "\\x";
      s += kHex[c >> 4];
      s += kHex[c & 15];
    } else {
      s += static_cast<char>(c);
    }
  }
  return s;
}

InputError InputError::in_file(const std::string& file) const {
  return InputError(m_where, m_message, m_file.empty() ? file : m_file);
}

InputError InputError::under(const std::string& prefix) const {
  return InputError(prefix + m_where, m_message, m_file);
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Only suggest when the typo is plausibly a typo: at most a third of the word.
  if (best_d == SIZE_MAX || best_d > std::max<size_t>(2, word.size() / 3)) return {};
  return best;
}

std::string join_choices(const std::vector<std::string>& choices) {
  std::string s;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) s += (i + 1 == choices.size()) ? " or " : ", ";
    s += choices[i];
  }
  return s;
}

}  // namespace tlbsim

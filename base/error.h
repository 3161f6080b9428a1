// The one error type for bad input: it carries the file and the JSON pointer (or
// line) that is wrong, so every message a user sees says where to look.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tlbsim {

/// Bad input (configuration, workload, trace). The CLI maps it to exit code 2.
/// `where` is a JSON pointer ("/machine/cpus") or "line N" for text inputs. what()
/// is always one line: control characters of user strings are escaped.
class InputError : public std::runtime_error {
 public:
  InputError(std::string where, std::string message, std::string file = {});

  const std::string& file() const { return m_file; }
  const std::string& where() const { return m_where; }
  const std::string& message() const { return m_message; }

  /// The same error attributed to `file` (when the inner code did not know it).
  InputError in_file(const std::string& file) const;
  /// The same error with `prefix` prepended to the pointer (nested documents).
  InputError under(const std::string& prefix) const;

 private:
  static std::string format(const std::string& file, const std::string& where,
                            const std::string& message);
  std::string m_file;
  std::string m_where;
  std::string m_message;
};

/// The closest candidate to `word` by edit distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

/// `text` with newlines and other control characters escaped (\n, \x01).
std::string one_line(std::string_view text);

/// "a, b or c" for messages that list valid choices.
std::string join_choices(const std::vector<std::string>& choices);

}  // namespace tlbsim

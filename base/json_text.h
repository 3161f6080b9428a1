// JSON text within bounds. Every document tlbsim reads is checked before it is
// parsed — nesting depth and numbers a double can hold — so that no later
// recursion (copies, dumps, the workload reader) can be driven as deep as the input
// likes, and no conversion sees an infinity. Messages quote values through the
// excerpt functions: at most a short prefix, on one line.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tlbsim {

using Json = nlohmann::ordered_json;

/// Arrays and objects may nest this deep in any input document; deeper is bad input.
constexpr size_t kMaxJsonDepth = 200;

/// Characters of a value quoted in a message before it is cut with "...".
constexpr size_t kExcerptChars = 40;

/// Scans JSON text (strings skipped) and throws InputError("line L, column C", ...,
/// name) at the first bracket nested deeper than kMaxJsonDepth or the first number
/// outside the range of a double. Syntax errors are left to the parser.
void check_json_bounds(std::string_view text, const std::string& name);

/// Nesting depth of a value (a scalar is 0, [] is 1), computed without recursion.
size_t json_depth(const Json& j);

/// A value as it appears in a message: JSON text of at most about kExcerptChars
/// characters ("..." marks a cut, made at a UTF-8 boundary), control characters
/// escaped. Never throws, whatever the value holds.
std::string json_excerpt(const Json& j);

/// A user string as it appears in a message: quoted, escaped and cut like
/// json_excerpt().
std::string quote_excerpt(std::string_view s);

}  // namespace tlbsim

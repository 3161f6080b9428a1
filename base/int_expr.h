// Integer arithmetic on counts and sizes, for workload parameters:
// "1GiB / 4", "(n - 1) * 4KiB", "i % 2 + 1". Unsigned 64-bit throughout: a
// negative intermediate, an overflow or a division by zero is an error, never a
// wrapped value.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlbsim {

/// The value of a name in an expression, or nullopt (and *why) when it has none.
using ExprLookup = std::function<std::optional<uint64_t>(std::string_view name, std::string* why)>;

/// Evaluates `text`: numbers (decimal, 0x hex, or sizes such as 4KiB), names
/// resolved by `lookup`, + - * / % and parentheses (at most 32 deep), with the usual
/// precedence. Returns nullopt and sets *why on any error.
std::optional<uint64_t> eval_int_expr(std::string_view text, const ExprLookup& lookup,
                                      std::string* why);

/// True when `text` holds an arithmetic operator or a parenthesis (a plain size or
/// number does not).
bool has_expr_operator(std::string_view text);

/// The names `text` refers to, in order of appearance (a name may repeat).
std::vector<std::string> expr_names(std::string_view text);

}  // namespace tlbsim

#include "base/size.h"

#include <cctype>
#include <limits>

namespace tlbsim {

std::optional<uint64_t> parse_size(std::string_view text, std::string* why) {
  auto fail = [&](const char* msg) -> std::optional<uint64_t> {
    if (why) *why = msg;
    return std::nullopt;
  };
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i == text.size() || !std::isdigit(static_cast<unsigned char>(text[i])))
    return fail("a size must start with a number, e.g. \"4KiB\" or \"1GiB\"");
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return fail("size overflows 64 bits");
    n = n * 10 + d;
    ++i;
  }
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit;
  for (; i < text.size(); ++i) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) break;
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i != text.size()) return fail("unexpected text after the unit");
  unsigned shift;
  if (unit.empty() || unit == "b") shift = 0;
  else if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
  else if (unit == "t" || unit == "tb" || unit == "tib") shift = 40;
  else return fail("unknown unit; use B, KiB, MiB, GiB or TiB");
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift))
    return fail("size overflows 64 bits");
  return n << shift;
}

std::string format_size(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned u = 0;
  while (u < 4 && bytes != 0 && (bytes & 1023) == 0) {
    bytes >>= 10;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

}  // namespace tlbsim

// Sizes with units: "4KiB", "2MiB", "1GiB", "64k", "4096". Binary units only
// (KiB = 1024); "KB"/"k" are accepted as synonyms because users write them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlbsim {

/// Parses a size. Returns nullopt (and sets *why) for malformed strings.
std::optional<uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

/// Formats a byte count with the largest exact binary unit: 65536 -> "64KiB".
std::string format_size(uint64_t bytes);

/// A byte count as a parameter type: JSON accepts a number or a size string.
struct Bytes {
  uint64_t value = 0;
  constexpr bool operator==(const Bytes&) const = default;
};

}  // namespace tlbsim

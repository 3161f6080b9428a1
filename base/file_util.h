// File helpers shared by every output: atomic writes (a failed or interrupted run
// never leaves a partial file over a good one) and JSON reading with positions.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace tlbsim {

using Json = nlohmann::ordered_json;

/// Writes `content` to `path` via a temporary file in the same directory and a rename.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// Reads a JSON file; throws InputError naming the file (and line/column on a
/// syntax error, nesting deeper than kMaxJsonDepth or a number out of range, or
/// "file not found").
Json read_json_file(const std::filesystem::path& path);

/// Parses JSON text within the bounds of base/json_text.h; `name` is used in messages.
Json parse_json_text(const std::string& text, const std::string& name);

}  // namespace tlbsim

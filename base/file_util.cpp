#include "base/file_util.h"

#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

#include "base/error.h"
#include "base/json_text.h"

namespace tlbsim {

void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  namespace fs = std::filesystem;
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    out << content;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp);
    throw std::runtime_error("cannot rename " + tmp.string() + " to " + path.string() + ": " +
                             ec.message());
  }
}

namespace {
// Line and column of a byte offset, for parse errors.
std::pair<size_t, size_t> line_col(const std::string& text, size_t byte) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}
}  // namespace

Json parse_json_text(const std::string& text, const std::string& name) {
  check_json_bounds(text, name);
  try {
    return Json::parse(text, nullptr, true, /*ignore_comments=*/false);
  } catch (const Json::parse_error& e) {
    auto [line, col] = line_col(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    // nlohmann messages look like "[json.exception.parse_error.101] parse error at line
    // 3, column 5: syntax error while parsing object - unexpected ..."; keep the tail.
    auto pos = what.find("syntax error");
    std::string detail = pos == std::string::npos ? what : what.substr(pos);
    throw InputError("line " + std::to_string(line) + ", column " + std::to_string(col),
                     "invalid JSON: " + detail, name);
  } catch (const Json::exception& e) {
    // Any other class (out_of_range, ...) that check_json_bounds did not foresee:
    // still bad input, reported at the start of the document.
    throw InputError("line 1, column 1", std::string("invalid JSON: ") + e.what(), name);
  }
}

Json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st))
    throw InputError("", ec && ec != std::errc::no_such_file_or_directory
                             ? "cannot read the file (" + ec.message() + ")"
                             : "file not found",
                     path.string());
  if (!std::filesystem::is_regular_file(st))
    throw InputError("", "not a regular file", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("", "cannot read the file", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), path.string());
}

}  // namespace tlbsim

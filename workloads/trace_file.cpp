#include "workloads/trace_file.h"

#include <cstring>

#include "base/addr.h"
#include "base/error.h"
#include "base/json_text.h"
#include "workloads/object_reader.h"

namespace tlbsim::workload {

namespace {
constexpr size_t kBufBytes = 1 << 20;
/// Longest line accepted (a run line is under 60 bytes; comments may be longer).
constexpr size_t kMaxLine = 4096;
}  // namespace

TraceReader::TraceReader(const std::string& path, uint64_t start)
    : m_path(path), m_buf(kBufBytes), m_start(start) {
  m_f = std::fopen(path.c_str(), "rb");
  if (!m_f) throw InputError("", "trace file " + quote_excerpt(path) + " not found or unreadable");
  if (start && std::fseek(m_f, static_cast<long>(start), SEEK_SET) != 0) {
    std::fclose(m_f);
    m_f = nullptr;
    throw InputError("", "cannot seek to byte " + std::to_string(start) + " of trace file " +
                             quote_excerpt(path));
  }
}

TraceReader::~TraceReader() {
  if (m_f) std::fclose(m_f);
}

bool TraceReader::fill() {
  if (m_eof) return false;
  if (m_pos) {  // keep the partial line at the front
    std::memmove(m_buf.data(), m_buf.data() + m_pos, m_end - m_pos);
    m_end -= m_pos;
    m_pos = 0;
  }
  const size_t n = std::fread(m_buf.data() + m_end, 1, m_buf.size() - m_end, m_f);
  if (n == 0) m_eof = true;
  m_end += n;
  return n != 0;
}

void TraceReader::bad(const std::string& what) const {
  const std::string where =
      "line " + std::to_string(m_line) + (m_start ? " after byte " + std::to_string(m_start) : "");
  throw InputError(where, what, m_path);
}

bool TraceReader::next(TraceEntry& e) {
  for (;;) {
    const char* nl = static_cast<const char*>(std::memchr(m_buf.data() + m_pos, '\n', m_end - m_pos));
    if (!nl) {
      if (m_end - m_pos > kMaxLine) {
        ++m_line;
        bad("a line longer than " + std::to_string(kMaxLine) + " bytes");
      }
      if (fill()) continue;
      if (m_pos == m_end) return false;
      // The last line has no newline: take it as it is.
      m_buf.resize(std::max(m_buf.size(), m_end + 1));
      m_buf[m_end] = '\n';
      nl = m_buf.data() + m_end;
      ++m_end;
    }
    const char* p = m_buf.data() + m_pos;
    const char* end = nl;
    m_pos = static_cast<size_t>(nl - m_buf.data()) + 1;
    ++m_line;
    if (static_cast<size_t>(end - p) > kMaxLine) bad("a line longer than " + std::to_string(kMaxLine) + " bytes");
    if (end > p && end[-1] == '\r') --end;
    auto skip = [&] {
      while (p < end && (*p == ' ' || *p == '\t')) ++p;
    };
    skip();
    if (p == end || *p == '#') continue;
    const char* p0 = p;
    auto line = [&] { return std::string(p0, std::min<size_t>(static_cast<size_t>(end - p0), 80)); };
    auto number = [&](int base, uint64_t max, const char* what) {
      skip();
      const char* s = p;
      uint64_t x = 0;
      while (p < end) {
        const char c = *p;
        unsigned d;
        if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
        else break;
        if (x > (max - d) / static_cast<unsigned>(base)) bad(std::string("expected ") + what + " (too large), in " + quote_excerpt(line()));
        x = x * static_cast<unsigned>(base) + d;
        ++p;
      }
      if (p == s || (p < end && *p != ' ' && *p != '\t'))
        bad(std::string("expected \"MAPPING PAGE KIND [COUNT]\": ") + what + " in " + quote_excerpt(line()));
      return x;
    };
    e.mapping = static_cast<uint32_t>(number(10, 0xffffffffu, "a mapping index"));
    e.page = number(16, UINT64_MAX, "a hex page offset");
    skip();
    if (p == end) bad("expected \"MAPPING PAGE KIND [COUNT]\", got " + quote_excerpt(line()));
    switch (*p) {
      case 'r': e.kind = AccessKind::kRead; break;
      case 'w': e.kind = AccessKind::kWrite; break;
      case 'x': e.kind = AccessKind::kExec; break;
      default: bad("expected kind r, w or x in " + quote_excerpt(line()));
    }
    ++p;
    if (p < end && *p != ' ' && *p != '\t') bad("expected kind r, w or x in " + quote_excerpt(line()));
    skip();
    e.count = 1;
    if (p < end) {
      const uint64_t c = number(10, UINT64_MAX, "a count");
      if (c == 0 || c > 0xffffffffu) bad("expected a count between 1 and 2^32-1 in " + quote_excerpt(line()));
      e.count = static_cast<uint32_t>(c);
      skip();
      if (p < end) bad("unexpected text after the count in " + quote_excerpt(line()));
    }
    return true;
  }
}

uint64_t validate_trace_file(const std::string& path, const std::vector<uint64_t>& mapping_sizes,
                             uint64_t start, uint64_t runs) {
  TraceReader r(path, start);
  std::vector<uint64_t> pages;
  for (uint64_t s : mapping_sizes) pages.push_back(s / kPageSize + (s % kPageSize != 0));
  TraceEntry e;
  uint64_t n = 0;
  while ((runs == 0 || n < runs) && r.next(e)) {
    // The message's place is built only for a bad line (this loop sees every run).
    auto where = [&] {
      return "line " + std::to_string(r.line()) + (start ? " after byte " + std::to_string(start) : "");
    };
    if (e.mapping >= pages.size())
      throw InputError(where(), "mapping index " + std::to_string(e.mapping) + " but the replay op names " +
                                  std::to_string(pages.size()) + " mappings", path);
    if (e.page >= pages[e.mapping])
      throw InputError(where(), "page " + detail::hex(e.page) +
                                  " lies beyond mapping " + std::to_string(e.mapping) + " (" +
                                  std::to_string(pages[e.mapping]) + " pages)", path);
    ++n;
  }
  if (runs && n < runs)
    throw InputError("", "the replay asks for " + std::to_string(runs) + " runs from byte " +
                             std::to_string(start) + " but the file has " + std::to_string(n), path);
  return n;
}

}  // namespace tlbsim::workload

// The replay trace format (tools/import-lackey, tools/capture): one run per line,
// "MAPPING PAGE(hex) KIND(r/w/x) [COUNT]" — COUNT accesses of KIND to page PAGE of
// the replay op's MAPPING-th mapping; '#' lines are comments. Read in a stream from
// a byte offset with a fixed buffer, so neither validation nor replay holds a
// trace in memory, however long it is.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "workloads/op.h"

namespace tlbsim::workload {

class TraceReader {
 public:
  /// Opens `path` at byte `start`; InputError when it cannot be read.
  TraceReader(const std::string& path, uint64_t start);
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  /// The next run, or false at the end of the file. Malformed lines are an
  /// InputError naming the file and the line (counted from `start`).
  bool next(TraceEntry& e);
  /// Lines read so far (comments included).
  uint64_t line() const { return m_line; }

 private:
  bool fill();
  [[noreturn]] void bad(const std::string& what) const;

  std::FILE* m_f = nullptr;
  std::string m_path;
  std::vector<char> m_buf;
  size_t m_pos = 0, m_end = 0;
  bool m_eof = false;
  uint64_t m_line = 0;
  uint64_t m_start;
};

/// Checks `runs` runs from byte `start` (all to the end of the file when `runs` is
/// 0) against the op's mappings (`mapping_sizes[i]` bytes): indices and pages in
/// range. Returns the number of runs. Constant memory.
uint64_t validate_trace_file(const std::string& path, const std::vector<uint64_t>& mapping_sizes,
                             uint64_t start = 0, uint64_t runs = 0);

}  // namespace tlbsim::workload

// libFuzzer target over the replay trace reader (the format tools/import-lackey
// writes): malformed lines must be InputErrors with their line number.
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "base/error.h"
#include "workloads/trace_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    char tmpl[] = "/tmp/tlbsim-fuzz-XXXXXX.trace";
    const int fd = mkstemps(tmpl, 6);
    if (fd >= 0) close(fd);
    return std::string(tmpl);
  }();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)tlbsim::workload::validate_trace_file(path, {4096, 1ull << 30, 12345});
  } catch (const tlbsim::InputError& e) {
    if (e.where().rfind("line ", 0) != 0 && !e.where().empty()) __builtin_trap();
  }
  return 0;
}

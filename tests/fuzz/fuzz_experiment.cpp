// libFuzzer target over the experiment and workload reader: the input is an
// experiment file, loaded as `tlbsim validate` loads it (presets, profiles and
// catalog workloads from the source tree), then its host-memory estimate. Bad input
// must be an InputError; any other exception, a crash or a sanitizer report is a
// finding. Built with -DTLBSIM_FUZZ=ON by clang (docs/fuzzing.md).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "base/error.h"
#include "tools/tlbsim/experiment.h"

namespace {

const std::string& scratch_file() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/tlbsim-fuzz-XXXXXX.json";
    const int fd = mkstemps(tmpl, 5);
    if (fd >= 0) close(fd);
    return std::string(tmpl);
  }();
  return path;
}

}  // namespace

// libsystemc.so references sc_main; nothing elaborates here.
extern "C" int sc_main(int, char**) { return 0; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_file();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  tlbsim::SearchPaths paths;
  paths.root = TLBSIM_SOURCE_DIR;
  try {
    auto ex = tlbsim::load_experiment(path, {}, paths, /*as_point=*/true);
    (void)tlbsim::estimate_host_memory(*ex);
    (void)ex->effective_config().dump();
  } catch (const tlbsim::InputError&) {
    // bad input, reported with exit 2 by the CLI
  }
  return 0;
}

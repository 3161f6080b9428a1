// Runs independent simulations as child processes (SystemC elaborates once per
// process), a bounded number at a time. Used by sweeps and by the host calibration
// and validation commands. A worker dies with its parent (PR_SET_PDEATHSIG).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace tlbsim {

struct WorkerJob {
  std::vector<std::string> argv;  // argv[0] is the executable
  std::filesystem::path log;      // stdout and stderr of the worker
};

struct WorkerResult {
  int exit_code = 0;  // 128 + signal when killed by a signal
  double seconds = 0;
};

/// Runs `jobs[i]` for every i in `order`, at most `parallel` at once; `done(i, r)`
/// is called in the parent as each finishes, in completion order.
void run_workers(const std::vector<WorkerJob>& jobs, const std::vector<size_t>& order,
                 unsigned parallel, const std::function<void(size_t, const WorkerResult&)>& done);

/// Reads a worker's log, trailing whitespace removed.
std::string read_log(const std::filesystem::path& log);

}  // namespace tlbsim

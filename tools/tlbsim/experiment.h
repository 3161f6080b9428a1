// An experiment: machine preset + kernel profile + workload + overrides, resolved
// into effective parameters. Every error is an InputError naming the file and the
// JSON pointer (or the --set argument) that is wrong.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/params.h"
#include "mm/kernel_profile.h"
#include "models/machine_params.h"
#include "workloads/op.h"

namespace tlbsim {

struct Experiment {
  std::string name;
  std::string description;
  std::filesystem::path file;
  uint64_t seed = 1;
  uint64_t folio_size = 0;  // 0: the kernel profile's THP settings apply
  std::string machine_preset, kernel_profile, workload_ref;
  std::unique_ptr<MachineParams> machine = std::make_unique<MachineParams>();
  std::unique_ptr<mm::KernelProfile> kernel = std::make_unique<mm::KernelProfile>();
  Json workload_json;
  workload::Workload workload;

  /// The effective configuration written to stats.json.
  Json effective_config() const;
};

/// Directories searched for presets, profiles and catalog workloads.
struct SearchPaths {
  std::filesystem::path root;  // repository root (configs/, workloads/catalog/)
  /// Searched for a workload named without a path, in order, before
  /// <root>/workloads/catalog: the directories of TLBSIM_PATH.
  std::vector<std::filesystem::path> workloads;

  /// root = $TLBSIM_ROOT or the source tree tlbsim was built from; workloads =
  /// the entries of $TLBSIM_PATH (colon-separated, relative ones to the current
  /// directory, empty ones skipped).
  static SearchPaths from_environment();
};

/// `--workload FILE`: the --set argument that makes FILE the experiment's workload.
/// A FILE with a '/' or ending in .json is a file (made absolute, so it is relative
/// to the current directory, not to the experiment file); anything else is a name
/// looked up as a catalog workload is.
std::string workload_set_argument(const std::string& file);

/// The experiment's "name" (default: the file's stem), which names its results
/// directory: InputError unless 1 to 255 bytes without '/' or control characters.
std::string experiment_name(const Json& doc, const std::filesystem::path& file);

/// TASK_SIZE of the machine: the end of its user address space (base/addr.h).
uint64_t task_size(const MachineParams& machine);

/// Host memory a run of `ex` needs, estimated up front from its configuration
/// (docs/guide.md, "Host memory"), with the JSON pointer of the largest term.
struct HostMemoryEstimate {
  uint64_t bytes = 0;
  std::string file;     // the file and pointer of the input that costs most
  std::string pointer;  // (e.g. the experiment's "/machine/memory")
  std::string detail;   // the terms, for the message
};
HostMemoryEstimate estimate_host_memory(const Experiment& ex);

/// Refuses (InputError naming the file and the costliest input) a run whose estimate
/// exceeds the host: `max_bytes` when given (--max-host-memory), else MemAvailable;
/// an address-space rlimit (ulimit -v) always applies as well.
void check_host_memory(const Experiment& ex, std::optional<uint64_t> max_bytes);

/// Loads and validates an experiment file; `sets` are "key.path=value" overrides.
/// A file with a "sweep" is rejected unless `as_point` (one point of its sweep).
std::unique_ptr<Experiment> load_experiment(const std::filesystem::path& file,
                                            const std::vector<std::string>& sets,
                                            const SearchPaths& paths, bool as_point = false);

}  // namespace tlbsim

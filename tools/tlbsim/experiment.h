// An experiment: machine preset + kernel profile + workload + overrides, resolved
// into effective parameters. Every error is an InputError naming the file and the
// JSON pointer (or the --set argument) that is wrong.
#pragma once

#include <filesystem>
#include <memory>
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
};

/// Loads and validates an experiment file; `sets` are "key.path=value" overrides.
/// A file with a "sweep" is rejected unless `as_point` (one point of its sweep).
std::unique_ptr<Experiment> load_experiment(const std::filesystem::path& file,
                                            const std::vector<std::string>& sets,
                                            const SearchPaths& paths, bool as_point = false);

}  // namespace tlbsim

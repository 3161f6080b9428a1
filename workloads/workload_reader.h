// Reads a workload from JSON and validates it completely before anything runs:
// every error names the JSON pointer, what was expected and what was found.
// The language is documented in docs/workloads.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/addr.h"
#include "workloads/op.h"

namespace tlbsim::workload {

using Json = nlohmann::ordered_json;

/// Parses and validates `j` (the workload object); `pointer` prefixes messages.
/// A workload may declare "params" (name → default value); "${name}" in any string
/// is replaced by the value (a whole-string reference keeps the value's JSON type).
/// Throws InputError. `nr_cpus` bounds thread pinning and `task_size` (the end of
/// the machine's user address space, base/addr.h) mmap addresses and sizes; every
/// integer is range-checked so that nothing wraps at run time (windows lie inside
/// their mapping, cycles and access counts are bounded).
/// Files a workload names (replay traces) are resolved relative to `base_dir`.
Workload read_workload(const Json& j, const std::string& pointer, unsigned nr_cpus,
                       const std::string& base_dir = ".", uint64_t task_size = kTaskSizeX86);

/// Ops that parse but cannot be executed by this version of the simulator.
bool op_supported(OpKind k);

}  // namespace tlbsim::workload

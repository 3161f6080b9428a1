// Reads a workload from JSON and validates it completely before anything runs:
// every error names the JSON pointer, what was expected and what was found.
// The language is documented in docs/workloads.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "workloads/op.h"

namespace tlbsim::workload {

using Json = nlohmann::ordered_json;

/// Parses and validates `j` (the workload object); `pointer` prefixes messages.
/// A workload may declare "params" (name → default value); "${name}" in any string
/// is replaced by the value (a whole-string reference keeps the value's JSON type).
/// Throws InputError. `nr_cpus` bounds thread pinning.
Workload read_workload(const Json& j, const std::string& pointer, unsigned nr_cpus);

/// Ops that parse but cannot be executed by this version of the simulator.
bool op_supported(OpKind k);

}  // namespace tlbsim::workload

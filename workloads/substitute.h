// Parameter substitution ("${name}", "${expr}") and thread/process templates of the
// workload language. Internal to workloads/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/json_text.h"

namespace tlbsim::workload::detail {

/// Substitutes parameters in every string of `doc`, in place and without recursion:
/// "${name}" takes the parameter's value, "${a * b}" an integer expression of
/// parameters, numbers and sizes. Inside a repeat's "ops" and a template's keys
/// other than "count", their index names are left for the expansion. `pointer` is
/// where `doc` sits, for messages.
void substitute(Json& doc, const Json& params, const std::string& pointer);

/// Threads or processes a template may make, and a workload in all.
constexpr uint64_t kMaxTemplateCount = 65536;

/// One thread or process after templates are expanded: its JSON with the template's
/// index substituted, the pointer of what it came from, and the parameters its
/// ops see (the workload's, nr_cpus, and every enclosing template's index).
struct Expanded {
  Json value;
  std::string ptr;
  Json env;
  std::string copy;  // "i = 3" for a template's copy, empty otherwise
};

/// `e` with " (in the copy with i = 3)" added to its message when it arose in a
/// template's copy (every copy has the template's pointer).
InputError in_copy(const InputError& e, const Expanded& x);

/// The elements of "threads" or "processes" (an array, or one template object),
/// each template {"count": N, "index": "i", ...} replaced by N copies of itself
/// with "${i}" the copy's number, 0 to N-1. `what` is "thread" or "process";
/// `outer` names the enclosing copy ("p = 1") for messages.
std::vector<Expanded> expand_templates(const Json& list, const std::string& ptr, const Json& env,
                                       const char* what, const std::string& outer = "");

}  // namespace tlbsim::workload::detail

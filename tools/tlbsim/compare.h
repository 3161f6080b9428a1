// tlbsim compare: two or more runs side by side, with ratios to the first.
#pragma once

#include <string>
#include <vector>

namespace tlbsim {

struct CompareOptions {
  std::vector<std::string> runs;  // result directories or stats.json files
  std::string format = "text";    // text, csv, markdown
  bool all = false;               // every metric that differs, not just the headline ones
  std::string filter;             // keep metric paths containing this
  bool per_cpu = false;           // every CPU's row; default: cpu[*] sums over CPUs
  double threshold_percent = 0;   // keep metrics differing by more than this (0: any)
};

/// Prints the comparison to stdout; throws InputError for unreadable runs.
int run_compare(const CompareOptions& o);

}  // namespace tlbsim

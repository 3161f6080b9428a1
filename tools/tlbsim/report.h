// Run outputs: stats.json {meta, config, stats}, stats.csv and the terminal summary.
#pragma once

#include <functional>

#include <filesystem>
#include <ostream>

#include "base/stats.h"
#include "tools/tlbsim/experiment.h"

namespace tlbsim {

struct RunMeta {
  double host_seconds = 0;
  uint64_t simulated_cycles = 0;
  std::vector<std::string> command_line;  // argv of this tlbsim process
  std::vector<std::string> sets;          // the --set arguments, in order
};

/// "tlbsim VERSION (git REV, BUILD build)": `tlbsim --version` and stats.json meta.
std::string version_text();

/// FNV-1a 64 of the effective configuration, as 16 hex digits.
std::string config_hash(const Json& config);

/// The metrics shown by default in sweep.csv and `tlbsim compare`: per region the
/// headline counters, machine-wide the flush and shootdown totals.
bool headline_metric(const std::string& path);

/// Calls `f(path, leaf)` for every stat leaf ({"value", "unit", ...}) of a stats.json
/// tree, with the flat path stats.csv uses: list elements are NAME[i]
/// ("system.cpu[3].cycles"); null elements (idle CPUs) are skipped.
void for_each_stat(const Json& stats, const std::function<void(const std::string&, const Json&)>& f);

/// Writes stats.json and stats.csv into `dir` atomically. In stats.json, groups
/// named NAME[0], NAME[1], ... are one list NAME, a CPU whose statistics are all zero
/// null in it unless `all_cpus`; stats.csv lists every stat.
void write_outputs(const std::filesystem::path& dir, const Experiment& ex, const StatGroup& root,
                   const RunMeta& meta, bool all_cpus = false);

/// The terminal summary: per region and per CPU, the key metrics.
void print_summary(std::ostream& os, const Experiment& ex, const StatGroup& root, bool all_cpus,
                   const RunMeta& meta);

}  // namespace tlbsim

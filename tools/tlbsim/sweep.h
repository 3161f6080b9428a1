// Sweeps: an experiment's optional "sweep" object names axes (any --set key:
// machine, kernel, folio_size, kernel.zap_batching, workload.params.size, ...) and
// their values; the cartesian product of the axes gives the points. Each point runs
// in its own worker process (SystemC elaborates once per process), writes its own
// result directory atomically, and is skipped on --resume when its stats.json
// exists with the same configuration hash, so an interrupted sweep loses no
// finished work. sweep.csv (one row per point) is rewritten after every point.
// Backends: local worker processes (default), GNU parallel (several hosts through
// its --sshloginfile), or one Slurm job array collected by `tlbsim sweep-collect`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/params.h"
#include "tools/tlbsim/experiment.h"

namespace tlbsim {

struct SweepAxis {
  std::string key;          // a --set path
  std::vector<Json> values;
};

struct SweepPoint {
  size_t index = 0;
  std::string label;                // "machine=x86_small kernel=linux-6.7"
  std::string dir;                  // "003-machine=x86_small,kernel=linux-6.7"
  std::vector<std::string> sets;    // --set arguments of this point
  std::vector<std::string> values;  // axis values as text, in axis order
};

/// The axes of the experiment's "sweep" object (empty when it has none).
std::vector<SweepAxis> read_sweep_axes(const std::filesystem::path& file);

/// Rejects (InputError at the axis in `file`) a --set that names a key some axis
/// sweeps. Overrides under a preset axis (machine, kernel, workload) apply on top of
/// each point's preset, so they are fine.
void check_sweep_sets(const std::vector<std::string>& sets, const std::vector<SweepAxis>& axes,
                      const std::filesystem::path& file);

/// The cartesian product, first axis varying slowest.
std::vector<SweepPoint> expand_sweep(const std::vector<SweepAxis>& axes);

struct SweepOptions {
  std::filesystem::path experiment;
  std::vector<std::string> sets;  // applied to every point
  std::filesystem::path out;
  unsigned jobs = 1;
  bool resume = false;
  bool quiet = false;
  std::string self;  // path of the tlbsim executable
  SearchPaths paths;
  std::optional<uint64_t> max_host_memory;  // --max-host-memory, for every point
  std::string trace_name;  // --trace: this file name in every point's directory
  std::string debug;       // --debug, for every point (its output goes to run.log)
  std::string backend = "local";  // local | parallel | slurm
  std::string sshloginfile;       // parallel: GNU parallel's --sshloginfile
  std::vector<std::string> sbatch_args;  // slurm: extra sbatch options
  bool wait = false;              // slurm: wait for the job array, then collect
  bool all_cpus = false;          // --all-cpus for every point (idle CPUs kept in stats.json)
};

/// Runs every point on the backend; returns 0 when all succeeded, 2 when some point
/// had bad input, 1 when some point failed otherwise (or, submitted to Slurm
/// without --wait, 0 once the array is queued). Prints progress and the table.
int run_sweep(const SweepOptions& opts, const std::vector<SweepAxis>& axes);

/// `tlbsim sweep-collect DIR`: sweep.csv and the table from the points' result
/// directories, for a sweep whose points ran elsewhere (a Slurm job array).
/// Returns as run_sweep does; 1 also when some point has not finished.
int collect_sweep(const std::filesystem::path& out, bool quiet);

}  // namespace tlbsim

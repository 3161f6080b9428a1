// The inside of a sweep, shared by its backends (tools/tlbsim/sweep.cpp runs points
// as local worker processes; sweep_backends.cpp hands them to GNU parallel or to a
// Slurm job array). A plan is every point's effective configuration, its status so
// far, the points still to run and the command line of each.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tools/tlbsim/sweep.h"
#include "tools/tlbsim/worker_pool.h"

namespace tlbsim {

struct PointResult {
  std::string status = "pending";  // ok, skipped, bad_input, failed, pending
  std::string error;
  std::map<std::string, double> metrics;
  double seconds = 0;
};

/// Effective configuration of each point, as sweep.csv shows it.
struct PointConfigs {
  std::vector<std::map<std::string, std::string>> flat;  // per point (empty: bad input)
  std::vector<std::string> hash;                         // per point
  std::vector<std::string> columns;  // keys that differ between points or were --set
};

struct SweepPlan {
  std::vector<SweepAxis> axes;
  std::vector<SweepPoint> points;
  std::vector<PointResult> res;
  PointConfigs cfg;
  std::vector<size_t> todo;       // points to run, in order
  std::vector<WorkerJob> jobs;    // per point: `tlbsim run … --point` and its log
};

/// Where a sweep keeps what its backends and `tlbsim sweep-collect` need:
/// inputs.json (the experiment, --set list and options), the command file of the
/// external backends, their logs and the Slurm job id.
inline std::filesystem::path sweep_state_dir(const std::filesystem::path& out) {
  return out / ".sweep";
}

/// A point's exit status, written when it ends by every backend (a point without
/// one and without results has not run, or is still running).
inline const char* kPointExitStatus = "exit_status";

/// The status of points `which` from their directories: ok (stats.json of this
/// configuration), bad_input / failed (exit_status and run.log), else pending.
void collect_points(const std::filesystem::path& out, SweepPlan& plan,
                    const std::vector<size_t>& which);

/// sweep.csv of the plan as it stands (written atomically).
void write_sweep_csv(const std::filesystem::path& out, const SweepPlan& plan);

/// Runs the plan's points with GNU parallel; statuses collected afterwards.
void run_parallel_backend(const SweepOptions& o, SweepPlan& plan);

/// Submits the plan's points as one Slurm job array. Returns true when it waited
/// for the array (--wait) and the points can be collected now.
bool run_slurm_backend(const SweepOptions& o, SweepPlan& plan);

/// Refuses (InputError) a sweep of `out` while a job array an earlier
/// `--backend slurm` submitted there is still queued or running.
void check_no_active_slurm_job(const std::filesystem::path& out);

/// A shell word: `s` in single quotes, as sh reads it back unchanged.
std::string shell_quote(const std::string& s);

}  // namespace tlbsim

// Sweep points on existing engines: GNU parallel (local cores, or several hosts
// with its --sshloginfile) and Slurm (one job array, `sbatch --array`). Both get
// one shell command per point, which runs `tlbsim run … --point` into the point's
// directory and records its exit status there, so `collect_points` reads every
// backend's results the same way. The commands carry absolute paths and the
// search path (TLBSIM_ROOT, TLBSIM_PATH), for hosts that share the file system.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "base/error.h"
#include "base/file_util.h"
#include "tools/tlbsim/sweep_plan.h"

namespace tlbsim {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

namespace {

/// The executable `name` on PATH, or empty.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path p = fs::path(dir) / name;
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

std::string require_tool(const std::string& name, const std::string& package,
                         const std::string& backend) {
  const std::string exe = find_on_path(name);
  if (exe.empty())
    throw InputError("", name + " is not on PATH: install the Debian package " + package +
                             " (tools/bootstrap does), or choose another --backend (local, "
                             "parallel, slurm)",
                     "--backend " + backend);
  return exe;
}

/// One point as a shell command: run it, keep its output in run.log and its exit
/// status in exit_status.
std::string point_command(const SweepOptions& o, const SweepPlan& plan, size_t idx) {
  const fs::path dir = o.out / plan.points[idx].dir;
  std::string search;
  for (const auto& p : o.paths.workloads) search += (search.empty() ? "" : ":") + p.string();
  std::string cmd = "cd " + shell_quote(fs::current_path().string()) + " && env TLBSIM_ROOT=" +
                    shell_quote(o.paths.root.string()) + " TLBSIM_PATH=" + shell_quote(search) +
                    " SYSTEMC_DISABLE_COPYRIGHT_MESSAGE=1";
  for (const auto& a : plan.jobs[idx].argv) cmd += " " + shell_quote(a);
  cmd += " > " + shell_quote((dir / "run.log").string()) + " 2>&1; echo $? > " +
         shell_quote((dir / kPointExitStatus).string());
  return cmd;
}

fs::path write_commands(const SweepOptions& o, const SweepPlan& plan) {
  std::string text;
  for (size_t idx : plan.todo) text += point_command(o, plan, idx) + "\n";
  const fs::path f = sweep_state_dir(o.out) / "commands.txt";
  write_file_atomic(f, text);
  return f;
}

/// Runs argv (stdout and stderr to `log`) and returns its exit code.
int run_tool(const std::vector<std::string>& argv, const fs::path& log) {
  int code = 0;
  run_workers({WorkerJob{argv, log}}, {0}, 1, [&](size_t, const WorkerResult& r) { code = r.exit_code; });
  return code;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

void run_parallel_backend(const SweepOptions& o, SweepPlan& plan) {
  const std::string exe = require_tool("parallel", "parallel", "parallel");
  if (plan.todo.empty()) return;
  const fs::path commands = write_commands(o, plan);
  const fs::path state = sweep_state_dir(o.out);
  std::vector<std::string> argv = {exe, "--will-cite", "--jobs", std::to_string(o.jobs),
                                   "--joblog", (state / "parallel.joblog").string()};
  if (!o.sshloginfile.empty()) {
    argv.push_back("--sshloginfile");
    argv.push_back(fs::absolute(o.sshloginfile).string());
  }
  argv.push_back("::::");
  argv.push_back(commands.string());
  if (!o.quiet)
    std::cerr << "tlbsim: running " << plan.todo.size() << " points with GNU parallel (-j "
              << o.jobs << (o.sshloginfile.empty() ? "" : ", hosts of " + o.sshloginfile)
              << "); job log " << (state / "parallel.joblog").string() << "\n";
  const int code = run_tool(argv, state / "parallel.log");
  // parallel exits with the number of failed jobs (101: more than 100); above
  // that it failed itself, and its log says why.
  if (code > 101)
    std::cerr << "tlbsim: GNU parallel failed (exit " << code << "): "
              << first_line(read_log(state / "parallel.log")) << "\n";
}

bool run_slurm_backend(const SweepOptions& o, SweepPlan& plan) {
  const std::string exe = require_tool("sbatch", "slurm-wlm", "slurm");
  if (plan.todo.empty()) return true;
  const fs::path commands = write_commands(o, plan);
  const fs::path state = sweep_state_dir(o.out);
  const fs::path script = state / "job.sh";
  write_file_atomic(script,
                    "#!/bin/sh\n"
                    "# One point of a tlbsim sweep per array task: task N runs line N+1 of\n"
                    "# commands.txt (written by tlbsim run --backend slurm).\n"
                    "line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" " +
                        shell_quote(commands.string()) + ")\n"
                    "exec sh -c \"$line\"\n");
  std::vector<std::string> argv = {
      exe, "--parsable", "--job-name=tlbsim-" + o.out.filename().string(),
      "--array=0-" + std::to_string(plan.todo.size() - 1),
      "--output=" + (state / "slurm-%A_%a.out").string()};
  if (o.wait) argv.push_back("--wait");
  for (const auto& a : o.sbatch_args) argv.push_back(a);
  argv.push_back(script.string());
  const fs::path log = state / "sbatch.log";
  const int code = run_tool(argv, log);
  const std::string out = read_log(log);
  // --parsable prints "jobid[;cluster]" first; with --wait sbatch then exits with
  // the highest exit code of the tasks, which the points' own statuses report.
  const std::string id = first_line(out).substr(0, first_line(out).find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw InputError("", "sbatch failed (exit " + std::to_string(code) + "): " +
                             first_line(out), "--backend slurm");
  write_file_atomic(state / "slurm_job", id + "\n");
  if (o.wait) return true;
  std::cout << "submitted Slurm job array " << id << " (" << plan.todo.size()
            << " points); when it has finished: tlbsim sweep-collect " << o.out.string() << "\n";
  return false;
}

void check_no_active_slurm_job(const fs::path& out) {
  const std::string id = read_log(sweep_state_dir(out) / "slurm_job");
  const std::string squeue = find_on_path("squeue");
  if (id.empty() || squeue.empty()) return;
  const fs::path log = sweep_state_dir(out) / "squeue.log";
  // Only states in which a task may still write: a finished job can stay listed
  // for a while (MinJobAge).
  run_tool({squeue, "-h", "-j", id, "-t", "PD,R,CG,S,CF", "-o", "%i"}, log);
  // squeue of a finished job prints nothing (or an "Invalid job id" error).
  const std::string listed = read_log(log);
  if (!listed.empty() && listed.find("nvalid") == std::string::npos)
    throw InputError("", "the Slurm job array " + id + " submitted for this directory is still "
                         "queued or running; wait for it (squeue -j " + id + ") or cancel it "
                         "(scancel " + id + ")", "--out " + out.string());
}

}  // namespace tlbsim

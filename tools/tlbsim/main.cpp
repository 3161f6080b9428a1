// tlbsim — the command line. Exit codes: 0 success, 2 bad input, 1 internal error.
#include <systemc>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "base/asan_stack.h"
#include "base/error.h"
#include "base/file_util.h"
#include "base/json_text.h"
#include "base/log.h"
#include "base/size.h"
#include "mm/kernel_versions.h"
#include "models/system.h"
#include "tools/tlbsim/experiment.h"
#include "tools/tlbsim/report.h"
#include "tools/tlbsim/compare.h"
#include "tools/tlbsim/host_calibrate.h"
#include "tools/tlbsim/sweep.h"

#include <unistd.h>


namespace {

using namespace tlbsim;

SearchPaths search_paths() { return SearchPaths::from_environment(); }

int cmd_params(bool markdown) {
  std::vector<ParamInfo> rows;
  MachineParams machine;
  mm::KernelProfile kernel;
  machine.describe("machine.", rows);
  kernel.describe("kernel.", rows);
  if (markdown) {
    std::cout << "| key | type | default | range | unit | description |\n"
                 "|---|---|---|---|---|---|\n";
    for (auto& r : rows) {
      std::string doc = r.doc;
      if (!r.choices.empty()) doc += " One of: " + join_choices(r.choices) + ".";
      std::cout << "| `" << r.key << "` | " << r.type << " | `" << r.default_value.dump() << "` | "
                << r.range << " | " << r.unit << " | " << doc << " |\n";
    }
    return 0;
  }
  for (auto& r : rows) {
    std::cout << r.key << " = " << r.default_value.dump();
    if (!r.unit.empty()) std::cout << " [" << r.unit << "]";
    std::cout << " (" << r.type << (r.range.empty() ? "" : ", " + r.range) << ")\n    " << r.doc;
    if (!r.choices.empty()) std::cout << " One of: " << join_choices(r.choices) << ".";
    std::cout << "\n";
  }
  return 0;
}

/// `tlbsim kernels`: the release behind every behaviour switch (mm/kernel_versions.cpp).
int cmd_kernels(bool markdown) {
  if (markdown) {
    std::cout << mm::kernel_versions_markdown();
    return 0;
  }
  for (const auto& sw : mm::kernel_version_table()) {
    std::cout << "kernel." << sw.key << "\n";
    for (const auto& st : sw.steps)
      std::cout << "  " << mm::format_kernel_version(st.since)
                << (&st == &sw.steps.front() ? ":  " : "+: ") << st.value << "  (" << st.source
                << ")\n";
  }
  return 0;
}

int cmd_validate(const std::string& file, const std::vector<std::string>& sets,
                 std::optional<uint64_t> max_host_memory) {
  const auto axes = read_sweep_axes(file);
  if (axes.empty()) {
    auto ex = load_experiment(file, sets, search_paths());
    check_host_memory(*ex, max_host_memory);
    std::cout << file << ": valid (machine " << ex->machine_preset << ", kernel "
              << ex->kernel_profile << ", " << ex->workload.processes.size()
              << " process(es), about " << format_size(estimate_host_memory(*ex).bytes >> 20 << 20)
              << " of host memory)\n";
    return 0;
  }
  // A sweep: every point must load; report each bad point.
  check_sweep_sets(sets, axes, file);
  int bad = 0;
  const auto points = expand_sweep(axes);
  for (const auto& p : points) {
    std::vector<std::string> all = sets;
    all.insert(all.end(), p.sets.begin(), p.sets.end());
    try {
      check_host_memory(*load_experiment(file, all, search_paths(), true), max_host_memory);
    } catch (const InputError& e) {
      std::cerr << "tlbsim: sweep point " << p.index << " (" << p.label << "): " << e.what() << "\n";
      ++bad;
    }
  }
  if (bad) return 2;
  std::cout << file << ": valid sweep of " << points.size() << " points\n";
  return 0;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("cannot find the tlbsim executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

/// Refuses (exit 2, before anything runs) an output directory that cannot be
/// created or written, and a --trace file whose directory cannot be written.
void check_writable(const std::string& out, const std::string& trace) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out, ec))
    throw InputError("", "cannot create the output directory (" +
                             (ec ? ec.message() : std::string("a file is in the way")) + ")",
                     "--out " + out);
  if (access(out.c_str(), W_OK | X_OK) != 0)
    throw InputError("", "the output directory is not writable", "--out " + out);
  if (trace.empty()) return;
  fs::path dir = fs::path(trace).parent_path();
  if (dir.empty()) dir = ".";
  if (fs::is_directory(trace, ec) || !fs::is_directory(dir, ec) ||
      access(dir.c_str(), W_OK | X_OK) != 0)
    throw InputError("", "cannot write the timeline there (a directory, or not writable)",
                     "--trace " + trace);
}

int cmd_run(const std::string& file, const std::vector<std::string>& sets, std::string out,
            bool quiet, bool point, unsigned jobs, bool resume, const std::string& trace,
            std::optional<uint64_t> max_host_memory,
            const std::vector<std::string>& command_line, const std::string& debug,
            const std::vector<std::string>& debug_categories, bool all_cpus,
            const SweepOptions& backend) {
  if (!backend.sshloginfile.empty() && backend.backend != "parallel")
    throw InputError("", "--sshloginfile is for --backend parallel", "--sshloginfile");
  if ((backend.wait || !backend.sbatch_args.empty()) && backend.backend != "slurm")
    throw InputError("", "--wait and --sbatch-arg are for --backend slurm", "--backend " + backend.backend);
  if (!point) {
    const auto axes = read_sweep_axes(file);
    if (axes.empty() && backend.backend != "local")
      throw InputError("", "--backend " + backend.backend + " runs the points of a sweep; " + file +
                               " has no \"sweep\" (run it without --backend)", "--backend");
    if (!axes.empty()) {
      SweepOptions o = backend;
      o.experiment = file;
      o.sets = sets;
      const std::string name = experiment_name(read_json_file(file), file);
      o.out = out.empty() ? "results/" + name : out;
      o.jobs = jobs;
      o.resume = resume;
      o.quiet = quiet;
      o.self = self_exe();
      o.paths = search_paths();
      o.max_host_memory = max_host_memory;
      o.trace_name = trace.empty() ? "" : std::filesystem::path(trace).filename().string();
      o.debug = debug;
      o.all_cpus = all_cpus;
      if (o.backend != "local") {  // the commands run elsewhere: absolute paths
        o.out = std::filesystem::absolute(o.out).lexically_normal();
        o.experiment = std::filesystem::absolute(o.experiment).lexically_normal();
      }
      return run_sweep(o, axes);
    }
  }
  // host_seconds covers the whole run: reading and checking the experiment (a
  // replay's traces are read once to check them), the simulation, the results.
  const auto t0 = std::chrono::steady_clock::now();
  auto ex = load_experiment(file, sets, search_paths(), point);
  check_host_memory(*ex, max_host_memory);
  if (out.empty()) out = "results/" + ex->name;
  check_writable(out, trace);
  StatGroup root("");
  uint64_t sim_cycles = 0;
  {
    System sys(*ex->machine, *ex->kernel, ex->workload, ex->seed, &root);
    std::unique_ptr<TraceWriter> tw;
    // --debug prints the timeline's events of its categories as they happen; without
    // --trace the timeline itself is not kept.
    if (!trace.empty() || !debug_categories.empty()) {
      tw = std::make_unique<TraceWriter>(ex->machine->freq_ghz(), "tlbsim " + ex->name,
                                         !trace.empty());
      tw->log_categories(debug_categories);
      sys.set_trace(tw.get());
    }
    try {
      sys.run();
    } catch (const InputError& e) {
      asan::unpoison_main_stack_below_caller();  // rethrown after sc_start: base/asan_stack.h
      // A run-time error the models raised without a place is the workload's: name it.
      const bool catalog = !ex->workload_ref.empty();
      const InputError placed = e.where().empty()
                                    ? InputError(catalog ? "/" : "/workload", e.message(), e.file())
                                    : e;
      throw placed.in_file(catalog ? ex->workload_ref : file);
    }
    for (unsigned c = 0; c < sys.nr_cpus(); ++c)
      sim_cycles = std::max<uint64_t>(sim_cycles, sys.core(c).stats().cycles);
    RunMeta meta;
    meta.command_line = command_line;
    meta.sets = sets;
    meta.host_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    meta.simulated_cycles = sim_cycles;
    write_outputs(out, *ex, root, meta, all_cpus);
    if (tw && !trace.empty()) tw->write(trace);
    if (!quiet) print_summary(std::cout, *ex, root, all_cpus, meta);
  }
  if (!quiet) std::cout << "results: " << out << "/stats.json\n";
  return 0;
}

}  // namespace

// SystemC's library defines main() and prints a banner before calling sc_main;
// ours silences the banner first and then hands over to SystemC as usual.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
  return sc_core::sc_elab_and_sim(argc, argv);
}

int sc_main(int argc, char* argv[]) {
  // Two threads failing in one run both stop the simulation; the second sc_stop()
  // is expected, not worth a warning that breaks the one-line error.
  sc_core::sc_report_handler::set_actions(sc_core::SC_ID_SIMULATION_STOP_CALLED_TWICE_,
                                          sc_core::SC_DO_NOTHING);
  CLI::App app{"tlbsim: a simulator of address translation and its upkeep"};
  app.set_version_flag("--version", version_text(), "Print the version, git revision and build type");
  const std::vector<std::string> command_line(argv, argv + argc);
  app.require_subcommand(1);
  std::string file, out, debug, workload_file;
  std::vector<std::string> debug_categories;
  std::vector<std::string> sets;
  bool quiet = false, markdown = false, point = false, resume = false, all_cpus = false;
  unsigned jobs = std::max(1u, static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN)));
  auto* run = app.add_subcommand("run", "Run an experiment and write its statistics");
  run->add_option("experiment", file, "Experiment JSON file")->required();
  run->add_option("--out", out, "Output directory (default results/<experiment name>)");
  run->add_option("--workload", workload_file,
                  "Run this workload file (or catalog name) instead of the experiment's");
  run->add_option("--set", sets, "Override a parameter: key.path=value (repeatable)");
  run->add_flag("--quiet", quiet, "Print nothing but errors");
  run->add_flag("--all-cpus", all_cpus,
                "List idle CPUs too: in the summary, and in stats.json (otherwise null there)");
  std::string debug_help = "Print events as they happen (stderr), comma separated:";
  for (const auto& c : log::debug_categories())
    debug_help += std::string("\n      ") + c.name + ": " + c.what;
  run->add_option("--debug", debug, debug_help);
  run->add_option("-j,--jobs", jobs, "Sweep: worker processes (default: number of cores)")
      ->check(CLI::PositiveNumber);
  std::string trace, max_host_memory_text;
  run->add_option("--trace", trace, "Write a Perfetto/Chrome JSON timeline of the run to FILE");
  run->add_option("--max-host-memory", max_host_memory_text,
                  "Refuse runs estimated to need more host memory than SIZE (default: the "
                  "host's MemAvailable)");
  run->add_flag("--resume", resume, "Sweep: skip points whose results exist (same configuration)");
  SweepOptions backend;
  run->add_option("--backend", backend.backend,
                  "Sweep: where the points run: local (worker processes, default), parallel "
                  "(GNU parallel), slurm (one sbatch job array; then tlbsim sweep-collect)")
      ->check(CLI::IsMember({"local", "parallel", "slurm"}));
  run->add_option("--sshloginfile", backend.sshloginfile,
                  "Sweep, --backend parallel: GNU parallel's host list (shared file system)");
  run->add_option("--sbatch-arg", backend.sbatch_args,
                  "Sweep, --backend slurm: an extra sbatch option, e.g. --sbatch-arg=--partition=p "
                  "(repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--wait", backend.wait,
                "Sweep, --backend slurm: wait for the job array, then collect as a local sweep does");
  run->add_flag("--point", point, "Run one point of a sweep (used by the sweep runner)")
      ->group("");
  auto* collect = app.add_subcommand(
      "sweep-collect", "Build sweep.csv and the table of a sweep whose points ran elsewhere "
                       "(--backend slurm); lists points not finished");
  collect->add_option("dir", out, "The sweep's results directory")->required();
  collect->add_flag("--quiet", quiet, "Print nothing but errors");
  auto* validate = app.add_subcommand("validate", "Check an experiment without running it");
  validate->add_option("experiment", file, "Experiment JSON file")->required();
  validate->add_option("--workload", workload_file,
                       "Check this workload file (or catalog name) instead of the experiment's");
  validate->add_option("--set", sets, "Override a parameter: key.path=value (repeatable)");
  validate->add_option("--max-host-memory", max_host_memory_text,
                       "Refuse runs estimated to need more host memory than SIZE");
  auto* params = app.add_subcommand("params", "List every parameter with default, unit and doc");
  params->add_flag("--markdown", markdown, "Print a Markdown table");
  auto* kernels = app.add_subcommand(
      "kernels", "List every kernel behaviour switch with the release that changed it");
  kernels->add_flag("--markdown", markdown, "Print the Markdown table of docs/kernel-profiles.md");
  CompareOptions cmp;
  auto* compare = app.add_subcommand("compare", "Print two or more runs side by side with ratios");
  compare->add_option("runs", cmp.runs, "Result directories or stats.json files")->required();
  compare->add_flag("--all", cmp.all, "Every metric that differs, not only the headline ones");
  compare->add_option("--filter", cmp.filter, "Only metrics whose path contains this text");
  compare->add_flag("--per-cpu", cmp.per_cpu,
                    "One row per CPU (default: cpu[*] rows sum over CPUs, means weighted by count)");
  compare->add_option("--threshold", cmp.threshold_percent,
                      "Only metrics that differ from the first run by more than PCT %");
  bool csv = false, md = false;
  compare->add_flag("--csv", csv, "CSV output");
  compare->add_flag("--markdown", md, "Markdown table output");
  HostCommandOptions host;
  host.jobs = jobs;
  auto* calibrate = app.add_subcommand(
      "calibrate", "Fit a preset's cost table to host measurements (tools/hostbench) on the "
                   "calibration subset and write the calibrated preset");
  calibrate->add_option("measurements", host.measurements, "Measurement file (tools/hostbench)")->required();
  calibrate->add_option("--machine", host.machine, "Base machine preset (name or file)")->required();
  calibrate->add_option("--out", host.out, "Calibrated preset file to write")->required();
  calibrate->add_option("--kernel", host.kernel, "Kernel profile of the replay (the host's kernel)");
  calibrate->add_option("--lambda", host.lambda, "Weight of the prior (the base preset's values)");
  calibrate->add_option("-j,--jobs", host.jobs, "Worker processes")->check(CLI::PositiveNumber);
  calibrate->add_option("--work", host.work, "Keep the replay experiments and results here");
  calibrate->add_flag("--quiet", host.quiet, "No progress");
  auto* validate_host = app.add_subcommand(
      "validate-host", "Compare every host measurement with its replay: times, folio-size "
                       "ratios, counts");
  validate_host->add_option("measurements", host.measurements, "Measurement file (tools/hostbench)")->required();
  validate_host->add_option("--machine", host.machine, "Machine preset (name or file)")->required();
  validate_host->add_option("--kernel", host.kernel, "Kernel profile of the replay (the host's kernel)");
  bool hmd = false, hcsv = false;
  validate_host->add_flag("--markdown", hmd, "Markdown tables");
  validate_host->add_flag("--csv", hcsv, "CSV");
  validate_host->add_option("--plot", host.plot, "Write a figure: PLOT.png and PLOT.svg (gnuplot)");
  validate_host->add_option("--fail-above", host.fail_above,
                            "Exit 1 when a hold-out ratio is off by more than PCT %, or a count differs");
  validate_host->add_option("-j,--jobs", host.jobs, "Worker processes")->check(CLI::PositiveNumber);
  validate_host->add_option("--work", host.work, "Keep the replay experiments and results here");
  validate_host->add_flag("--quiet", host.quiet, "No progress");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    std::optional<uint64_t> max_host_memory;
    if (!max_host_memory_text.empty()) {
      std::string why;
      max_host_memory = parse_size(max_host_memory_text, &why);
      if (!max_host_memory)
        throw InputError("", "expected a size such as \"8GiB\" (" + why + "), got " +
                                 quote_excerpt(max_host_memory_text), "--max-host-memory");
    }
    // --workload comes first: --set workload.params.* applies on top of it.
    if (!workload_file.empty()) sets.insert(sets.begin(), workload_set_argument(workload_file));
    if (quiet) log::set_quiet(true);
    if (!debug.empty()) {
      std::vector<std::string> cats;
      std::string cur;
      for (char c : debug + ",") {
        if (c == ',') {
          if (!cur.empty()) cats.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
      std::vector<std::string> valid;
      for (const auto& c : log::debug_categories()) valid.push_back(c.name);
      for (const auto& c : cats)
        if (std::find(valid.begin(), valid.end(), c) == valid.end()) {
          std::string msg = "unknown debug category " + quote_excerpt(c);
          const std::string near = closest_match(c, valid);
          if (!near.empty()) msg += " (did you mean \"" + near + "\"?)";
          throw InputError("", msg + "; valid: " + join_choices(valid), "--debug " + debug);
        }
      if (std::find(cats.begin(), cats.end(), "all") != cats.end()) {
        cats.clear();
        for (const auto& c : valid)
          if (c != "all") cats.push_back(c);
      }
      log::enable_debug(cats);
      debug_categories = cats;
    }
    if (*params) return cmd_params(markdown);
    if (*kernels) return cmd_kernels(markdown);
    if (*compare) {
      cmp.format = csv ? "csv" : md ? "markdown" : "text";
      return run_compare(cmp);
    }
    if (*validate) return cmd_validate(file, sets, max_host_memory);
    if (*calibrate || *validate_host) {
      host.self = self_exe();
      if (*calibrate) return run_calibrate(host);
      host.format = hcsv ? "csv" : hmd ? "markdown" : "text";
      return run_validate_host(host);
    }
    if (*collect) return collect_sweep(out, quiet);
    return cmd_run(file, sets, out, quiet, point, jobs, resume, trace, max_host_memory,
                   command_line, debug, debug_categories, all_cpus, backend);
  } catch (const InputError& e) {
    asan::unpoison_main_stack_below_caller();  // thrown after sc_start: base/asan_stack.h
    // An error in the --workload argument names the option the user wrote.
    if (!workload_file.empty() && e.file() == "--set " + workload_set_argument(workload_file)) {
      std::cerr << "tlbsim: " << InputError(e.where(), e.message(), "--workload " + workload_file).what()
                << "\n";
      return 2;
    }
    std::cerr << "tlbsim: " << e.what() << "\n";
    return 2;
  } catch (const CoherenceStop& e) {
    asan::unpoison_main_stack_below_caller();
    std::cerr << "tlbsim: stopped at the first TLB coherence violation "
                 "(machine.coherence_fail_fast): "
              << one_line(e.what()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    asan::unpoison_main_stack_below_caller();
    std::cerr << "tlbsim: internal error: " << one_line(e.what()) << "\n";
    return 1;
  }
}

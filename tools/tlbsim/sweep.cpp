#include "tools/tlbsim/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/file_util.h"
#include "base/json_text.h"
#include "base/stats.h"
#include "tools/tlbsim/experiment.h"
#include "tools/tlbsim/report.h"
#include "tools/tlbsim/sweep_plan.h"
#include "tools/tlbsim/worker_pool.h"

namespace tlbsim {

namespace fs = std::filesystem;

std::vector<SweepAxis> read_sweep_axes(const fs::path& file) {
  const Json doc = read_json_file(file);
  std::vector<SweepAxis> axes;
  auto it = doc.find("sweep");
  if (it == doc.end()) return axes;
  const std::string f = file.string();
  if (!it->is_object() || it->empty())
    throw InputError("/sweep", "expected an object of axes, e.g. {\"machine\": [\"x86_small\", "
                               "\"x86_server\"], \"folio_size\": [\"4KiB\", \"64KiB\"]}", f);
  static const std::set<std::string> kTops = {"machine", "kernel", "workload", "seed",
                                              "folio_size"};
  for (auto a = it->begin(); a != it->end(); ++a) {
    const std::string ptr = "/sweep/" + json_pointer_escape(a.key());
    const std::string top = a.key().substr(0, a.key().find('.'));
    if (!kTops.count(top))
      throw InputError(ptr, "unknown sweep axis " + quote_excerpt(a.key()) + "; axes are --set "
                            "keys under machine, kernel, workload, seed or folio_size", f);
    if (!a->is_array() || a->empty())
      throw InputError(ptr, "expected a non-empty array of values, got " + json_excerpt(*a), f);
    axes.push_back(SweepAxis{a.key(), std::vector<Json>(a->begin(), a->end())});
  }
  return axes;
}

namespace {
std::string text_of(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

/// A value as the progress lines and messages show it: at most a short excerpt.
std::string label_of(const Json& v) {
  const std::string t = text_of(v);
  return t.size() <= kExcerptChars && one_line(t) == t ? t : json_excerpt(v);
}

/// Bytes of the axis part of a point directory's name; longer names are cut and
/// given a hash of the whole, so that no user string makes a name the filesystem
/// refuses (NAME_MAX is 255) and different points never share a directory.
constexpr size_t kMaxDirLabel = 120;

std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                         c == '_' || c == '=' || c == ',') ? c : '_';
  return o;
}
}  // namespace

std::vector<SweepPoint> expand_sweep(const std::vector<SweepAxis>& axes) {
  std::vector<SweepPoint> points(1);
  for (const auto& axis : axes) {
    std::vector<SweepPoint> next;
    for (const auto& p : points) {
      for (const auto& v : axis.values) {
        SweepPoint q = p;
        q.sets.push_back(axis.key + "=" + v.dump());
        q.values.push_back(text_of(v));
        q.label += (q.label.empty() ? "" : " ") + label_of(Json(axis.key)).substr(0, 60) + "=" +
                   label_of(v);
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].index = i;
    char num[24];
    std::snprintf(num, sizeof num, "%03zu", i);
    std::string name;
    for (size_t a = 0; a < axes.size(); ++a)
      name += (a ? "," : "") + axes[a].key + "=" + points[i].values[a];
    std::string label = sanitize(name);
    if (label.size() > kMaxDirLabel)
      label = label.substr(0, kMaxDirLabel) + "-" + config_hash(Json(name)).substr(0, 8);
    points[i].dir = std::string(num) + "-" + label;
  }
  return points;
}

void check_sweep_sets(const std::vector<std::string>& sets, const std::vector<SweepAxis>& axes,
                      const std::filesystem::path& file) {
  // An override of a key that an axis sweeps would either be ignored by every
  // point or make the axis meaningless: refuse it. Overrides *under* a preset axis
  // (machine, kernel, workload) are fine: they apply on top of each point's preset.
  auto key_of = [](const std::string& s) { return s.substr(0, s.find('=')); };
  auto nested = [](const std::string& a, const std::string& b) {  // b under a
    return b.size() > a.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '.';
  };
  for (const auto& s : sets) {
    const std::string k = key_of(s);
    for (const auto& a : axes) {
      const bool preset_axis = a.key == "machine" || a.key == "kernel" || a.key == "workload";
      if (k == a.key || (!preset_axis && nested(a.key, k)) || nested(k, a.key))
        throw InputError("/sweep/" + json_pointer_escape(a.key),
                         "the sweep axis " + quote_excerpt(a.key) + " conflicts with --set " +
                             quote_excerpt(s) + " (each point sets it); drop the --set or the axis",
                         file.string());
    }
  }
}

namespace {

/// Leaves of an effective configuration as "machine.l1d.entries" → text.
void flatten_config(const Json& j, const std::string& path, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (path.empty() && it.key() == "workload") {
        if (auto p = it->find("params"); p != it->end()) flatten_config(*p, "workload.params", out);
        continue;
      }
      if (!it.key().empty() && it.key()[0] == '_') continue;
      flatten_config(*it, path.empty() ? it.key() : path + "." + it.key(), out);
    }
    return;
  }
  out[path] = j.is_string() ? j.get<std::string>() : j.dump();
}

/// Flattened leaves of a stats.json ("system.regions.region[x].cycles" → value).
std::map<std::string, double> metrics_of(const fs::path& stats_json) {
  std::map<std::string, double> m;
  Json j = read_json_file(stats_json);
  for_each_stat(j["stats"], [&](const std::string& path, const Json& n) {
    if (n["value"].is_number()) m[path] = n["value"].get<double>();
  });
  m["meta.simulated_cycles"] = j["meta"]["simulated_cycles"].get<double>();
  return m;
}

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string fmt_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

/// What `tlbsim sweep-collect` needs to rebuild the plan: written by every sweep.
void write_inputs(const SweepOptions& o) {
  Json j;
  j["experiment"] = fs::absolute(o.experiment).lexically_normal().string();
  j["sets"] = o.sets;
  j["root"] = o.paths.root.string();
  j["workload_paths"] = Json::array();
  for (const auto& p : o.paths.workloads) j["workload_paths"].push_back(fs::absolute(p).string());
  j["max_host_memory"] = o.max_host_memory ? Json(*o.max_host_memory) : Json();
  j["trace_name"] = o.trace_name;
  j["debug"] = o.debug;
  j["backend"] = o.backend;
  fs::create_directories(sweep_state_dir(o.out));
  write_file_atomic(sweep_state_dir(o.out) / "inputs.json", j.dump(2) + "\n");
}

/// Every point's effective configuration, the sweep.csv columns, the points still
/// to run (--resume reuses a result only for the very same configuration) and
/// their command lines. A point whose input is bad is reported without running.
SweepPlan plan_sweep(const SweepOptions& o, const std::vector<SweepAxis>& axes) {
  SweepPlan plan;
  plan.axes = axes;
  plan.points = expand_sweep(axes);
  const auto& points = plan.points;
  plan.res.resize(points.size());
  PointConfigs& cfg = plan.cfg;
  cfg.flat.resize(points.size());
  cfg.hash.resize(points.size());
  for (const auto& p : points) {
    std::vector<std::string> sets = o.sets;
    sets.insert(sets.end(), p.sets.begin(), p.sets.end());
    try {
      const auto ex = load_experiment(o.experiment, sets, o.paths, true);
      check_host_memory(*ex, o.max_host_memory);
      const Json c = ex->effective_config();
      cfg.hash[p.index] = config_hash(c);
      flatten_config(c, "", cfg.flat[p.index]);
    } catch (const InputError& e) {
      plan.res[p.index].status = "bad_input";
      plan.res[p.index].error = e.what();
    }
  }
  {
    std::set<std::string> axis_keys, set_keys, cols;
    for (const auto& a : axes) axis_keys.insert(a.key);
    for (const auto& s : o.sets) set_keys.insert(s.substr(0, s.find('=')));
    const std::map<std::string, std::string>* first = nullptr;
    for (const auto& f : cfg.flat) {
      if (f.empty()) continue;
      if (!first) first = &f;
      for (const auto& [k, v] : f) {
        auto it = first->find(k);
        if (it == first->end() || it->second != v || set_keys.count(k)) cols.insert(k);
      }
      for (const auto& [k, v] : *first)
        if (!f.count(k)) cols.insert(k);
    }
    for (const auto& c : cols)
      if (!axis_keys.count(c)) cfg.columns.push_back(c);
  }
  std::error_code ec;
  for (const auto& p : points) {
    if (plan.res[p.index].status == "bad_input") continue;
    const fs::path stats = o.out / p.dir / "stats.json";
    if (o.resume && fs::exists(stats)) {
      try {
        if (read_json_file(stats)["meta"]["config_hash"] == cfg.hash[p.index]) {
          plan.res[p.index].metrics = metrics_of(stats);
          plan.res[p.index].status = "skipped";
          continue;
        }
      } catch (const std::exception&) {
        // unreadable: run it again
      }
    }
    plan.todo.push_back(p.index);
  }
  plan.jobs.resize(points.size());
  for (size_t idx : plan.todo) {
    const SweepPoint& p = points[idx];
    const fs::path dir = o.out / p.dir;
    WorkerJob& j = plan.jobs[idx];
    j.argv = {o.self, "run", o.experiment.string(), "--quiet", "--point", "--out", dir.string()};
    if (o.max_host_memory) {
      j.argv.push_back("--max-host-memory");
      j.argv.push_back(std::to_string(*o.max_host_memory));
    }
    if (!o.trace_name.empty()) {
      j.argv.push_back("--trace");
      j.argv.push_back((dir / o.trace_name).string());
    }
    if (!o.debug.empty()) {
      j.argv.push_back("--debug");
      j.argv.push_back(o.debug);
    }
    if (o.all_cpus) j.argv.push_back("--all-cpus");
    for (const auto& s : o.sets) {
      j.argv.push_back("--set");
      j.argv.push_back(s);
    }
    for (const auto& s : p.sets) {
      j.argv.push_back("--set");
      j.argv.push_back(s);
    }
    j.log = dir / "run.log";
  }
  return plan;
}

/// Creates the points' directories, clearing what an earlier run left that would
/// be mistaken for this one's: temporary files of killed writers (nobody else
/// writes here: the lock) and the exit status and log of points about to run.
void prepare_point_dirs(const fs::path& out, const SweepPlan& plan) {
  std::error_code ec;
  for (const auto& p : plan.points) {
    for (const char* f : {"stats.json", "stats.csv"})
      for (const auto& e : fs::directory_iterator(out / p.dir, ec))
        if (e.path().filename().string().rfind(std::string(f) + ".tmp.", 0) == 0)
          fs::remove(e.path(), ec);
  }
  for (size_t idx : plan.todo) {
    const fs::path dir = out / plan.points[idx].dir;
    fs::create_directories(dir);
    // A point about to run has no result yet: an old one would read as this run's
    // to sweep-collect while a Slurm or parallel task is still pending.
    for (const char* f : {kPointExitStatus, "stats.json", "stats.csv"}) fs::remove(dir / f, ec);
  }
}

/// The table (per point, per region: cycles, flushes, IPIs, TLBIs), the failed
/// points on stderr, and the exit code.
int report_sweep(const fs::path& out, const SweepPlan& plan, bool quiet) {
  const auto& points = plan.points;
  const auto& res = plan.res;
  if (!quiet) {
    std::set<std::string> regions;
    for (const auto& r : res)
      for (const auto& [k, v] : r.metrics)
        if (k.rfind("system.regions.region[", 0) == 0) {
          auto end = k.find("].", 22);
          if (end != std::string::npos) regions.insert(k.substr(22, end - 22));
        }
    std::cout << "\n";
    int lw = 5;
    for (const auto& p : points) lw = std::max(lw, static_cast<int>(p.label.size()));
    lw = std::min(lw, 100);
    std::printf("%-4s %-*s %-9s", "#", lw, "point", "status");
    for (const auto& rg : regions)
      std::printf(" %16s %8s %8s %8s", (rg + ".cycles").c_str(), "flushes", "ipis", "tlbis");
    std::printf("\n");
    for (size_t i = 0; i < points.size(); ++i) {
      std::printf("%-4zu %-*s %-9s", i, lw, points[i].label.substr(0, 100).c_str(), res[i].status.c_str());
      for (const auto& rg : regions) {
        auto g = [&](const char* m) {
          auto it = res[i].metrics.find("system.regions.region[" + rg + "]." + m);
          return it == res[i].metrics.end() ? std::string("-") : format_number(it->second);
        };
        std::printf(" %16s %8s %8s %8s", g("cycles").c_str(), g("flush_requests").c_str(),
                    g("ipis_sent").c_str(), g("tlbis").c_str());
      }
      std::printf("\n");
    }
    std::fflush(stdout);
    std::cout << "\nresults: " << (out / "sweep.csv").string() << "\n";
  }
  bool bad = false, failed = false;
  size_t pending = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    if (res[i].status == "bad_input") bad = true;
    if (res[i].status == "failed") failed = true;
    if (res[i].status == "pending") ++pending;
    if (res[i].status == "bad_input" || res[i].status == "failed")
      std::cerr << "tlbsim: sweep point " << i << " (" << points[i].label << ") " << res[i].status
                << ": " << res[i].error << "\n";
  }
  if (pending)
    std::cerr << "tlbsim: " << pending << " of " << points.size()
              << " points have not finished; collect again later, or rerun them with --resume\n";
  return failed || pending ? 1 : bad ? 2 : 0;
}

/// Points run as local worker processes, -j at a time, with progress.
void run_local_backend(const SweepOptions& o, SweepPlan& plan) {
  const auto& points = plan.points;
  auto& res = plan.res;
  const bool tty = !o.quiet && isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  size_t done = points.size() - plan.todo.size(), ran = 0;
  double ran_seconds = 0;
  auto progress = [&](const std::string& line) {
    if (o.quiet) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const size_t left = points.size() - done;
    const double per = ran ? ran_seconds / ran : 0;
    const double eta = ran ? per * static_cast<double>(left) / std::max(1u, o.jobs) : 0;
    if (tty) {
      const int width = 30;
      const int filled = static_cast<int>(width * done / std::max<size_t>(1, points.size()));
      std::cerr << "\r\033[K" << line << "\n[" << std::string(filled, '=')
                << std::string(width - filled, ' ') << "] " << done << "/" << points.size()
                << " points, " << fmt_duration(elapsed) << " elapsed"
                << (ran ? ", ETA " + fmt_duration(eta) : "") << std::flush;
    } else {
      std::cerr << "[" << done << "/" << points.size() << "] " << line
                << (ran ? " (ETA " + fmt_duration(eta) + ")" : "") << "\n" << std::flush;
    }
  };
  run_workers(plan.jobs, plan.todo, o.jobs, [&](size_t idx, const WorkerResult& wr) {
    PointResult& r = res[idx];
    r.seconds = wr.seconds;
    const fs::path dir = o.out / points[idx].dir;
    write_file_atomic(dir / kPointExitStatus, std::to_string(wr.exit_code) + "\n");
    if (wr.exit_code == 0) {
      r.status = "ok";
      try {
        r.metrics = metrics_of(dir / "stats.json");
      } catch (const std::exception& e) {
        r.status = "failed";
        r.error = std::string("unreadable stats.json: ") + e.what();
      }
    } else {
      r.status = wr.exit_code == 2 ? "bad_input" : "failed";
      r.error = read_log(plan.jobs[idx].log);
    }
    ++done;
    ++ran;
    ran_seconds += wr.seconds;
    write_sweep_csv(o.out, plan);
    progress("point " + std::to_string(idx) + " " + r.status + ": " + points[idx].label + " (" +
             format_number(std::round(wr.seconds * 100) / 100) + " s)" +
             (r.error.empty() ? "" : " — " + r.error));
  });
  if (tty) std::cerr << "\n";
}

/// Holds the sweep lock of `out` for as long as this process (and, inherited, its
/// workers) lives.
void lock_sweep_dir(const fs::path& out) {
  // The lock's file description is inherited by the workers (no O_CLOEXEC), so it
  // stays held while any worker of an interrupted sweep is still alive: --resume
  // then refuses instead of racing it.
  const fs::path lock_path = out / ".sweep.lock";
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
  if (lock_fd < 0)
    throw InputError("", "cannot open the sweep lock " + lock_path.string() + ": " +
                             std::strerror(errno), "--out " + out.string());
  int rc;
  do rc = flock(lock_fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno == EWOULDBLOCK)
    throw InputError("", "another sweep, or a worker of an interrupted one, is still writing "
                         "this directory (" + lock_path.string() + " is locked); wait for it "
                         "to finish", "--out " + out.string());
  if (rc != 0)
    throw InputError("", "cannot lock " + lock_path.string() + ": " + std::strerror(errno),
                     "--out " + out.string());
}

}  // namespace

void write_sweep_csv(const fs::path& out, const SweepPlan& plan) {
  const auto& points = plan.points;
  const auto& res = plan.res;
  const auto& cfg = plan.cfg;
  std::set<std::string> cols;
  for (const auto& r : res)
    for (const auto& [k, v] : r.metrics)
      if (headline_metric(k)) cols.insert(k);
  std::ostringstream csv;
  csv << "point,dir";
  for (const auto& a : plan.axes) csv << "," << csv_escape(a.key);
  csv << ",status,config_hash";
  for (const auto& c : cfg.columns) csv << "," << csv_escape(c);
  for (const auto& c : cols) csv << "," << csv_escape(c);
  csv << ",error\n";
  for (size_t i = 0; i < points.size(); ++i) {
    csv << i << "," << csv_escape(points[i].dir);
    for (const auto& v : points[i].values) csv << "," << csv_escape(v);
    csv << "," << res[i].status << "," << cfg.hash[i];
    for (const auto& c : cfg.columns) {
      auto it = cfg.flat[i].find(c);
      csv << "," << (it == cfg.flat[i].end() ? "" : csv_escape(it->second));
    }
    for (const auto& c : cols) {
      auto it = res[i].metrics.find(c);
      csv << "," << (it == res[i].metrics.end() ? "" : format_number(it->second));
    }
    csv << "," << csv_escape(res[i].error) << "\n";
  }
  write_file_atomic(out / "sweep.csv", csv.str());
}

void collect_points(const fs::path& out, SweepPlan& plan, const std::vector<size_t>& which) {
  for (size_t idx : which) {
    PointResult& r = plan.res[idx];
    const fs::path dir = out / plan.points[idx].dir;
    const fs::path stats = dir / "stats.json";
    r.metrics.clear();
    r.error.clear();
    std::error_code ec;
    if (fs::exists(stats, ec)) {
      try {
        if (read_json_file(stats)["meta"]["config_hash"] == plan.cfg.hash[idx]) {
          r.metrics = metrics_of(stats);
          r.status = "ok";
          continue;
        }
      } catch (const std::exception&) {
        // unreadable: as if absent
      }
    }
    const std::string code = read_log(dir / kPointExitStatus);
    if (code.empty()) {
      r.status = "pending";
      continue;
    }
    r.status = code == "2" ? "bad_input" : "failed";
    r.error = read_log(dir / "run.log");
    if (r.error.empty()) r.error = "exit status " + code;
  }
}

int run_sweep(const SweepOptions& o, const std::vector<SweepAxis>& axes) {
  check_sweep_sets(o.sets, axes, o.experiment);
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec || !fs::is_directory(o.out))
    throw InputError("", "cannot create the sweep's output directory (" +
                             (ec ? ec.message() : std::string("a file is in the way")) + ")",
                     "--out " + o.out.string());
  lock_sweep_dir(o.out);
  check_no_active_slurm_job(o.out);
  SweepPlan plan = plan_sweep(o, axes);
  prepare_point_dirs(o.out, plan);
  write_inputs(o);
  write_sweep_csv(o.out, plan);
  if (o.backend == "parallel") {
    run_parallel_backend(o, plan);
    collect_points(o.out, plan, plan.todo);
  } else if (o.backend == "slurm") {
    if (!run_slurm_backend(o, plan)) return 0;
    collect_points(o.out, plan, plan.todo);
  } else {
    run_local_backend(o, plan);
  }
  write_sweep_csv(o.out, plan);
  return report_sweep(o.out, plan, o.quiet);
}

int collect_sweep(const fs::path& out, bool quiet) {
  const fs::path inputs = sweep_state_dir(out) / "inputs.json";
  std::error_code ec;
  if (!fs::exists(inputs, ec))
    throw InputError("", "not a sweep directory (no " + inputs.string() +
                             "; `tlbsim run` of a sweep writes it)", out.string());
  const Json j = read_json_file(inputs);
  SweepOptions o;
  o.out = out;
  o.experiment = j.at("experiment").get<std::string>();
  o.sets = j.at("sets").get<std::vector<std::string>>();
  o.paths.root = j.at("root").get<std::string>();
  for (const auto& p : j.at("workload_paths")) o.paths.workloads.emplace_back(p.get<std::string>());
  if (!j.at("max_host_memory").is_null()) o.max_host_memory = j["max_host_memory"].get<uint64_t>();
  const auto axes = read_sweep_axes(o.experiment);
  if (axes.empty())
    throw InputError("/sweep", "the experiment has no sweep any more", o.experiment.string());
  SweepPlan plan = plan_sweep(o, axes);
  std::vector<size_t> all;
  for (const auto& p : plan.points)
    if (plan.res[p.index].status != "bad_input") all.push_back(p.index);
  collect_points(out, plan, all);
  write_sweep_csv(out, plan);
  return report_sweep(out, plan, quiet);
}

}  // namespace tlbsim

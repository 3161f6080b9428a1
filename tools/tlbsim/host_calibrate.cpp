#include "tools/tlbsim/host_calibrate.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/file_util.h"
#include "models/machine_params.h"
#include "tools/tlbsim/experiment.h"
#include "tools/tlbsim/host_measurements.h"
#include "tools/tlbsim/host_replay.h"
#include "tools/tlbsim/nnls.h"

#include "git_revision.h"

namespace tlbsim {

namespace fs = std::filesystem;

namespace {

SearchPaths paths() { return SearchPaths::from_environment(); }

/// The preset's file and its loaded parameters.
struct Preset {
  fs::path file;
  Json json;
  std::unique_ptr<MachineParams> params = std::make_unique<MachineParams>();
};

Preset load_preset(const std::string& name) {
  Preset p;
  const bool is_path = name.find('/') != std::string::npos ||
                       (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0);
  p.file = is_path ? fs::path(name) : paths().root / "configs/machines" / (name + ".json");
  if (!fs::is_regular_file(p.file))
    throw InputError("", "machine preset \"" + name + "\" not found (" + p.file.string() + ")",
                     "--machine");
  p.json = read_json_file(p.file);
  try {
    p.params->load(p.json, "");
    p.params->validate_all("");
  } catch (const InputError& e) {
    throw e.in_file(p.file.string());
  }
  return p;
}

/// One fitted parameter: its --set key, current value and prior.
struct FitParam {
  std::string group;  // "costs" or "x86"
  std::string key;
  double value = 0;
  int kop = -1;            // KOp index for costs
  bool estimate = false;   // the preset marks its value [E]: a weak prior
};

/// The source annotation of `group.key` in a preset ("_<key>": "[E] ..."), or "".
std::string source_of(const Json& preset, const std::string& group, const std::string& key) {
  auto g = preset.find(group);
  if (g == preset.end() || !g->is_object()) return "";
  auto s = g->find("_" + key);
  return s != g->end() && s->is_string() ? s->get<std::string>() : "";
}

/// Every cost and x86 invalidation parameter, but those the host harness measured
/// ([H]), which stay as measured.
std::vector<FitParam> fit_params(const MachineParams& mp, const Json& preset) {
  std::vector<FitParam> v;
  auto add = [&](const std::string& group, const std::string& key, double value, int kop) {
    const std::string src = source_of(preset, group, key);
    if (src.rfind("[H]", 0) == 0) return;
    v.push_back({group, key, value, kop, src.empty() || src.rfind("[E]", 0) == 0});
  };
  const Json costs = mp.costs.to_json();
  for (size_t k = 0; k < static_cast<size_t>(mm::KOp::kCount); ++k) {
    if (mm::kop_is_memory(static_cast<mm::KOp>(k))) continue;
    add("costs", mm::kKOpNames[k], costs[mm::kKOpNames[k]].get<double>(), static_cast<int>(k));
  }
  const Json x86 = mp.x86.to_json();
  for (auto it = x86.begin(); it != x86.end(); ++it)
    if (it->is_number()) add("x86", it.key(), it->get<double>(), -1);
  return v;
}

/// The hardware figures the primitives family measured, written into the preset
/// with their source ([H]): cache and DRAM latencies, streaming cost, memory-level
/// parallelism, and the kernel primitives that are hardware work (system call
/// entry, clear_page, copy_page). Returns what it set, for the report.
std::vector<std::string> apply_primitives(Json& preset, const HostMeasurements& m, double ghz) {
  std::vector<std::string> set;
  const HostPrimitives& p = m.primitives;
  if (!p.present) return set;
  auto put = [&](const std::string& group, const std::string& sub, const std::string& key, double ns,
                 const std::string& what) {
    if (!(ns > 0)) return;
    Json& g = sub.empty() ? preset[group] : preset[group][sub];
    g[key] = static_cast<uint64_t>(std::llround(ns * ghz));
    g["_" + key] = "[H] " + what + " = " + std::to_string(ns).substr(0, 6) + " ns (tools/hostbench, " +
                   m.file.filename().string() + ")";
    set.push_back(group + "." + (sub.empty() ? "" : sub + ".") + key);
  };
  auto chase = [&](const char* size) {
    auto it = p.chase_ns.find(size);
    return it == p.chase_ns.end() ? 0.0 : it->second;
  };
  // The buffer sizes fit the level below them: 16 KiB in L1D, 256 KiB in L2, 2 MiB in
  // the LLC share one core gets, 64 MiB nowhere (DRAM).
  put("cache", "l1d", "cycles", chase("16KiB"), "dependent-load latency, 16 KiB buffer");
  put("cache", "l2", "cycles", chase("256KiB"), "dependent-load latency, 256 KiB buffer");
  put("cache", "llc", "cycles", chase("2MiB") > 0 ? chase("2MiB") : chase("4MiB"),
      "dependent-load latency, 2 MiB buffer");
  put("cache", "", "dram_cycles", chase("64MiB"), "dependent-load latency, 64 MiB buffer (2 MiB pages)");
  put("cache", "", "stream_line_cycles", p.seq_read_line_ns, "sequential read per 64-byte line");
  // Independent random loads over 1 GiB cost access + (DRAM - L1) / mlp in the model.
  const double dram = chase("64MiB") * ghz, l1 = chase("16KiB") * ghz;
  const double indep = p.independent_read_ns * ghz;
  if (dram > 0 && indep > 1) {
    const double mlp = std::clamp((dram - l1) / (indep - 1), 1.0, 64.0);
    preset["cache"]["mlp"] = std::round(mlp * 100) / 100;
    preset["cache"]["_mlp"] = "[H] (DRAM - L1 latency) / (independent random-load time - 1 cycle), "
                              "1 GiB (tools/hostbench)";
    set.push_back("cache.mlp");
  }
  put("costs", "", "syscall_entry", p.syscall_ns, "getppid() round trip");
  put("costs", "", "atomic", p.atomic_ns, "dependent lock xadd on an L1 line");
  put("costs", "", "pte_xchg", p.xchg_ns, "dependent xchg on an L1 line");
  if (p.atomic_ns > 0) {
    // spin_lock + spin_unlock: one locked RMW and a release store.
    preset["costs"]["lock"] = static_cast<uint64_t>(std::llround(p.atomic_ns * ghz)) + 1;
    preset["costs"]["_lock"] = "[H] one locked RMW (primitives.atomic_ns) and a release store";
    set.push_back("costs.lock");
  }
  put("costs", "", "page_zero", p.clear_page_cold_ns, "clear of an uncached 4 KiB page");
  put("costs", "", "page_copy", p.copy_page_cold_ns, "copy of an uncached 4 KiB page");
  return set;
}

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

fs::path scratch(const HostCommandOptions& o, const char* what) {
  if (!o.work.empty()) return o.work;
  return fs::temp_directory_path() / ("tlbsim-" + std::string(what) + "-" + std::to_string(getpid()));
}

ReplayOptions replay_options(const HostCommandOptions& o, const std::string& machine,
                             const fs::path& work) {
  ReplayOptions r;
  r.machine = machine;
  r.kernel = o.kernel;
  r.work = work;
  r.self = o.self;
  r.jobs = o.jobs;
  r.quiet = o.quiet;
  return r;
}

void check_subset_present(const HostMeasurements& m) {
  for (const auto& f : calibration_folios()) {
    const HostFolio* hf = m.folio(f);
    if (!hf)
      throw InputError("/folio/" + f, "missing: the calibration subset needs populate, munmap and "
                                      "fork at 4K, 64K and 2M",
                       m.file.string());
    for (const auto& op : calibration_ops())
      if (!hf->ops.count(op))
        throw InputError("/folio/" + f + "/ops/" + op,
                         "missing: the calibration subset needs this op", m.file.string());
  }
  bool any = false;
  for (const auto& s : m.shootdown) any |= s.pages == kCalibrationShootdownPages;
  if (!any)
    throw InputError("/shootdown", "missing: the calibration subset needs the shootdown family at " +
                                       std::to_string(kCalibrationShootdownPages) + " page",
                     m.file.string());
}

}  // namespace

// --- calibrate ----------------------------------------------------------------------------

int run_calibrate(const HostCommandOptions& o) {
  const HostMeasurements m = load_host_measurements(o.measurements);
  check_subset_present(m);
  Preset base = load_preset(o.machine);
  if (base.params->arch() != "x86_64")
    throw InputError("/arch", "calibrate fits x86-64 presets to an x86-64 host; " + o.machine +
                                  " is " + base.params->arch(),
                     base.file.string());
  if (o.out.empty()) throw InputError("", "expected --out FILE for the calibrated preset", "calibrate");
  const fs::path work = scratch(o, "calibrate");
  const double ghz = base.params->freq_ghz();
  // 0. What the host harness measured directly replaces the preset's values.
  fs::create_directories(work);
  const std::vector<std::string> measured = apply_primitives(base.json, m, ghz);
  const fs::path base_file = work / "base-with-primitives.json";
  write_file_atomic(base_file, base.json.dump(2) + "\n");
  base.params = std::make_unique<MachineParams>();
  base.params->load(base.json, "");
  const std::string base_machine = base_file.string();
  ReplaySelection sel;
  sel.folios = calibration_folios();
  sel.ops = calibration_ops();
  sel.shootdown_pages = {kCalibrationShootdownPages};
  // 1. The subset at the preset's costs: times and primitive counts.
  if (!o.quiet) std::cerr << "calibrate: replaying the calibration subset on " << o.machine << "\n";
  const auto sim0 = replay_host(m, sel, replay_options(o, base_machine, work / "base"));
  std::vector<std::string> keys;
  for (const auto& [k, p] : sim0)
    if (in_calibration_subset(k)) keys.push_back(k);
  std::vector<FitParam> params = fit_params(*base.params, base.json);
  const size_t np = params.size(), nk = keys.size();
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(nk), static_cast<Eigen::Index>(np));
  for (size_t i = 0; i < nk; ++i) {
    const SimPoint& p = sim0.at(keys[i]);
    for (size_t j = 0; j < np; ++j) {
      if (params[j].kop >= 0) J(i, j) = p.kops[static_cast<size_t>(params[j].kop)];
      // One CPU: local flushes only (INVLPG loop, CR3 reload).
      if (keys[i].rfind("folio/", 0) == 0 && params[j].group == "x86") {
        if (params[j].key == "invlpg_cycles") J(i, j) = p.invlpg;
        if (params[j].key == "cr3_flush_cycles") J(i, j) = p.full_flushes;
      }
    }
  }
  // 2. x86 costs in the two-CPU shootdown points: finite differences.
  ReplaySelection sd;
  sd.shootdown_pages = {kCalibrationShootdownPages};
  for (size_t j = 0; j < np; ++j) {
    if (params[j].group != "x86") continue;
    const double delta = std::max(50.0, std::round(params[j].value * 0.5));
    ReplayOptions ro = replay_options(o, base_machine, work / ("x86-" + params[j].key));
    ro.sets = {"machine.x86." + params[j].key + "=" + std::to_string(static_cast<uint64_t>(params[j].value + delta))};
    if (!o.quiet) std::cerr << "calibrate: shootdown sensitivity to x86." << params[j].key << "\n";
    const auto simd = replay_host(m, sd, ro);
    for (size_t i = 0; i < nk; ++i)
      if (auto it = simd.find(keys[i]); it != simd.end())
        J(i, j) = (it->second.cycles - sim0.at(keys[i]).cycles) / delta;
  }
  // 3. The regularised NNLS on relative errors.
  const double sl = std::sqrt(o.lambda);
  Eigen::MatrixXd A = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(nk + np), static_cast<Eigen::Index>(np));
  Eigen::VectorXd b = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(nk + np));
  Eigen::VectorXd theta0(static_cast<Eigen::Index>(np));
  for (size_t j = 0; j < np; ++j) theta0[j] = params[j].value;
  for (size_t i = 0; i < nk; ++i) {
    const double t = measured_ns(m, keys[i]) * ghz;
    A.row(i) = J.row(i) / t;
    b[i] = (t - sim0.at(keys[i]).cycles + J.row(i).dot(theta0)) / t;
  }
  // Estimates ([E]) only break ties: 1000x weaker than values with a source.
  for (size_t j = 0; j < np; ++j) {
    const double prior = std::max(1.0, params[j].value);
    const double w = params[j].estimate ? sl / std::sqrt(1000.0) : sl;
    A(nk + j, j) = w / prior;
    b[nk + j] = w * params[j].value / prior;
  }
  const NnlsResult fit = nnls(A, b);
  if (!fit.converged) std::cerr << "calibrate: warning: NNLS did not converge\n";
  // 4. The preset: the base preset with the fitted costs and the provenance.
  Json out = base.json;
  const std::string name = o.out.stem().string();
  out["name"] = name;
  for (size_t j = 0; j < np; ++j) {
    const uint64_t v = static_cast<uint64_t>(std::llround(fit.x[static_cast<Eigen::Index>(j)]));
    out[params[j].group][params[j].key] = v;
    out[params[j].group]["_" + params[j].key] =
        "fitted by tlbsim calibrate (" + m.file.filename().string() + "; prior " +
        std::to_string(static_cast<uint64_t>(params[j].value)) + " from " + base.file.stem().string() + ")";
  }
  Json prov = Json::object();
  prov["command"] = "tlbsim calibrate " + o.measurements.string() + " --machine " + o.machine;
  prov["measurements"] = fs::relative(fs::absolute(o.measurements), fs::absolute(o.out).parent_path()).string();
  prov["measurements_sha256"] = m.sha256;
  prov["measured_on"] = m.machine;
  prov["base_preset"] = base.file.stem().string();
  prov["kernel_profile"] = o.kernel;
  prov["date"] = now_iso();
  prov["tlbsim_git_revision"] = TLBSIM_GIT_REV;
  prov["fit"] = "non-negative least squares (Lawson-Hanson) of relative errors, regularised "
                "towards the base preset's values with lambda = " + std::to_string(o.lambda) +
                " (lambda / 1000 for values the base preset marks [E])";
  prov["measured"] = measured;
  prov["subset"] = Json::array();
  for (const auto& k : keys) prov["subset"].push_back(k);
  // 5. Check the fit by simulation with the new preset: residuals of the subset.
  fs::create_directories(work);
  const fs::path trial = work / (name + ".json");
  write_file_atomic(trial, out.dump(2) + "\n");
  if (!o.quiet) std::cerr << "calibrate: replaying the subset with the fitted costs\n";
  const auto sim1 = replay_host(m, sel, replay_options(o, trial.string(), work / "fitted"));
  prov["residuals"] = Json::array();
  double worst = 0;
  for (const auto& k : keys) {
    const double real = measured_ns(m, k), sim = sim1.count(k) ? sim1.at(k).ns : -1;
    const double err = 100.0 * (sim - real) / real;
    worst = std::max(worst, std::fabs(err));
    prov["residuals"].push_back({{"point", k}, {"real_ns", std::round(real)}, {"sim_ns", std::round(sim)},
                                 {"error_pct", std::round(err * 10) / 10}});
  }
  out["_provenance"] = prov;
  write_file_atomic(o.out, out.dump(2) + "\n");
  if (!o.quiet) {
    std::cout << "calibrated preset written to " << o.out.string() << " (" << keys.size()
              << " calibration points, worst residual " << std::round(worst * 10) / 10 << " %)\n";
    for (size_t j = 0; j < np; ++j)
      std::cout << "  " << params[j].group << "." << params[j].key << ": "
                << static_cast<uint64_t>(params[j].value) << " -> "
                << std::llround(fit.x[static_cast<Eigen::Index>(j)]) << "\n";
  }
  if (o.work.empty()) fs::remove_all(work);
  return 0;
}

}  // namespace tlbsim

// tlbsim validate-host: every measured point next to its replay (host_calibrate.h).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/error.h"
#include "base/file_util.h"
#include "tools/tlbsim/host_calibrate.h"
#include "tools/tlbsim/host_measurements.h"
#include "tools/tlbsim/host_replay.h"

namespace tlbsim {

namespace fs = std::filesystem;

namespace {

/// Faults the harness process takes besides the measured mapping (its own stack and
/// data pages become copy-on-write after a fork): a fault count is "equal" within this.
constexpr double kHarnessFaults = 8;

struct Row {
  std::string op, folio;
  bool calibration = false;
  double real_ns = 0, sim_ns = 0;
  double real_ratio = 0, sim_ratio = 0;  // to the 4K point of the same op
  bool have_ratio = false;
  double real_faults = 0, sim_faults = 0, real_splits = 0, sim_splits = 0;
  double real_deferred = 0, sim_deferred = 0;
  double abs_err() const { return 100.0 * (sim_ns - real_ns) / real_ns; }
  double ratio_err() const { return 100.0 * (sim_ratio - real_ratio) / real_ratio; }
  bool faults_equal() const { return std::fabs(real_faults - sim_faults) <= kHarnessFaults; }
  bool splits_equal() const { return real_splits == sim_splits; }
  bool deferred_equal() const { return real_deferred == sim_deferred; }
  bool counts_equal() const { return faults_equal() && splits_equal() && deferred_equal(); }
};

struct SdRow {
  HostShootdown h;
  bool calibration = false;
  double sim_ns = 0, sim_ipis = 0;
  double abs_err() const { return 100.0 * (sim_ns - h.median_ns) / h.median_ns; }
  bool ipis_equal() const { return std::fabs(sim_ipis - h.ipis_per_call) <= 0.05; }
};

std::string fmt(double v, int prec = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}
std::string pct(double v) { return (v >= 0 ? "+" : "") + fmt(v, 1) + "%"; }
const char* mark(bool ok) { return ok ? "=" : "DIFF"; }

/// A time in the unit that suits it.
std::string time_of(double ns) {
  if (ns >= 1e6) return fmt(ns / 1e6, 2) + " ms";
  if (ns >= 1e3) return fmt(ns / 1e3, 2) + " us";
  return fmt(ns, 0) + " ns";
}

double folio_kib(const std::string& cfg) {
  const std::string b = cfg == "2M-pte" ? "2M" : cfg;
  const double n = std::stod(b.substr(0, b.size() - 1));
  return b.back() == 'M' ? n * 1024 : n;
}

void plot(const std::vector<Row>& rows, const fs::path& base, const std::string& title) {
  const fs::path dat = base.string() + ".dat";
  std::ofstream d(dat);
  // One gnuplot block per op: kib real_ms sim_ms pmd_mapped(0/1)
  std::vector<std::string> ops;
  for (const auto& r : rows)
    if (ops.empty() || ops.back() != r.op) ops.push_back(r.op);
  for (const auto& op : ops) {
    d << "# " << op << "\n";
    for (const auto& r : rows)
      if (r.op == op)
        d << folio_kib(r.folio) * (r.folio == "2M-pte" ? 1.25 : 1.0) << " " << r.real_ns / 1e6 << " "
          << r.sim_ns / 1e6 << " \"" << r.folio << "\"\n";
    d << "\n\n";
  }
  d.close();
  const fs::path gp = base.string() + ".gp";
  std::ofstream g(gp);
  const unsigned cols = 4, nrows = static_cast<unsigned>((ops.size() + cols - 1) / cols);
  for (const char* term : {"png", "svg"}) {
    if (std::string(term) == "png")
      g << "set terminal pngcairo size 1600," << 360 * nrows << " font 'Sans,10'\n";
    else
      g << "set terminal svg size 1600," << 360 * nrows << " font 'Sans,10' dynamic\n";
    g << "set output '" << base.string() << "." << term << "'\n";
    g << "set multiplot layout " << nrows << "," << cols << " title \"" << title << "\"\n";
    g << "set logscale x 2\nset logscale y 10\nset grid\nset key top left\n";
    g << "set xlabel 'folio size (KiB; 2M-pte drawn at 2.5 MiB)'\nset ylabel 'time (ms)'\n";
    for (size_t i = 0; i < ops.size(); ++i) {
      g << "set title '" << ops[i] << "'\n";
      g << "plot '" << dat.string() << "' index " << i
        << " using 1:2 with linespoints lw 2 pt 7 ps 1.2 title 'Linux (measured)', '' index " << i
        << " using 1:3 with linespoints lw 2 dt 2 pt 4 ps 1.2 title 'tlbsim'\n";
    }
    g << "unset multiplot\n";
  }
  g.close();
  const std::string cmd = "gnuplot '" + gp.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) std::cerr << "validate-host: gnuplot failed; see " << gp << "\n";
}

}  // namespace

int run_validate_host(const HostCommandOptions& o) {
  const HostMeasurements m = load_host_measurements(o.measurements);
  const fs::path work = o.work.empty() ? fs::temp_directory_path() /
                                             ("tlbsim-validate-" + std::to_string(getpid()))
                                       : o.work;
  ReplaySelection sel;
  for (const auto& f : m.folios) sel.folios.insert(f.name);
  for (const auto& s : m.shootdown) sel.shootdown_pages.insert(s.pages);
  ReplayOptions ro;
  ro.machine = o.machine;
  ro.kernel = o.kernel;
  ro.work = work;
  ro.self = o.self;
  ro.jobs = o.jobs;
  ro.quiet = o.quiet;
  const auto sim = replay_host(m, sel, ro);

  std::vector<Row> rows;
  for (const std::string& op : host_folio_ops()) {
    const HostFolio* f4 = m.folio("4K");
    for (const HostFolio& f : m.folios) {
      auto it = f.ops.find(op);
      const std::string key = folio_key(f.name, op);
      if (it == f.ops.end() || !sim.count(key)) continue;
      Row r;
      r.op = op;
      r.folio = f.name;
      r.calibration = in_calibration_subset(key);
      r.real_ns = measured_ns(m, key);
      r.sim_ns = sim.at(key).ns;
      if (f4 && f4->ops.count(op) && sim.count(folio_key("4K", op))) {
        r.have_ratio = f.name != "4K";
        r.real_ratio = r.real_ns / measured_ns(m, folio_key("4K", op));
        r.sim_ratio = r.sim_ns / sim.at(folio_key("4K", op)).ns;
      }
      const HostOp& h = it->second;
      r.real_faults = h.minflt;
      r.sim_faults = sim.at(key).faults;
      r.real_splits = h.vmstat.count("thp_split_pmd") ? static_cast<double>(h.vmstat.at("thp_split_pmd")) : 0;
      r.sim_splits = sim.at(key).split_pmd;
      for (const auto& [k, v] : h.mthp)
        if (k.size() > 15 && k.compare(k.size() - 15, 15, "/split_deferred") == 0)
          r.real_deferred += static_cast<double>(v);
      r.sim_deferred = sim.at(key).deferred_split;
      rows.push_back(r);
    }
  }
  std::vector<SdRow> sd;
  for (const HostShootdown& s : m.shootdown) {
    const std::string key = shootdown_key(s);
    if (!sim.count(key)) continue;
    SdRow r;
    r.h = s;
    r.calibration = in_calibration_subset(key);
    r.sim_ns = sim.at(key).ns;
    r.sim_ipis = sim.at(key).ipis_per_call;
    sd.push_back(r);
  }

  // Acceptance figures.
  unsigned holdout = 0, within15 = 0, beyond40 = 0;
  double worst = 0;
  std::string worst_at;
  bool counts_ok = true;
  std::vector<std::string> abs4k_bad, pmd_bad, count_bad;
  for (const Row& r : rows) {
    if (!r.counts_equal()) {
      counts_ok = false;
      count_bad.push_back(r.op + "/" + r.folio);
    }
    if (r.folio == "4K" && std::fabs(r.abs_err()) > 25) abs4k_bad.push_back(r.op);
    if (r.folio == "2M" && std::fabs(r.abs_err()) > 35) pmd_bad.push_back(r.op);
    if (!r.have_ratio || r.calibration) continue;
    ++holdout;
    const double e = std::fabs(r.ratio_err());
    within15 += e <= 15;
    beyond40 += e > 40;
    if (e > worst) {
      worst = e;
      worst_at = r.op + "/" + r.folio;
    }
  }
  for (const SdRow& r : sd)
    if (!r.ipis_equal()) {
      counts_ok = false;
      count_bad.push_back("shootdown/" + r.h.key());
    }

  const std::string& f = o.format;
  std::ostream& out = std::cout;
  const std::string title = "tlbsim " + o.machine + " (" + o.kernel + ") vs " +
                            m.machine.value("cpu_model", std::string("host")) + ", Linux " +
                            m.machine.value("kernel_release", std::string("?"));
  if (f == "csv") {
    out << "family,op,folio_or_point,role,real_ns,sim_ns,abs_err_pct,real_ratio,sim_ratio,ratio_err_pct,"
           "real_faults,sim_faults,real_thp_split_pmd,sim_thp_split_pmd,real_deferred_split,"
           "sim_deferred_split,real_ipis_per_call,sim_ipis_per_call,counts_equal\n";
    for (const Row& r : rows)
      out << "folio," << r.op << "," << r.folio << "," << (r.calibration ? "calibration" : "holdout")
          << "," << fmt(r.real_ns, 0) << "," << fmt(r.sim_ns, 0) << "," << fmt(r.abs_err()) << ","
          << (r.have_ratio ? fmt(r.real_ratio, 4) : "") << "," << (r.have_ratio ? fmt(r.sim_ratio, 4) : "")
          << "," << (r.have_ratio ? fmt(r.ratio_err()) : "") << "," << r.real_faults << ","
          << r.sim_faults << "," << r.real_splits << "," << r.sim_splits << "," << r.real_deferred << ","
          << r.sim_deferred << ",,," << (r.counts_equal() ? "yes" : "no") << "\n";
    for (const SdRow& r : sd)
      out << "shootdown," << r.h.op << "," << r.h.pages << "/" << r.h.remote << "/" << r.h.layout << ","
          << (r.calibration ? "calibration" : "holdout") << "," << fmt(r.h.median_ns, 0) << ","
          << fmt(r.sim_ns, 0) << "," << fmt(r.abs_err()) << ",,,,,,,,,," << fmt(r.h.ipis_per_call, 2)
          << "," << fmt(r.sim_ipis, 2) << "," << (r.ipis_equal() ? "yes" : "no") << "\n";
  } else {
    const bool md = f == "markdown";
    const std::string sep = md ? " | " : "  ";
    auto line = [&](const std::vector<std::string>& cells, const std::vector<int>& w) {
      std::string s = md ? "| " : "";
      for (size_t i = 0; i < cells.size(); ++i) {
        std::string c = cells[i];
        if (!md && static_cast<int>(c.size()) < w[i]) c += std::string(w[i] - c.size(), ' ');
        s += c + (i + 1 < cells.size() ? sep : "");
      }
      out << s << (md ? " |" : "") << "\n";
    };
    out << (md ? "### " : "") << title << "\n\n";
    out << "measurements: " << m.file.string() << " (sha256 " << m.sha256.substr(0, 12) << ", "
        << m.created << "); preset compared: " << o.machine << "\n\n";
    const std::vector<int> w = {18, 7, 6, 11, 11, 8, 7, 7, 8, 16, 7, 9};
    line({"op", "folio", "role", "Linux", "tlbsim", "error", "ratio", "ratio'", "r.error", "faults", "splits", "deferred"}, w);
    if (md) out << "|---|---|---|--:|--:|--:|--:|--:|--:|---|---|---|\n";
    for (const Row& r : rows)
      line({r.op, r.folio, r.calibration ? "cal" : "hold", time_of(r.real_ns), time_of(r.sim_ns),
            pct(r.abs_err()), r.have_ratio ? fmt(r.real_ratio, 3) : "", r.have_ratio ? fmt(r.sim_ratio, 3) : "",
            r.have_ratio ? pct(r.ratio_err()) : "",
            fmt(r.real_faults, 0) + "/" + fmt(r.sim_faults, 0) + " " + mark(r.faults_equal()),
            mark(r.splits_equal()), mark(r.deferred_equal())},
           w);
    out << "\n";
    const std::vector<int> w2 = {12, 6, 8, 13, 6, 11, 11, 8, 14};
    line({"shootdown", "pages", "remote", "layout", "role", "Linux", "tlbsim", "error", "IPIs/call"}, w2);
    if (md) out << "|---|--:|---|---|---|--:|--:|--:|---|\n";
    for (const SdRow& r : sd)
      line({r.h.op, std::to_string(r.h.pages), r.h.remote, r.h.layout, r.calibration ? "cal" : "hold",
            time_of(r.h.median_ns), time_of(r.sim_ns), pct(r.abs_err()),
            fmt(r.h.ipis_per_call, 2) + "/" + fmt(r.sim_ipis, 2) + " " + mark(r.ipis_equal())},
           w2);
    out << "\n";
    out << (md ? "- " : "") << "hold-out folio-size ratios within ±15 %: " << within15 << " of " << holdout
        << " (" << fmt(holdout ? 100.0 * within15 / holdout : 0, 0) << " %); beyond ±40 %: " << beyond40
        << "; worst " << fmt(worst) << " % (" << worst_at << ")\n";
    out << (md ? "- " : "") << "absolute time at 4 KiB within ±25 %: "
        << (abs4k_bad.empty() ? std::string("every op") : "not for " + join_choices(abs4k_bad)) << "\n";
    out << (md ? "- " : "") << "absolute time at 2 MiB (PMD) within ±35 %: "
        << (pmd_bad.empty() ? std::string("every op") : "not for " + join_choices(pmd_bad)) << "\n";
    out << (md ? "- " : "") << "counts (faults, thp_split_pmd, deferred splits, IPIs per call): "
        << (counts_ok ? std::string("all equal") : "differ for " + join_choices(count_bad)) << "\n";
  }
  if (!o.plot.empty()) plot(rows, o.plot, title);
  if (o.work.empty()) fs::remove_all(work);
  if (o.fail_above >= 0 && (worst > o.fail_above || !counts_ok)) {
    std::cerr << "tlbsim: validate-host: " << (worst > o.fail_above ? "hold-out ratio error " + fmt(worst) +
                                                                          " % (" + worst_at + ") above " +
                                                                          fmt(o.fail_above) + " %"
                                                                    : std::string("counts differ"))
              << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tlbsim

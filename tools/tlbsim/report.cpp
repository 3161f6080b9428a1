#include "tools/tlbsim/report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "base/file_util.h"

#include "git_revision.h"
#include <sys/utsname.h>
#ifndef TLBSIM_BUILD_TYPE
#define TLBSIM_BUILD_TYPE "unknown"
#endif
#ifndef TLBSIM_VERSION
#define TLBSIM_VERSION "0.0.0"
#endif

namespace tlbsim {

std::string config_hash(const Json& config) {
  // Strings from the command line (file names) need not be UTF-8: never throw here.
  const std::string s = config.dump(-1, ' ', false, Json::error_handler_t::replace);
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool headline_metric(const std::string& k) {
  static const char* kRegion[] = {".cycles", ".kernel_cycles", ".faults", ".flush_requests",
                                  ".ipis_sent", ".inval_by_va", ".inval_full", ".tlbis",
                                  ".ipi_wait_cycles", ".walks", ".dtlb_misses", ".stlb_misses"};
  auto ends_with = [&](const char* s) {
    const size_t n = std::char_traits<char>::length(s);
    return k.size() > n && k.compare(k.size() - n, n, s) == 0;
  };
  if (k.rfind("system.regions.", 0) == 0) {
    for (const char* s : kRegion)
      if (ends_with(s)) return true;
    return false;
  }
  return k == "meta.simulated_cycles" || k == "system.kernel.tlb_flush.requests" ||
         k == "system.x86_tlbflush.nr_tlb_remote_flush_received" ||
         k == "system.kernel.vmstat.pgfault" || k == "system.coherence.stale_tlb_violations";
}

namespace {

/// Whether every number under `j` is zero (an idle CPU's statistics).
bool all_zero(const Json& j) {
  if (j.is_number()) return j.get<double>() == 0;
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j)
      if (!all_zero(v)) return false;
  }
  return true;
}

/// NAME[0], NAME[1], ... siblings -> one list NAME (at the first one's place), all-zero
/// elements null unless `keep_zero`. Recursion follows the stat tree (a few levels).
Json listify(const Json& j, bool keep_zero) {
  if (!j.is_object()) return j;
  if (j.contains("value") && j.contains("unit")) return j;
  Json out = Json::object();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const size_t open = k.rfind('[');
    bool indexed = open != std::string::npos && open > 0 && k.back() == ']' && open + 2 < k.size();
    for (size_t i = open + 1; indexed && i + 1 < k.size(); ++i)
      indexed = std::isdigit(static_cast<unsigned char>(k[i])) != 0;
    if (!indexed) {
      out[k] = listify(it.value(), keep_zero);
      continue;
    }
    const std::string name = k.substr(0, open);
    const size_t idx = std::stoul(k.substr(open + 1, k.size() - open - 2));
    Json& list = out[name];
    if (!list.is_array()) list = Json::array();
    while (list.size() <= idx) list.push_back(nullptr);
    list[idx] = keep_zero || !all_zero(it.value()) ? listify(it.value(), keep_zero) : Json();
  }
  return out;
}

}  // namespace

void for_each_stat(const Json& stats, const std::function<void(const std::string&, const Json&)>& f) {
  std::function<void(const Json&, const std::string&)> walk = [&](const Json& n, const std::string& path) {
    if (n.is_object() && n.contains("value") && n.contains("unit")) {
      f(path, n);
    } else if (n.is_array()) {
      for (size_t i = 0; i < n.size(); ++i)
        if (!n[i].is_null()) walk(n[i], path + "[" + std::to_string(i) + "]");
    } else if (n.is_object()) {
      for (auto it = n.begin(); it != n.end(); ++it)
        walk(it.value(), path.empty() ? it.key() : path + "." + it.key());
    }
  };
  walk(stats, "");
}

void write_outputs(const std::filesystem::path& dir, const Experiment& ex, const StatGroup& root,
                   const RunMeta& meta, bool all_cpus) {
  Json config = ex.effective_config();
  Json j = Json::object();
  Json m = Json::object();
  const std::string rev = TLBSIM_GIT_REV;
  m["tlbsim_version"] = TLBSIM_VERSION;
  m["git_revision"] = rev;
  // A tree with uncommitted changes: results not reproducible from the revision.
  m["git_dirty"] = rev.size() >= 6 && rev.compare(rev.size() - 6, 6, "-dirty") == 0;
  m["build_type"] = TLBSIM_BUILD_TYPE;
  m["command_line"] = meta.command_line;
  m["sets"] = meta.sets;
  {
    struct utsname u {};
    Json host = Json::object();
    if (uname(&u) == 0) {
      host["hostname"] = u.nodename;
      host["kernel"] = std::string(u.sysname) + " " + u.release;
      host["machine"] = u.machine;
    }
    m["host"] = std::move(host);
  }
  m["experiment"] = ex.name;
  m["experiment_file"] = ex.file.string();
  m["seed"] = ex.seed;
  m["config_hash"] = config_hash(config);
  m["simulated_cycles"] = meta.simulated_cycles;
  m["host_seconds"] = std::stod(format_number(meta.host_seconds));
  j["meta"] = std::move(m);
  j["config"] = std::move(config);
  j["stats"] = listify(root.to_json(), all_cpus);
  // stats.csv first, stats.json (the resume key) last: a run killed between the two
  // renames leaves no new stats.json beside an old stats.csv.
  std::vector<StatRow> rows;
  root.rows(rows);
  std::ostringstream csv;
  csv << "path,value,unit\n";
  for (const auto& r : rows) csv << r.path << ',' << r.value << ',' << r.unit << '\n';
  write_file_atomic(dir / "stats.csv", csv.str());
  write_file_atomic(dir / "stats.json",
                    j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

std::string version_text() {
  return std::string("tlbsim ") + TLBSIM_VERSION + " (git " + TLBSIM_GIT_REV + ", " +
         TLBSIM_BUILD_TYPE + " build)";
}

namespace {
uint64_t get(const StatGroup& g, const std::string& path) {
  const StatBase* s = g.find(path);
  if (!s) return 0;
  if (auto* sc = dynamic_cast<const Scalar*>(s)) return sc->value();
  if (auto* r = dynamic_cast<const CounterRef*>(s)) return r->value();
  if (auto* ga = dynamic_cast<const Gauge*>(s)) return static_cast<uint64_t>(ga->value());
  return 0;
}
}  // namespace

void print_summary(std::ostream& os, const Experiment& ex, const StatGroup& root, bool all_cpus,
                   const RunMeta& meta) {
  const StatGroup* sys = root.find_group("system");
  if (!sys) return;
  const double ghz = ex.machine->freq_ghz();
  os << "tlbsim: " << ex.name << " — machine " << ex.machine_preset << " (" << ex.machine->arch()
     << ", " << ex.machine->cpus() << " CPUs), kernel " << ex.kernel_profile << ", seed " << ex.seed
     << "\n";
  os << "simulated " << meta.simulated_cycles << " cycles ("
     << format_number(static_cast<double>(meta.simulated_cycles) / ghz / 1000.0) << " us) in "
     << format_number(meta.host_seconds) << " s of host time\n\n";
  auto row = [&](const std::vector<std::string>& cells, const std::vector<int>& w) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i == 0) os << std::left << std::setw(w[i]) << cells[i];
      else os << std::right << std::setw(w[i]) << cells[i];
    }
    os << "\n";
  };
  const std::vector<int> w = {18, 14, 9, 9, 9, 9, 10, 10, 9, 11, 9};
  row({"region", "cycles", "faults", "flushes", "ipis", "tlbis", "inval_va", "inval_all", "walks",
       "dtlb_miss", "syscalls"}, w);
  if (const StatGroup* regions = sys->find_group("regions")) {
    Json rj = regions->to_json();
    for (auto it = rj.begin(); it != rj.end(); ++it) {
      const std::string rn = it.key();
      const std::string p = "regions." + rn + ".";
      std::string label = rn.substr(7, rn.size() - 8);  // region[NAME]
      row({label, std::to_string(get(*sys, p + "cycles")), std::to_string(get(*sys, p + "faults")),
           std::to_string(get(*sys, p + "flush_requests")), std::to_string(get(*sys, p + "ipis_sent")),
           std::to_string(get(*sys, p + "tlbis")), std::to_string(get(*sys, p + "inval_by_va")), std::to_string(get(*sys, p + "inval_full")),
           std::to_string(get(*sys, p + "walks")), std::to_string(get(*sys, p + "dtlb_misses")),
           std::to_string(get(*sys, p + "syscalls"))}, w);
    }
  }
  os << "\n";
  const std::vector<int> wc = {8, 14, 10, 9, 9, 9, 9, 12, 12, 12};
  row({"cpu", "cycles", "accesses", "faults", "ipi_tx", "ipi_rx", "inval_va", "dtlb_miss",
       "l2tlb_miss", "walks"}, wc);
  unsigned idle = 0;
  for (unsigned c = 0; c < ex.machine->cpus(); ++c) {
    const std::string p = "cpu[" + std::to_string(c) + "].";
    const std::vector<uint64_t> v = {
        get(*sys, p + "cycles"),        get(*sys, p + "accesses"),
        get(*sys, p + "faults"),        get(*sys, p + "ipis_sent"),
        get(*sys, p + "ipis_received"), get(*sys, p + "invlpg") + get(*sys, p + "tlbi_by_va"),
        get(*sys, p + "dtlb.misses"),   get(*sys, p + "stlb.misses") + get(*sys, p + "l2tlb.misses"),
        get(*sys, p + "walker.walks")};
    // A CPU that ran nothing and received nothing: one line for all of them.
    if (!all_cpus && std::all_of(v.begin(), v.end(), [](uint64_t x) { return x == 0; })) {
      ++idle;
      continue;
    }
    std::vector<std::string> cells = {"cpu" + std::to_string(c)};
    for (uint64_t x : v) cells.push_back(std::to_string(x));
    row(cells, wc);
  }
  if (idle)
    os << "(" << idle << " idle CPU" << (idle == 1 ? "" : "s")
       << " with all zeros not shown; --all-cpus lists them)\n";
  os << "\nstale-TLB violations: " << get(*sys, "coherence.stale_tlb_violations") << "\n";
}

}  // namespace tlbsim

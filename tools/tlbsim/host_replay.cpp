#include "tools/tlbsim/host_replay.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "base/error.h"
#include "base/file_util.h"
#include "base/size.h"
#include "tools/tlbsim/experiment.h"
#include "tools/tlbsim/worker_pool.h"

namespace tlbsim {

namespace fs = std::filesystem;

std::string folio_key(const std::string& folio, const std::string& op) {
  return "folio/" + folio + "/" + op;
}
std::string shootdown_key(const HostShootdown& s) { return "shootdown/" + s.key(); }

namespace {

constexpr uint64_t kPmd = 2ull << 20;
constexpr uint64_t kPage = 4096;

// --- workload building blocks (the workload language, docs/workloads.md) ---------------
Json op_mmap(const std::string& name, uint64_t size, const char* prot = "rw") {
  return {{"op", "mmap"}, {"name", name}, {"size", size}, {"prot", prot}, {"align", "2MiB"}};
}
Json op_mmap_fixed(const std::string& name, uint64_t addr, uint64_t size, const char* prot) {
  return {{"op", "mmap"}, {"name", name}, {"size", size}, {"prot", prot}, {"addr", addr}, {"fixed", true}};
}
Json op_touch(const std::string& mapping, const char* access = "write") {
  return {{"op", "touch"}, {"mapping", mapping}, {"access", access}};
}
Json op_region(const std::string& name, Json ops) {
  return {{"op", "region"}, {"name", name}, {"ops", std::move(ops)}};
}
Json op_barrier(const std::string& name, bool spin) {
  return {{"op", "barrier"}, {"name", name}, {"wait", spin ? "spin" : "block"}};
}
Json op_mprotect(const std::string& mapping, uint64_t offset, uint64_t length, const char* prot) {
  return {{"op", "mprotect"}, {"mapping", mapping}, {"offset", offset}, {"length", length}, {"prot", prot}};
}
Json op_madvise(const std::string& mapping, uint64_t offset, uint64_t length, const char* advice) {
  Json j = {{"op", "madvise"}, {"mapping", mapping}, {"advice", advice}};
  if (length) {
    j["offset"] = offset;
    j["length"] = length;
  }
  return j;
}
Json op_munmap(const std::string& mapping) { return {{"op", "munmap"}, {"mapping", mapping}}; }

/// The harness's folio_size for a configuration ("2M-pte" is 2 MiB, remapped).
std::string folio_size_of(const std::string& cfg) {
  const std::string base = cfg == "2M-pte" ? "2M" : cfg;
  return base.substr(0, base.size() - 1) + (base.back() == 'M' ? "MiB" : "KiB");
}

/// populate(): touch every page; 2M-pte then splits every PMD by an mprotect round
/// trip of its first page (folios stay 2 MiB, PTE-mapped).
void populate(Json& ops, const std::string& cfg, uint64_t size, const char* region) {
  if (region) {
    ops.push_back(op_region(region, Json::array({op_touch("buf")})));
  } else {
    ops.push_back(op_touch("buf"));
  }
  if (cfg == "2M-pte") {
    for (uint64_t off = 0; off < size; off += kPmd) ops.push_back(op_mprotect("buf", off, kPage, "r"));
    for (uint64_t off = 0; off < size; off += kPmd) ops.push_back(op_mprotect("buf", off, kPage, "rw"));
  }
}

/// A forked child pinned to CPU 0 that sleeps until released, then exits.
Json op_fork_child() {
  return {{"op", "fork"}, {"cpu", 0}, {"ops", Json::array({op_barrier("release", false)})}};
}

struct Scenario {
  std::string name;
  std::vector<std::string> ops;  // the measured ops, each a region of the same name
};
const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> k = {
      {"basic", {"populate", "write_nofault", "munmap"}},
      {"dontneed", {"dontneed"}},
      {"fork_exit", {"fork", "child_exit", "cow_reuse"}},
      {"fork_munmap", {"munmap_after_fork"}},
      {"fork_cow", {"cow_write"}},
      {"remap", {"mprotect_ro_4k", "mprotect_rw_4k", "dontneed_4k"}},
  };
  return k;
}

/// The ops of the main thread (CPU 1, as the harness pins itself) for one scenario.
Json scenario_ops(const std::string& scenario, const std::string& cfg, uint64_t size) {
  Json ops = Json::array();
  ops.push_back(op_mmap("buf", size));
  if (scenario == "basic") {
    populate(ops, cfg, size, "populate");
    ops.push_back(op_region("write_nofault", Json::array({op_touch("buf")})));
    ops.push_back(op_region("munmap", Json::array({op_munmap("buf")})));
  } else if (scenario == "dontneed") {
    populate(ops, cfg, size, nullptr);
    ops.push_back(op_region("dontneed", Json::array({op_madvise("buf", 0, 0, "dontneed")})));
    ops.push_back(op_munmap("buf"));
  } else if (scenario == "fork_exit") {
    populate(ops, cfg, size, nullptr);
    ops.push_back(op_region("fork", Json::array({op_fork_child()})));
    ops.push_back(op_region("child_exit", Json::array({op_barrier("release", true), Json{{"op", "wait"}}})));
    ops.push_back(op_region("cow_reuse", Json::array({op_touch("buf")})));
    ops.push_back(op_munmap("buf"));
  } else if (scenario == "fork_munmap") {
    populate(ops, cfg, size, nullptr);
    ops.push_back(op_fork_child());
    ops.push_back(op_region("munmap_after_fork", Json::array({op_munmap("buf")})));
    ops.push_back(op_barrier("release", true));
    ops.push_back(Json{{"op", "wait"}});
  } else if (scenario == "fork_cow") {
    populate(ops, cfg, size, nullptr);
    ops.push_back(op_fork_child());
    ops.push_back(op_region("cow_write", Json::array({op_touch("buf")})));
    ops.push_back(op_barrier("release", true));
    ops.push_back(Json{{"op", "wait"}});
    ops.push_back(op_munmap("buf"));
  } else if (scenario == "remap") {
    populate(ops, cfg, size, nullptr);
    Json ro = Json::array(), rw = Json::array(), dn = Json::array();
    for (uint64_t off = 0; off < size; off += kPmd) {
      ro.push_back(op_mprotect("buf", off, kPage, "r"));
      rw.push_back(op_mprotect("buf", off, kPage, "rw"));
      dn.push_back(op_madvise("buf", off, kPage, "dontneed"));
    }
    ops.push_back(op_region("mprotect_ro_4k", std::move(ro)));
    ops.push_back(op_region("mprotect_rw_4k", std::move(rw)));
    ops.push_back(op_region("dontneed_4k", std::move(dn)));
    ops.push_back(op_munmap("buf"));
  }
  return ops;
}

// --- shootdown family -------------------------------------------------------------------
constexpr unsigned kWarmup = 3;  // tools/hostbench/shootdown.c WARMUP
/// The 2 MiB-aligned block under test; a read-only page right below it keeps the PMD
/// table (the harness's PROT_NONE reservation) and bounds free_pgtables' floor.
constexpr uint64_t kBlock = 0x7e0000200000ull;

/// Thread B's ops (CPU 1) and thread A's (CPU 0) for one shootdown point.
std::pair<Json, Json> shootdown_ops(const HostShootdown& s) {
  const bool lazy = s.remote == "lazy";
  const uint64_t len = uint64_t{s.pages} * kPage;
  Json b = Json::array(), a = Json::array();
  b.push_back(op_mmap_fixed("below", kBlock - kPage, kPage, "r"));
  b.push_back(op_touch("below", "read"));
  const bool split = s.layout == "split";
  if (s.layout == "shared_table") {
    // A populated page at the block's last page: the PTE table is never emptied.
    b.push_back(op_mmap_fixed("keeper", kBlock + kPmd - kPage, kPage, "r"));
    b.push_back(op_touch("keeper", "read"));
  }
  if (split) {
    // One populated 2 MiB VMA whose head is the target: munmap and mprotect split it.
    b.push_back(op_mmap_fixed("blk", kBlock, kPmd, "rw"));
    b.push_back(op_touch("blk"));
  }
  const bool remap_each = s.op == "munmap";
  if (!remap_each && !split) {
    b.push_back(op_mmap_fixed("t", kBlock, len, "rw"));
    b.push_back(op_touch("t"));
  }
  // The target window: "t", or the head of "blk".
  auto window = [&](Json op) {
    if (split && s.op != "munmap") {
      op["mapping"] = "blk";
      op["offset"] = 0;
      op["length"] = len;
    }
    return op;
  };
  const unsigned total = kWarmup + s.iterations;
  unsigned wake = 0;
  // Lazy: A sleeps on a futex; before each measured call it is woken (CPU 0 loads
  // the mm again) and goes back to sleep (CPU 0 idles with the mm loaded lazily).
  auto rearm = [&] {
    if (!lazy) return;
    const std::string name = "w" + std::to_string(wake++);
    b.push_back(op_barrier(name, true));
    b.push_back(Json{{"op", "sleep"}, {"cycles", 20000}});
    a.push_back(op_barrier(name, false));
  };
  for (unsigned i = 0; i < total; ++i) {
    const bool measured = i >= kWarmup;
    auto call = [&](const std::string& region, Json op) {
      rearm();
      b.push_back(measured ? op_region(region, Json::array({std::move(op)})) : std::move(op));
    };
    if (s.op == "munmap") {
      b.push_back(op_mmap_fixed("t", kBlock, len, "rw"));
      b.push_back(op_touch("t"));
      call("op", op_munmap("t"));
    } else if (s.op == "dontneed") {
      b.push_back(window(op_touch("t")));
      call("op", window(op_madvise("t", 0, 0, "dontneed")));
    } else {
      // mprotect_ro and mprotect_rw are two points of one loop: touch, RO, RW.
      b.push_back(window(op_touch("t")));
      call(s.op == "mprotect_ro" ? "op" : "other", window(op_mprotect("t", 0, len, "r")));
      call(s.op == "mprotect_rw" ? "op" : "other", window(op_mprotect("t", 0, len, "rw")));
    }
  }
  if (lazy) {
    // Release A for good.
    const std::string name = "w" + std::to_string(wake++);
    b.push_back(op_barrier(name, true));
    a.push_back(op_barrier(name, false));
  } else {
    b.push_back(op_barrier("end", true));
    a.push_back(op_barrier("end", true));
  }
  return {std::move(b), std::move(a)};
}

double num(const Json& region, const char* key) {
  auto it = region.find(key);
  if (it == region.end() || !it->contains("value")) return 0;
  return (*it)["value"].get<double>();
}

struct Job {
  std::string key;  // experiment name
  fs::path exp, out;
  std::vector<std::pair<std::string, std::string>> points;  // region name → point key
  double divide_by = 1;  // calls per region entry for per-call values (4k ops: 512)
  bool per_entry = false;  // shootdown: average over region entries
};

}  // namespace

std::map<std::string, SimPoint> replay_host(const HostMeasurements& m, const ReplaySelection& sel,
                                            const ReplayOptions& o) {
  fs::create_directories(o.work);
  // The machine must hold the parent's memory, the child's COW copies and tables.
  Json machine = {{"preset", o.machine}};
  {
    const fs::path probe = o.work / "probe.json";
    write_file_atomic(probe, Json{{"machine", o.machine},
                                  {"kernel", o.kernel},
                                  {"workload", {{"processes", Json::array({{{"threads", Json::array({{{"cpu", 0}, {"ops", Json::array()}}})}}})}}}}
                                 .dump());
    auto ex = load_experiment(probe, o.sets, SearchPaths::from_environment());
    const uint64_t need = 3 * m.size_bytes + (256ull << 20);
    if (ex->machine->memory().value < need) machine["memory"] = format_size(need);
  }
  auto write_exp = [&](const std::string& name, const std::string& folio, Json threads) {
    Json e = {{"name", name}, {"machine", machine}, {"kernel", o.kernel}};
    if (!folio.empty()) e["folio_size"] = folio;
    e["workload"] = {{"processes", Json::array({{{"name", "hostbench"}, {"threads", std::move(threads)}}})}};
    const fs::path p = o.work / (name + ".json");
    write_file_atomic(p, e.dump());
    return p;
  };
  std::vector<Job> jobs;
  for (const HostFolio& f : m.folios) {
    if (!sel.folios.count(f.name)) continue;
    for (const Scenario& sc : scenarios()) {
      Job j;
      for (const std::string& op : sc.ops)
        if ((sel.ops.empty() || sel.ops.count(op)) && f.ops.count(op))
          j.points.push_back({op, folio_key(f.name, op)});
      if (j.points.empty()) continue;
      j.key = "folio-" + f.name + "-" + sc.name;
      Json threads = Json::array({{{"name", "main"}, {"cpu", 1}, {"ops", scenario_ops(sc.name, f.name, m.size_bytes)}}});
      j.exp = write_exp(j.key, folio_size_of(f.name), std::move(threads));
      j.out = o.work / j.key;
      jobs.push_back(std::move(j));
    }
  }
  for (const HostShootdown& s : m.shootdown) {
    if (!sel.shootdown_pages.count(s.pages)) continue;
    Job j;
    j.key = "shootdown-" + s.op + "-" + std::to_string(s.pages) + "-" + s.remote + "-" + s.layout;
    auto [b, a] = shootdown_ops(s);
    Json threads = Json::array({{{"name", "A"}, {"cpu", 0}, {"ops", std::move(a)}},
                                {{"name", "B"}, {"cpu", 1}, {"ops", std::move(b)}}});
    j.exp = write_exp(j.key, "", std::move(threads));
    j.out = o.work / j.key;
    j.points.push_back({"op", shootdown_key(s)});
    j.per_entry = true;
    jobs.push_back(std::move(j));
  }
  std::vector<WorkerJob> wj(jobs.size());
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    order[i] = i;
    wj[i].argv = {o.self, "run", jobs[i].exp.string(), "--quiet", "--out", jobs[i].out.string()};
    for (const auto& s : o.sets) {
      wj[i].argv.push_back("--set");
      wj[i].argv.push_back(s);
    }
    wj[i].log = o.work / (jobs[i].key + ".log");
  }
  std::map<std::string, SimPoint> out;
  std::string failure;
  size_t done = 0;
  const bool tty = !o.quiet && isatty(STDERR_FILENO);
  run_workers(wj, order, o.jobs, [&](size_t i, const WorkerResult& r) {
    ++done;
    if (tty)
      std::fprintf(stderr, "\r[%zu/%zu] %s (%.1f s)\033[K", done, jobs.size(), jobs[i].key.c_str(),
                   r.seconds);
    if (r.exit_code != 0) {
      if (failure.empty()) failure = jobs[i].key + ": " + read_log(wj[i].log);
      return;
    }
    const Json st = read_json_file(jobs[i].out / "stats.json");
    const double ghz = st["config"]["machine"]["freq_ghz"].get<double>();
    const Json& regions = st["stats"]["system"]["regions"];
    const uint64_t violations =
        static_cast<uint64_t>(st["stats"]["system"]["coherence"]["stale_tlb_violations"]["value"].get<double>());
    for (const auto& [region, key] : jobs[i].points) {
      const std::string rk = "region[" + region + "]";
      if (!regions.contains(rk)) {
        if (failure.empty()) failure = jobs[i].key + ": no region " + region;
        continue;
      }
      const Json& g = regions[rk];
      const double entries = std::max(1.0, num(g, "entries"));
      // Folio ops: the region's wall time, per system call for the *_4k ops.
      double calls = 1;
      if (!jobs[i].per_entry) {
        const std::string op = key.substr(key.rfind('/') + 1);
        const HostFolio* f = m.folio(key.substr(6, key.rfind('/') - 6));
        if (f && f->ops.count(op)) calls = static_cast<double>(f->ops.at(op).calls);
      }
      const double div = jobs[i].per_entry ? entries : calls;
      SimPoint p;
      p.cycles = (jobs[i].per_entry ? num(g, "cpu_cycles") : num(g, "cycles")) / div;
      p.ns = p.cycles / ghz;
      p.faults = num(g, "faults") / (jobs[i].per_entry ? entries : 1);
      p.split_pmd = num(g, "thp_split_pmd") / (jobs[i].per_entry ? entries : 1);
      p.deferred_split = num(g, "split_deferred") / (jobs[i].per_entry ? entries : 1);
      p.ipis_per_call = num(g, "ipis_sent") / div;
      p.invlpg = num(g, "invlpg") / div;
      p.full_flushes = num(g, "full_flushes") / div;
      const Json& kops = g["kernel_ops"];
      for (size_t k = 0; k < p.kops.size(); ++k) p.kops[k] = num(kops, mm::kKOpNames[k]) / div;
      p.violations = violations;
      out[key] = p;
    }
  });
  if (tty) std::fprintf(stderr, "\n");
  if (!failure.empty()) throw std::runtime_error("replay of the host measurements failed: " + failure);
  return out;
}

}  // namespace tlbsim

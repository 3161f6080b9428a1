// SystemC harness support for tests/models: one simulation per executable (SystemC
// elaborates once per process). A harness builds a System from a machine preset
// and a kernel profile (configs/), overridden from the command line so CTest can
// run the same executable with several profiles:
//   --machine=x86_small --kernel=linux-6.15 --set kernel.debug_free_before_flush=true
// and gives the task pinned to each CPU a C++ program (Harness::program) that calls
// the kernel and accesses memory through its CPU's MMU.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/file_util.h"
#include "base/params.h"
#include "mm/kernel_versions.h"
#include "mm/folio.h"
#include "models/system.h"

#ifndef TLBSIM_SOURCE_DIR
#define TLBSIM_SOURCE_DIR "."
#endif

namespace tlbsim::harness {

struct Options {
  std::string machine = "x86_small";
  std::string kernel = "linux-6.15";
  Json machine_patch = Json::object();  // merged over the preset
  Json kernel_patch = Json::object();
  std::vector<std::string> extra;  // --key=value arguments the harness reads itself
  /// The value of --name=value among the extra arguments, or `def`.
  std::string get(const std::string& name, const std::string& def = "") const {
    for (const auto& a : extra)
      if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
    return def;
  }
};

/// Sets `path` (dot separated) in `j` to `value` (parsed as JSON if it parses).
inline void set_path(Json& j, const std::string& path, const std::string& value) {
  Json* at = &j;
  size_t from = 0;
  for (;;) {
    const size_t dot = path.find('.', from);
    const std::string key = path.substr(from, dot - from);
    if (dot == std::string::npos) {
      Json v = Json::parse(value, nullptr, false);
      (*at)[key] = v.is_discarded() ? Json(value) : v;
      return;
    }
    at = &(*at)[key];
    from = dot + 1;
  }
}

/// Reads --machine, --kernel and --set (machine.* / kernel.*) from argv; removes
/// them, and keeps other --key=value arguments in Options::extra.
inline Options parse_args(int& argc, char** argv, Options o = {}) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--machine=", 0) == 0) {
      o.machine = a.substr(10);
    } else if (a.rfind("--kernel=", 0) == 0) {
      o.kernel = a.substr(9);
    } else if (a == "--set" && i + 1 < argc) {
      const std::string kv = argv[++i];
      const size_t eq = kv.find('=');
      const std::string key = kv.substr(0, eq);
      if (key.rfind("machine.", 0) == 0)
        set_path(o.machine_patch, key.substr(8), kv.substr(eq + 1));
      if (key.rfind("kernel.", 0) == 0) set_path(o.kernel_patch, key.substr(7), kv.substr(eq + 1));
    } else if (a.rfind("--gtest", 0) != 0 && a.rfind("--", 0) == 0) {
      o.extra.push_back(a);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return o;
}

/// One machine + kernel + processes, with programs for the cores.
class Harness {
 public:
  /// `threads[p]` lists the CPUs that run threads of process p.
  Harness(const Options& o, const std::vector<std::vector<unsigned>>& threads) : m_root("") {
    const std::string src = TLBSIM_SOURCE_DIR;
    Json m = read_json_file(src + "/configs/machines/" + o.machine + ".json");
    m.merge_patch(o.machine_patch);
    m_machine.load(m, "/machine");
    m_machine.validate("/machine");
    Json k = read_json_file(src + "/configs/kernels/" + o.kernel + ".json");
    k.merge_patch(o.kernel_patch);
    if (k.contains("version")) {
      m_profile.version.set(k["version"].get<std::string>());
      mm::apply_version_defaults(m_profile);  // the release's switches, then the file's
    }
    m_profile.load(k, "/kernel");
    m_profile.validate("/kernel");
    m_workload.name = "harness";
    for (size_t p = 0; p < threads.size(); ++p) {
      workload::Process proc;
      proc.name = "p" + std::to_string(p);
      for (unsigned cpu : threads[p]) {
        workload::Thread t;
        t.name = "cpu" + std::to_string(cpu);
        t.cpu = static_cast<int>(cpu);
        proc.threads.push_back(std::move(t));
      }
      m_workload.processes.push_back(std::move(proc));
    }
    m_sys = std::make_unique<System>(m_machine, m_profile, m_workload, 1, &m_root);
  }

  System& sys() { return *m_sys; }
  Core& core(unsigned i) { return m_sys->core(i); }
  /// Gives the task pinned to `cpu` a C++ program instead of its (empty) ops.
  void program(unsigned cpu, std::function<void(TaskThread&)> p) {
    m_sys->thread_on(cpu).set_program(std::move(p));
  }
  MachineParams& machine() { return m_machine; }
  const mm::KernelProfile& profile() const { return m_profile; }
  void run() { m_sys->run(); }

  /// A statistic's value by path (e.g. "system.cpu[0].faults"); 0 and a test failure
  /// if there is no such statistic.
  uint64_t stat(const std::string& path) const {
    const StatBase* s = m_root.find(path);
    EXPECT_NE(s, nullptr) << "no stat " << path;
    if (!s) return 0;
    const Json j = s->to_json();
    return j["value"].is_number_unsigned() ? j["value"].get<uint64_t>()
                                           : static_cast<uint64_t>(j["value"].get<double>());
  }
  uint64_t violations() const { return stat("system.coherence.stale_tlb_violations"); }

 private:
  MachineParams m_machine;
  mm::KernelProfile m_profile;
  workload::Workload m_workload;
  StatGroup m_root;
  std::unique_ptr<System> m_sys;
};

/// Maps a new anonymous folio of `order` at `va` of the core's process exactly as
/// the mTHP fault path does (one folio_add_new_anon_rmap, writable + dirty PTEs in
/// one set_ptes — arm64 then sets PTE_CONT on whole blocks). The VMA must exist and
/// have an anon_vma (touch one of its pages first).
inline void map_anon_folio(TaskThread& core, VirtAddr va, unsigned order) {
  core.kernel_call([&](mm::ExecContext& ctx) {
    mm::Kernel& k = core.system().kernel();
    mm::Mm& mm = core.process_mm();
    mm::Vma* vma = mm.find_vma(va);
    ASSERT_NE(vma, nullptr) << "map_anon_folio outside any VMA";
    ASSERT_NE(vma->anon_vma(), nullptr) << "map_anon_folio: touch the VMA first";
    const uint64_t nr = uint64_t{1} << order;
    auto pfn = k.phys().alloc_folio(order);
    ASSERT_TRUE(pfn.has_value()) << "out of memory";
    mm::Folio folio(k.phys(), *pfn);
    folio.ref_add(static_cast<int32_t>(nr) - 1);
    uint64_t* pte = k.page_tables().walk(ctx, mm, va, 1, true);
    ASSERT_NE(pte, nullptr);
    const mm::PteCodec& c = k.codec();
    const uint64_t entry = c.mkwrite(c.mkdirty(c.mk_pte(*pfn, vma->page_prot())));
    k.rmap().folio_add_new_anon_rmap(ctx, folio, *vma, va, mm::kRmapExclusive);
    if (order >= mm::kMinAnonThpOrder && order <= mm::kPmdOrder) ++k.vmstat().mthp[order]->nr_anon;
    mm.add_rss(mm::kMmAnonPages, static_cast<int64_t>(nr));
    ctx.count(mm::KOp::kPteWrite, nr);
    k.arch().set_ptes(ctx, mm, va, pte, entry, static_cast<unsigned>(nr));
  });
}

}  // namespace tlbsim::harness

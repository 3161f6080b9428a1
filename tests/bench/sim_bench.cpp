// Simulator throughput: translated accesses per host second on one host core.
// Never a timed test; run by tools/bench. One simulation per process (SystemC),
// so each configuration is one invocation:
//   sim_bench --mode=systemc|plain --arch=x86|arm64 --cores=N [--accesses=M]
//
// Both modes run the same translation model (X86CoreMmu / Arm64CoreMmu) over page
// tables built by the real kernel, with the same per-access work: address
// generation (strided 64 B over a 4 MiB window per core: 1 L1 miss per 64
// accesses, STLB-resident after the first pass), translate, cycle accounting and
// the quantum check.
//   systemc: the real Core (SC_THREAD per CPU, uint64 cycle keeper, quantum
//            1 us for N <= 8, 10 us above) replaying a "touch" op.
//   plain:   the ceiling — a hand-written round-robin scheduler that runs each CPU
//            for one quantum in turn, no SystemC (systemc-performance.md "plain RR").
// Output: one JSON line {mode, arch, cores, accesses, seconds, macc_per_s}.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "base/file_util.h"
#include "mm/instant_arch.h"
#include "mm/instant_arch_arm64.h"
#include "mm/kernel.h"
#include "models/system.h"

#ifndef TLBSIM_SOURCE_DIR
#define TLBSIM_SOURCE_DIR "."
#endif

namespace tlbsim {
namespace {

constexpr uint64_t kWindow = 4ull << 20;
constexpr uint64_t kStride = 64;

struct Config {
  std::string mode = "systemc";
  std::string arch = "x86";
  unsigned cores = 1;
  uint64_t accesses = 50'000'000;  // total over all cores
  uint64_t quantum_ns = 0;         // 0: 1 us for N <= 8, 10 us above
};

MachineParams& machine(const Config& c) {
  static MachineParams mp;
  Json j = read_json_file(std::string(TLBSIM_SOURCE_DIR) + "/configs/machines/" +
                          (c.arch == "arm64" ? "arm64_server" : "x86_server") + ".json");
  j["cpus"] = c.cores;
  j["memory"] = c.cores > 64 ? "32GiB" : "16GiB";
  const double ghz = j["freq_ghz"].get<double>();
  // Default quantum of systemc-performance.md: 1 us for N <= 8, 10 us above.
  const uint64_t q_ns = c.quantum_ns ? c.quantum_ns : (c.cores <= 8 ? 1000 : 10000);
  j["quantum_cycles"] = static_cast<uint64_t>(static_cast<double>(q_ns) * ghz);
  j["coherence_check"] = false;
  if (c.cores < 2) j["topology"]["sockets"] = 1;
  if (j.contains("arm64")) j["arm64"]["victim_stall_cycles"] = 0;
  mp.load(j, "/machine");
  return mp;
}

double run_systemc(const Config& c) {
  MachineParams& mp = machine(c);
  static mm::KernelProfile profile;
  static workload::Workload wl;
  wl.name = "bench";
  workload::Process p;
  p.name = "bench";
  const uint64_t per_core = c.accesses / c.cores;
  for (unsigned i = 0; i < c.cores; ++i) {
    workload::Thread t;
    t.name = "t" + std::to_string(i);
    t.cpu = i;
    workload::Op mmap;
    mmap.kind = workload::OpKind::kMmap;
    mmap.mapping = "m" + std::to_string(i);
    mmap.size = kWindow;
    mmap.populate = true;
    workload::Op touch;
    touch.kind = workload::OpKind::kTouch;
    touch.mapping = mmap.mapping;
    touch.access = workload::AccessKind::kRead;
    touch.pattern = workload::Pattern::kStrided;
    touch.stride = kStride;
    touch.count = per_core;
    t.ops = {mmap, touch};
    p.threads.push_back(std::move(t));
  }
  wl.processes = {p};
  static StatGroup root("");
  static System sys(mp, profile, wl, 1, &root);
  const auto t0 = std::chrono::steady_clock::now();
  sys.run();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count();
}

/// The plain C++ round-robin ceiling with the same MMU model and access loop.
template <class Mmu>
double run_plain_with(const Config& c, mm::ArchMmu& arch, mm::Kernel& k, mm::PhysMem& pm,
                      const MachineParams& mp, StatGroup& stats) {
  mm::ExecContext ctx(0);
  mm::Mm& mm = k.mm_create(ctx);
  std::vector<std::unique_ptr<Mmu>> mmus;
  const Topology topo(c.cores, mp.topology);
  std::vector<unsigned> socket_of(c.cores);
  for (unsigned i = 0; i < c.cores; ++i) socket_of[i] = topo.socket_of(i);
  CacheHierarchy mem(mp.cache, socket_of);
  const uint64_t l1 = mem.l1_cycles();
  const uint64_t inv_mlp = static_cast<uint64_t>(65536.0 / mp.cache.mlp() + 0.5);
  // Timed from here, like the SystemC run: both include populating the windows.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<VirtAddr> bases;
  for (unsigned i = 0; i < c.cores; ++i) {
    mm::ExecContext cctx(i);
    arch.switch_mm(cctx, mm);
    mm::MmapArgs a;
    a.len = kWindow;
    a.populate = true;
    bases.push_back(VirtAddr(static_cast<uint64_t>(k.sys_mmap(ctx, mm, a))));
    mmus.push_back(std::make_unique<Mmu>(i, mp, pm, mem, &stats));
  }
  const uint16_t asid = mp.arch() == "arm64" ? mm.asid() : mm::x86::kern_pcid(0);
  const uint64_t quantum = mp.quantum_cycles();
  const uint64_t per_core = c.accesses / c.cores;
  const uint64_t access_cycles = mp.access_cycles();
  struct State {
    uint64_t done = 0, off = 0, cycles = 0;
  };
  std::vector<State> st(c.cores);
  uint64_t boundary = quantum;
  for (bool more = true; more; boundary += quantum) {
    more = false;
    for (unsigned i = 0; i < c.cores; ++i) {
      State s = st[i];
      Mmu& mmu = *mmus[i];
      const VirtAddr base = bases[i];
      while (s.done < per_core && s.cycles < boundary) {
        const XlatResult r = mmu.translate(base + s.off, Access::kRead, asid, mm.pgd());
        const uint64_t beyond = mem.access(i, r.pa, MemSource::kUser).cycles - l1;
        s.cycles += access_cycles + (((r.cycles + beyond) * inv_mlp) >> 16);
        ++s.done;
        s.off += kStride;
        if (s.off >= kWindow) s.off -= kWindow;
      }
      st[i] = s;
      more |= s.done < per_core;
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count();
}

double run_plain(const Config& c) {
  MachineParams& mp = machine(c);
  mm::KernelProfile profile;
  StatGroup stats("");
  mm::PhysMem pm(mp.memory().value, 18);
  if (c.arch == "arm64") {
    mm::Arm64ArchConfig cfg;
    cfg.nr_cpus = c.cores;
    cfg.phys = &pm;
    mm::InstantArm64Arch arch(cfg, &stats);
    mm::Kernel k(profile, pm, arch, &stats);
    return run_plain_with<arm64::Arm64CoreMmu>(c, arch, k, pm, mp, stats);
  }
  mm::X86ArchConfig cfg;
  cfg.nr_cpus = c.cores;
  mm::InstantArch arch(cfg, &stats);
  mm::Kernel k(profile, pm, arch, &stats);
  return run_plain_with<x86::X86CoreMmu>(c, arch, k, pm, mp, stats);
}

}  // namespace
}  // namespace tlbsim

int sc_main(int argc, char* argv[]) {
  tlbsim::Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&](const char* k) { return a.substr(std::strlen(k)); };
    if (a.rfind("--mode=", 0) == 0) c.mode = val("--mode=");
    if (a.rfind("--arch=", 0) == 0) c.arch = val("--arch=");
    if (a.rfind("--cores=", 0) == 0) c.cores = static_cast<unsigned>(std::stoul(val("--cores=")));
    if (a.rfind("--accesses=", 0) == 0) c.accesses = std::stoull(val("--accesses="));
    if (a.rfind("--quantum-ns=", 0) == 0) c.quantum_ns = std::stoull(val("--quantum-ns="));
  }
  const double s = c.mode == "plain" ? tlbsim::run_plain(c) : tlbsim::run_systemc(c);
  std::printf(
      "{\"mode\": \"%s\", \"arch\": \"%s\", \"cores\": %u, \"accesses\": %llu, "
      "\"seconds\": %.4f, \"macc_per_s\": %.2f}\n",
      c.mode.c_str(), c.arch.c_str(), c.cores, static_cast<unsigned long long>(c.accesses), s,
      static_cast<double>(c.accesses) / s / 1e6);
  return 0;
}

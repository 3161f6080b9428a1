// TLB shootdown counts and timing on the SystemC models (one simulation per
// process; CTest runs each scenario / machine / page count as its own test).
//
//   --scenario=x86_counts --machine=x86_small [--set machine.cpus=8]
//       CPU0 munmaps 1, 2, 16, 32, 33, 34, 64, 512 pages of a region the mm's other
//       CPUs keep using. Oracle (linux-mm.md §5.1-5.3, T14-T16): ≤ 33 pages → one
//       INVLPG per page on the initiator and on every target, else one full flush
//       each; exactly one IPI per remote CPU running the mm per flush; none to a
//       lazy CPU (no page tables freed) nor to a CPU that never ran the mm.
//   --scenario=arm64_counts --machine=arm64_small [--set machine.arm64.range_tlbi=true]
//       CPU0 munmaps 1 … 1024 pages: TLBIs per §5.6 / T18, one DSB, no IPIs.
//   --scenario=dvm_serialise --machine=arm64_small --set machine.cpus=8
//       8 single-threaded processes each flush one page at the same instant: the
//       DVM node serves them one after another (waits 0, 1, …, 7 × service).
//   --scenario=quantum
//       runs x86_counts twice in child processes, with quantum 0 and the preset's
//       quantum: identical counts, total cycles within 1%.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "tests/models/harness.h"

namespace tlbsim {
namespace {

harness::Options g_opt;
std::string g_argv0;

struct Flush {
  uint64_t pages = 0;
  uint64_t ipis = 0, local_one = 0, local_all = 0, tlbi = 0, dsb_cycles = 0;
  bool tables_freed = false;  // the slice covered a whole PTE table
  std::vector<uint64_t> remote_invlpg, remote_full, received;
};

std::vector<Flush> g_flushes;
/// The slice of the current flush (set by the initiator before "sliced").
VirtAddr g_slice;
uint64_t g_slice_pages = 0;
/// Per runner CPU: slice pages its TLBs held before the flush, and after it.
std::map<unsigned, uint64_t> g_held_before, g_held_after;

/// Pages of the current slice that `c`'s TLBs hold under its current ASID/PCID.
uint64_t slice_pages_held(TaskThread& c) {
  Core& core = c.core();
  uint64_t n = 0;
  for (uint64_t p = 0; p < g_slice_pages; ++p) {
    const VirtAddr va = g_slice + p * kPageSize;
    n += core.is_arm64() ? core.arm64_mmu().holds(va, core.asid()) : core.mmu().holds(va, core.asid());
  }
  return n;
}

/// Program of the initiator: one big populated region; per page count, unmap a
/// slice from its middle (the neighbours keep the page tables alive).
void initiator(TaskThread& c, const std::vector<uint64_t>& counts, unsigned nr_cpus, bool arm) {
  const uint64_t region = 24ull << 20;  // holds every slice, with neighbours on both sides
  const VirtAddr base = c.mmap(region);
  for (uint64_t off = 0; off < region; off += kPageSize) c.touch(base + off, Access::kWrite);
  VirtAddr at = base + (1ull << 20);
  System& sys = c.system();
  for (uint64_t n : counts) {
    g_slice = at;
    g_slice_pages = n;
    c.barrier("sliced");
    c.barrier("ready");  // the others touched the slice
    Flush f;
    f.pages = n;
    const uint64_t ipis0 = c.core().stats().ipis_sent.value();
    const uint64_t tlbi0 = c.core().stats().tlbi_sent.value();
    const uint64_t dsb0 = c.core().stats().dsb_wait_cycles.value();
    uint64_t one0 = 0, all0 = 0;
    if (!arm) {
      one0 = sys.x86()->vmstats().nr_tlb_local_flush_one.value();
      all0 = sys.x86()->vmstats().nr_tlb_local_flush_all.value();
    }
    std::vector<uint64_t> inv0, full0, rec0;
    for (unsigned i = 0; i < nr_cpus; ++i) {
      inv0.push_back(sys.core(i).mmu_counters().invlpg_count);
      full0.push_back(sys.core(i).mmu_counters().pcid_flushes);
      rec0.push_back(sys.core(i).stats().ipis_received.value());
    }
    const int64_t tables0 = c.process_mm().nr_pgtables();
    c.munmap(at, n * kPageSize);
    f.tables_freed = c.process_mm().nr_pgtables() < tables0;
    c.barrier("unmapped");  // every handler ran
    f.ipis = c.core().stats().ipis_sent.value() - ipis0;
    f.tlbi = c.core().stats().tlbi_sent.value() - tlbi0;
    f.dsb_cycles = c.core().stats().dsb_wait_cycles.value() - dsb0;
    if (!arm) {
      f.local_one = sys.x86()->vmstats().nr_tlb_local_flush_one.value() - one0;
      f.local_all = sys.x86()->vmstats().nr_tlb_local_flush_all.value() - all0;
    }
    for (unsigned i = 0; i < nr_cpus; ++i) {
      f.remote_invlpg.push_back(sys.core(i).mmu_counters().invlpg_count - inv0[i]);
      f.remote_full.push_back(sys.core(i).mmu_counters().pcid_flushes - full0[i]);
      f.received.push_back(sys.core(i).stats().ipis_received.value() - rec0[i]);
    }
    g_flushes.push_back(f);
    at = at + (n + 16) * kPageSize;
    c.barrier("next");
  }
}

/// Program of a CPU running the same mm (`touches`): before each flush it reads
/// every page of the slice, so its TLBs hold them; after the flush none may remain.
/// Lazy CPUs and CPUs of other processes only follow the barriers.
void runner(TaskThread& c, const std::vector<uint64_t>& counts, bool touches) {
  for (size_t i = 0; i < counts.size(); ++i) {
    c.barrier("sliced");
    if (touches) {
      for (uint64_t p = 0; p < g_slice_pages; ++p) c.touch(g_slice + p * kPageSize, Access::kRead);
      g_held_before[c.cpu_id()] += slice_pages_held(c);
    }
    c.barrier("ready");
    c.barrier("unmapped");
    if (touches) g_held_after[c.cpu_id()] += slice_pages_held(c);
    c.barrier("next");
  }
}

/// x86: CPUs 1..N-3 run the mm, CPU N-2 is lazy, CPU N-1 runs another process
/// (N = 2: only CPU1, running the mm).
struct X86Layout {
  unsigned n;
  std::vector<unsigned> running, lazy, other;
};
X86Layout x86_layout(unsigned n) {
  X86Layout l{n, {}, {}, {}};
  if (n == 2) {
    l.running = {1};
  } else {
    for (unsigned i = 1; i + 2 < n; ++i) l.running.push_back(i);
    l.lazy = {n - 2};
    l.other = {n - 1};
  }
  return l;
}

const std::vector<uint64_t> kX86Counts = {1, 2, 16, 32, 33, 34, 64, 512};
const std::vector<uint64_t> kArmCounts = {1, 2, 16, 33, 40, 100, 511, 512, 1000, 1024};

void run_counts(bool arm, std::map<std::string, uint64_t>* summary = nullptr) {
  const unsigned n = [] {
    Json m = read_json_file(std::string(TLBSIM_SOURCE_DIR) + "/configs/machines/" + g_opt.machine +
                            ".json");
    m.merge_patch(g_opt.machine_patch);
    return m["cpus"].get<unsigned>();
  }();
  const auto& counts = arm ? kArmCounts : kX86Counts;
  X86Layout lay = arm ? X86Layout{n, {}, {}, {}} : x86_layout(n);
  if (arm) {
    for (unsigned i = 1; i < n; ++i) lay.running.push_back(i);
  }
  std::vector<std::vector<unsigned>> procs(1, {0});
  for (unsigned c : lay.running) procs[0].push_back(c);
  for (unsigned c : lay.lazy) procs[0].push_back(c);
  if (!lay.other.empty()) procs.push_back(lay.other);
  harness::Harness h(g_opt, procs);
  const unsigned participants = 1 + lay.running.size() + lay.lazy.size() + lay.other.size();
  for (const char* b : {"sliced", "ready", "unmapped", "next"}) h.sys().define_barrier(b, participants);
  h.program(0, [&](TaskThread& c) { initiator(c, counts, n, arm); });
  for (unsigned c : lay.running) h.program(c, [&](TaskThread& core) { runner(core, counts, true); });
  for (unsigned c : lay.lazy)
    h.program(c, [&](TaskThread& core) {
      core.go_lazy();
      runner(core, counts, false);
    });
  for (unsigned c : lay.other) h.program(c, [&](TaskThread& core) { runner(core, counts, false); });
  h.run();
  ASSERT_EQ(g_flushes.size(), counts.size());
  uint64_t all_pages = 0;
  for (uint64_t p : counts) all_pages += p;
  for (unsigned c : lay.running) {
    // Every slice page was cached before its flush (the TLBs are larger than the
    // largest slice), and no entry for any of them survived it.
    EXPECT_EQ(g_held_before[c], all_pages) << "cpu " << c << " cached the slices before the flushes";
    EXPECT_EQ(g_held_after[c], 0u) << "cpu " << c << " still holds unmapped pages after the flushes";
  }
  for (const Flush& f : g_flushes) {
    const uint64_t p = f.pages;
    if (!arm) {
      const bool partial = p <= 33;
      EXPECT_EQ(f.local_one, partial ? p : 0) << p << " pages: initiator INVLPGs";
      EXPECT_EQ(f.local_all, partial ? 0u : 1u) << p << " pages: initiator full flushes";
      EXPECT_EQ(f.ipis, lay.running.size()) << p << " pages: one IPI per remote CPU running the mm";
      for (unsigned c : lay.running) {
        EXPECT_EQ(f.received[c], 1u) << "cpu " << c;
        EXPECT_EQ(f.remote_invlpg[c], partial ? p : 0) << p << " pages, cpu " << c;
        EXPECT_EQ(f.remote_full[c], partial ? 0u : 1u) << p << " pages, cpu " << c;
      }
      for (unsigned c : lay.lazy) EXPECT_EQ(f.received[c], 0u) << "lazy cpu " << c << " got an IPI";
      for (unsigned c : lay.other)
        EXPECT_EQ(f.received[c], 0u) << "cpu " << c << " never ran the mm but got an IPI";
    } else {
      const bool range = h.machine().arm64.range_tlbi();
      static const std::map<uint64_t, uint64_t> kRange = {{1, 1},    {2, 1},   {16, 1},  {33, 2},
                                                          {40, 1},   {100, 2}, {511, 3}, {512, 1},
                                                          {1000, 2}, {1024, 1}};
      // Leaf flush at the VMA end (T18); a slice covering a whole PTE table also
      // frees it: one more non-last-level flush (stride 2 MiB: 1 VAE1IS / RVAE1IS).
      const uint64_t leaf = range ? kRange.at(p) : (p < 512 ? p : 1);
      const uint64_t expect = leaf + (f.tables_freed ? 1 : 0);
      EXPECT_EQ(f.tlbi, expect) << p << " pages, range TLBI " << range;
      EXPECT_EQ(f.ipis, 0u);
      for (unsigned c = 0; c < n; ++c)
        EXPECT_EQ(f.remote_invlpg[c] + f.remote_full[c], expect)
            << "cpu " << c << " sees every TLBI";
      const uint64_t dsb = h.machine().arm64.tlbi_dsb_cycles();
      EXPECT_EQ(f.dsb_cycles, dsb + (leaf - 1) * h.machine().arm64.tlbi_extra_op_cycles() +
                                  (f.tables_freed ? dsb : 0))
          << p << " pages: one DSB ISH completes each batch";
    }
  }
  EXPECT_EQ(h.violations(), 0u);
  if (summary) {
    uint64_t cycles = 0;
    for (unsigned c = 0; c < n; ++c)
      cycles += h.stat("system.cpu[" + std::to_string(c) + "].cycles");
    (*summary)["cycles"] = cycles;
    for (size_t i = 0; i < g_flushes.size(); ++i) {
      (*summary)["ipis" + std::to_string(i)] = g_flushes[i].ipis;
      (*summary)["one" + std::to_string(i)] = g_flushes[i].local_one;
      (*summary)["all" + std::to_string(i)] = g_flushes[i].local_all;
    }
    (*summary)["faults"] = h.stat("system.cpu[0].faults");
    (*summary)["walks"] = h.stat("system.cpu[0].walker.walks");
  }
}

void dvm_serialise() {
  // Each CPU flushes one page of its own mm right after the barrier, with no other
  // kernel work before it, so all broadcasts reach the DVM node at the same instant.
  const unsigned n = 8;
  std::vector<std::vector<unsigned>> procs;
  for (unsigned i = 0; i < n; ++i) procs.push_back({i});
  harness::Harness h(g_opt, procs);
  h.sys().define_barrier("go", n);
  std::vector<uint64_t> queued(n);
  for (unsigned i = 0; i < n; ++i)
    h.program(i, [&queued, i](TaskThread& c) {
      const VirtAddr va = c.mmap(64 * kPageSize);
      for (unsigned p = 0; p < 64; ++p) c.touch(va + p * kPageSize, Access::kWrite);
      c.barrier("go");
      const uint64_t q0 = c.core().stats().dvm_queue_cycles;
      c.kernel_call([&](mm::ExecContext& ctx) {  // 1 TLBI VALE1IS + DSB ISH each
        c.system().kernel().flush_tlb_page(ctx, c.process_mm(), va + 8 * kPageSize);
      });
      queued[i] = c.core().stats().dvm_queue_cycles - q0;
    });
  h.run();
  const uint64_t service = h.machine().arm64.tlbi_dsb_cycles();
  std::sort(queued.begin(), queued.end());
  for (unsigned i = 0; i < n; ++i) {
    if (h.machine().arm64.dvm_serialise()) {
      EXPECT_EQ(queued[i], i * service)
          << "broadcaster " << i << " must wait for " << i << " others";
    } else {
      EXPECT_EQ(queued[i], 0u);
    }
  }
}

TEST(Shootdown, Scenario) {
  const std::string s = g_opt.get("scenario");
  if (s == "x86_counts") {
    std::map<std::string, uint64_t> sum;
    run_counts(false, &sum);
    const std::string dump = g_opt.get("dump");
    if (!dump.empty()) {
      std::ofstream os(dump);
      for (auto& [k, v] : sum) os << k << " " << v << "\n";
    }
  } else if (s == "arm64_counts") {
    run_counts(true);
  } else if (s == "dvm_serialise") {
    dvm_serialise();
  } else if (s == "quantum") {
    // Two simulations, each in its own process.
    std::map<std::string, uint64_t> r[2];
    const char* q[2] = {"0", ""};
    for (int i = 0; i < 2; ++i) {
      const std::string file =
          "/tmp/tlbsim_quantum_" + std::to_string(::getpid()) + "_" + std::to_string(i);
      std::string cmd = g_argv0 + " --scenario=x86_counts --machine=" + g_opt.machine +
                        " --dump=" + file + " --gtest_brief=1";
      if (*q[i]) cmd += std::string(" --set machine.quantum_cycles=") + q[i];
      ASSERT_EQ(std::system((cmd + " > /dev/null").c_str()), 0) << cmd;
      std::ifstream is(file);
      std::string k;
      uint64_t v;
      while (is >> k >> v) r[i][k] = v;
      std::remove(file.c_str());
    }
    ASSERT_FALSE(r[0].empty());
    for (auto& [k, v] : r[0]) {
      if (k == "cycles") continue;
      EXPECT_EQ(v, r[1][k]) << k << " differs between quantum 0 and the default quantum";
    }
    const double a = static_cast<double>(r[0]["cycles"]), b = static_cast<double>(r[1]["cycles"]);
    std::printf("total cycles: quantum 0 %.0f, default %.0f (%.3f%%)\n", a, b, 100.0 * (b - a) / a);
    EXPECT_NEAR(b / a, 1.0, 0.01) << "cycle totals must agree within 1%";
  } else {
    FAIL() << "unknown --scenario=" << s;
  }
}

}  // namespace
}  // namespace tlbsim

int sc_main(int argc, char* argv[]) {
  tlbsim::g_argv0 = argv[0];
  tlbsim::g_opt = tlbsim::harness::parse_args(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

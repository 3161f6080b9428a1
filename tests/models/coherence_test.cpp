// TLB coherence checker against deliberately broken kernels (DESIGN §5). One
// simulation per process; CTest runs each scenario with the broken switch (the
// checker must report >= 1 violation: --expect=violations) and with every shipped
// profile (--expect=none).
//
// How a stale translation is observed without undefined program behaviour: the
// observing CPU never makes a user access that would fault. It probes
// (Core::probe): the access is translated by its TLBs and walker only, a miss that
// finds no PTE is counted, never turned into a page fault, so a thread can keep
// "accessing" memory another thread is unmapping. A probe that hits a TLB entry
// whose frame was freed is a stale-TLB violation. Independently, every by-VA
// invalidation (INVLPG, TLBI VA/range) checks the entries it drops: one whose frame
// was already freed proves the free came before the flush, even when no access
// happened in the window (on arm64 the broadcast reaches every TLB at issue time,
// so no other CPU runs between a premature free and the TLBI).
//
// Scenarios (--scenario=):
//   free_before_flush   CPU0 munmaps 16 pages that CPU1 keeps probing (x86: the
//                       IPIs leave a window; arm64 flushes the leaves per VMA,
//                       before the broken free, so it cannot show there).
//   free_table_before_flush  arm64: CPU0 munmaps 1 MiB alone in its 2 MiB region
//                       (its page tables are freed); the final flush of the tables'
//                       range (an ASIDE1IS for that range) finds CPU1's walk-cache
//                       entries to the freed tables.
//   lazy_freed_tables   x86: CPU1 caches a region, goes lazy (kernel thread);
//                       CPU0 munmaps the region and its page table is freed; the
//                       lazy CPU's hardware may still walk speculatively (probe).
//   contpte_unfold      arm64: CPU1 caches a contpte block as one 64 KiB entry;
//                       CPU0 clears one PTE of it (ptep_clear_flush): the unfold's
//                       break-before-make must invalidate the block everywhere
//                       before the entries are rewritten.
//
// Permission scenarios (the frames stay allocated; only the permission check of a
// TLB hit against the current PTE can see them). A store is probed, never made: on a
// correct kernel it would fault.
//   fork_wrprotect      CPU0 dirties 16 pages, forks (dup_mmap write-protects them,
//                       flush_tlb_mm(oldmm)), then probes stores to them.
//   mprotect_ro         CPU0 dirties 16 pages, mprotect(PROT_READ), probes stores.
//   mprotect_none       the same with mprotect(PROT_NONE), probes loads.
//   cow_other_cpu       after fork, CPU1 reads 16 pages, CPU0 writes them (COW:
//                       wp_page_copy's ptep_clear_flush reaches CPU1), CPU1 probes
//                       reads: a stale entry still names the old (shared) frame.
#include <gtest/gtest.h>

#include <random>

#include "mm/invariants.h"
#include "tests/models/harness.h"

namespace tlbsim {
namespace {

harness::Options g_opt;

constexpr uint64_t kPages = 16;

void free_before_flush(harness::Harness& h) {
  h.sys().define_barrier("mapped", 2);
  h.sys().define_barrier("cached", 2);
  h.sys().define_barrier("end", 2);
  static VirtAddr va;
  static bool unmapped = false;
  h.program(0, [](TaskThread& c) {
    va = c.mmap(kPages * kPageSize);
    for (uint64_t i = 0; i < kPages; ++i) c.touch(va + i * kPageSize, Access::kWrite);
    c.barrier("mapped");
    c.barrier("cached");  // CPU1's TLB holds every page
    c.advance(500);
    c.munmap(va, kPages * kPageSize);
    unmapped = true;
    c.barrier("end");
  });
  h.program(1, [](TaskThread& c) {
    c.barrier("mapped");
    for (uint64_t i = 0; i < kPages; ++i) c.touch(va + i * kPageSize, Access::kRead);
    c.barrier("cached");
    // Keep using the mapping while CPU0 unmaps it; bounded, never faults.
    for (unsigned round = 0; round < 20000 && !unmapped; ++round)
      for (uint64_t i = 0; i < kPages; ++i) c.probe(va + i * kPageSize, Access::kRead);
    c.barrier("end");
  });
}

// The broken free with a page table to free: 1 MiB alone in its 2 MiB region, so
// munmap's free_pgtables() frees the PTE table. On arm64 the per-VMA leaf flush
// (tlb_end_vma) precedes the broken free, but the final flush of the freed table's
// range (TLBI VAE1IS: walk caches too) comes after it and finds CPU1's walk-cache
// entry to the freed table.
void free_table_before_flush(harness::Harness& h) {
  h.sys().define_barrier("mapped", 2);
  h.sys().define_barrier("cached", 2);
  h.sys().define_barrier("end", 2);
  static VirtAddr va;
  constexpr uint64_t kLen = 1ull << 20;
  h.program(0, [](TaskThread& c) {
    c.kernel_call([&](mm::ExecContext& ctx) {
      mm::MmapArgs a;
      a.len = kLen;
      a.align = 2ull << 20;
      va = VirtAddr(static_cast<uint64_t>(c.system().kernel().sys_mmap(ctx, c.process_mm(), a)));
    }, "mmap");
    for (uint64_t off = 0; off < kLen; off += kPageSize) c.touch(va + off, Access::kWrite);
    c.barrier("mapped");
    c.barrier("cached");
    c.munmap(va, kLen);
    c.barrier("end");
  });
  h.program(1, [](TaskThread& c) {
    c.barrier("mapped");
    for (uint64_t off = 0; off < kLen; off += 64 * kPageSize) c.touch(va + off, Access::kRead);
    c.barrier("cached");
    c.barrier("end");
  });
}

void lazy_freed_tables(harness::Harness& h) {
  h.sys().define_barrier("populated", 2);
  h.sys().define_barrier("lazy", 2);
  h.sys().define_barrier("unmapped", 2);
  static VirtAddr va;
  static VirtAddr vma_start;
  static uint64_t vma_len;
  const uint64_t len = 2ull << 20;  // a whole PTE table's worth: unmapping frees it
  h.program(0, [len](TaskThread& c) {
    const VirtAddr raw = c.mmap(len + (2ull << 20));
    vma_start = raw;
    vma_len = len + (2ull << 20);
    va = raw.align_up(2ull << 20);
    for (uint64_t off = 0; off < len; off += 64 * kPageSize) c.touch(va + off, Access::kWrite);
    c.barrier("populated");
    c.barrier("lazy");
    c.munmap(vma_start, vma_len);
    // Reuse the freed frames.
    const VirtAddr other = c.mmap(len);
    for (uint64_t off = 0; off < len; off += kPageSize) c.touch(other + off, Access::kWrite);
    c.barrier("unmapped");
  });
  h.program(1, [len](TaskThread& c) {
    c.barrier("populated");
    for (uint64_t off = 0; off < len; off += 64 * kPageSize) c.touch(va + off, Access::kRead);
    c.go_lazy();
    c.barrier("lazy");
    c.barrier("unmapped");
    // A lazy CPU keeps the user page tables loaded: its hardware may walk them
    // speculatively. Probe as such a speculative access would.
    for (uint64_t off = 0; off < len; off += 64 * kPageSize) c.probe(va + off, Access::kRead);
  });
}

void contpte_unfold(harness::Harness& h) {
  h.sys().define_barrier("mapped", 2);
  h.sys().define_barrier("cached", 2);
  h.sys().define_barrier("end", 2);
  static VirtAddr block;
  h.program(0, [](TaskThread& c) {
    const VirtAddr va = c.mmap(1ull << 20);
    c.touch(va, Access::kWrite);  // anon_vma_prepare
    block = (va + 1).align_up(mm::arm64::kContPteSize);
    harness::map_anon_folio(c, block, 4);
    c.barrier("mapped");
    c.barrier("cached");
    // ptep_clear_flush() of page 5 (as wp_page_copy / migration do): clearing one
    // PTE of a contpte block unfolds it first.
    c.kernel_call([&](mm::ExecContext& ctx) {
      mm::Kernel& k = c.system().kernel();
      const VirtAddr a = block + 5 * kPageSize;
      uint64_t* pte = k.page_tables().walk(ctx, c.process_mm(), a, 1, false);
      k.arch().ptep_get_and_clear(ctx, c.process_mm(), a, pte);
      k.flush_tlb_page(ctx, c.process_mm(), a);
    });
    c.barrier("end");
  });
  h.program(1, [](TaskThread& c) {
    c.barrier("mapped");
    c.touch(block, Access::kRead);
    c.barrier("cached");
    c.barrier("end");
    c.probe(block + 5 * kPageSize, Access::kRead);
  });
}

constexpr uint64_t kPermPages = 16;

/// fork() on `c`'s process: the child's mm exists (no task runs it).
void fork_here(TaskThread& c) {
  c.kernel_call([&](mm::ExecContext& ctx) {
    if (!c.system().kernel().sys_fork(ctx, c.process_mm())) throw std::runtime_error("fork failed");
  }, "fork");
}

/// Probes a store to every page; returns how many translated.
uint64_t probe_stores(TaskThread& c, VirtAddr va) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < kPermPages; ++i) n += c.probe(va + i * kPageSize, Access::kWrite);
  return n;
}

void fork_wrprotect(harness::Harness& h) {
  h.program(0, [](TaskThread& c) {
    const VirtAddr va = c.mmap(kPermPages * kPageSize);
    for (uint64_t i = 0; i < kPermPages; ++i) c.touch(va + i * kPageSize, Access::kWrite);
    fork_here(c);
    std::printf("fork_wrprotect: %llu of %llu stores translated after fork\n",
                static_cast<unsigned long long>(probe_stores(c, va)),
                static_cast<unsigned long long>(kPermPages));
  });
  h.program(1, [](TaskThread&) {});
}

/// CPU0 dirties kPermPages pages, mprotects them (PROT_READ, or PROT_NONE) and
/// probes them with `probe`: stores after PROT_READ, loads after PROT_NONE (the
/// entries are then protnone: present for the kernel, invalid for the hardware).
void mprotect_then_probe(harness::Harness& h, bool read, Access probe) {
  h.program(0, [read, probe](TaskThread& c) {
    const VirtAddr va = c.mmap(kPermPages * kPageSize);
    for (uint64_t i = 0; i < kPermPages; ++i) c.touch(va + i * kPageSize, Access::kWrite);
    c.kernel_call([&](mm::ExecContext& ctx) {
      if (c.system().kernel().sys_mprotect(ctx, c.process_mm(), va, kPermPages * kPageSize, read,
                                           false, false))
        throw std::runtime_error("mprotect failed");
    }, "mprotect");
    uint64_t n = 0;
    for (uint64_t i = 0; i < kPermPages; ++i) n += c.probe(va + i * kPageSize, probe);
    std::printf("mprotect_%s: %llu of %llu %s translated after mprotect(%s)\n",
                read ? "ro" : "none", static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(kPermPages), read ? "stores" : "loads",
                read ? "PROT_READ" : "PROT_NONE");
  });
  h.program(1, [](TaskThread&) {});
}

void cow_other_cpu(harness::Harness& h) {
  h.sys().define_barrier("forked", 2);
  h.sys().define_barrier("read", 2);
  h.sys().define_barrier("copied", 2);
  static VirtAddr va;
  h.program(0, [](TaskThread& c) {
    va = c.mmap(kPermPages * kPageSize);
    for (uint64_t i = 0; i < kPermPages; ++i) c.touch(va + i * kPageSize, Access::kWrite);
    fork_here(c);
    c.barrier("forked");
    c.barrier("read");  // CPU1's TLB holds read-only entries for the shared frames
    for (uint64_t i = 0; i < kPermPages; ++i) c.touch(va + i * kPageSize, Access::kWrite);
    c.barrier("copied");
  });
  h.program(1, [](TaskThread& c) {
    c.barrier("forked");
    for (uint64_t i = 0; i < kPermPages; ++i) c.touch(va + i * kPageSize, Access::kRead);
    c.barrier("read");
    c.barrier("copied");
    for (uint64_t i = 0; i < kPermPages; ++i) c.probe(va + i * kPageSize, Access::kRead);
  });
}

// random: two threads of one process run a seeded random mix — mmap (some 2 MiB
// aligned: THPs, contpte blocks), writes and reads of their own mappings, runs of
// writes, mprotect (none / r / rw), MADV_DONTNEED / FREE / COLD / PAGEOUT, munmap, fork (the
// child mm stays, so later writes COW), reclaim — and probe reads and stores of
// each other's mappings. Every shipped profile must report no violation of any kind.
// TLBSIM_RANDOM_DEBUG=1 checks the kernel's invariants before every step taken
// while no task is inside the kernel, and traces the steps.
struct RandomMapping {
  VirtAddr start;
  uint64_t pages = 0;
  std::vector<uint8_t> prot;  // per page, as the owner's mprotects left it: 0 none, 1 r, 2 rw
};
std::vector<RandomMapping> g_maps[2];

void random_thread(TaskThread& c, unsigned me, uint64_t seed) {
  std::mt19937_64 rng(seed * 2 + me);
  auto pick = [&](uint64_t n) { return n ? rng() % n : 0; };
  mm::Kernel& k = c.system().kernel();
  std::vector<RandomMapping>& mine = g_maps[me];
  unsigned forks = 0;
  const bool debug = std::getenv("TLBSIM_RANDOM_DEBUG") != nullptr;
  for (unsigned step = 0; step < 600; ++step) {
    bool quiet = true;  // no task inside the kernel: its state is consistent
    for (unsigned t = 0; t < c.system().nr_threads(); ++t)
      quiet = quiet && !c.system().thread(t).in_kernel();
    if (debug && quiet) {
      const std::string e = mm::check_invariants(k);
      if (!e.empty())
        throw std::runtime_error("thread " + std::to_string(me) + " before step " +
                                 std::to_string(step) + ": " + e);
    }
    const unsigned r = static_cast<unsigned>(pick(100));
    if (debug) std::fprintf(stderr, "t%u step %u r %u\n", me, step, r);
    if (mine.empty() || (r < 8 && mine.size() < 4)) {
      RandomMapping m;
      const bool huge = pick(4) == 0;
      m.pages = huge ? 512 : 1 + pick(64);
      c.kernel_call([&](mm::ExecContext& ctx) {
        mm::MmapArgs a;
        a.len = m.pages * kPageSize;
        if (huge) a.align = 2ull << 20;
        m.start = VirtAddr(static_cast<uint64_t>(k.sys_mmap(ctx, c.process_mm(), a)));
      }, "mmap");
      m.prot.assign(m.pages, 2);
      mine.push_back(std::move(m));
      continue;
    }
    RandomMapping& m = mine[pick(mine.size())];
    const uint64_t p = pick(m.pages);
    const uint64_t len = 1 + pick(m.pages - p);
    const VirtAddr va = m.start + p * kPageSize;
    if (r < 40) {
      if (m.prot[p]) c.touch(va, m.prot[p] == 2 && pick(3) ? Access::kWrite : Access::kRead);
    } else if (r < 48) {
      for (uint64_t i = p; i < p + len && i < p + 32; ++i)
        if (m.prot[i]) c.touch(m.start + i * kPageSize, m.prot[i] == 2 ? Access::kWrite : Access::kRead);
    } else if (r < 56) {
      const uint8_t prot = static_cast<uint8_t>(pick(5) == 0 ? 0 : 1 + pick(2));
      c.kernel_call([&](mm::ExecContext& ctx) {
        if (k.sys_mprotect(ctx, c.process_mm(), va, len * kPageSize, prot != 0, prot == 2, false))
          throw std::runtime_error("mprotect failed");
      }, "mprotect");
      for (uint64_t i = p; i < p + len; ++i) m.prot[i] = prot;
    } else if (r < 66) {
      static const mm::Advice kAdv[] = {mm::Advice::kDontneed, mm::Advice::kFree,
                                        mm::Advice::kCold, mm::Advice::kPageout};
      const mm::Advice adv = kAdv[pick(4)];
      if (debug) std::fprintf(stderr, "  madvise %d len %llu\n", static_cast<int>(adv), (unsigned long long)len);
      c.kernel_call([&](mm::ExecContext& ctx) {
        (void)k.sys_madvise(ctx, c.process_mm(), va, len * kPageSize, adv);
      }, "madvise");
    } else if (r < 70) {
      const RandomMapping gone = m;
      mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(&m - mine.data()));
      c.munmap(gone.start, gone.pages * kPageSize);
    } else if (r < 72 && forks < 3) {
      ++forks;
      fork_here(c);
    } else if (r < 74) {
      c.kernel_call([&](mm::ExecContext& ctx) { k.reclaim(ctx, 1 + pick(64)); }, "reclaim");
    } else {
      // Probes of the other thread's mappings (or of one's own): never fault.
      const std::vector<RandomMapping>& any = g_maps[pick(2)];
      if (any.empty()) continue;
      const RandomMapping& o = any[pick(any.size())];
      c.probe(o.start + pick(o.pages) * kPageSize, pick(2) ? Access::kWrite : Access::kRead);
    }
  }
  c.barrier("random_end");
}

void random_mix(harness::Harness& h) {
  h.sys().define_barrier("random_end", 2);
  h.program(0, [](TaskThread& c) { random_thread(c, 0, 0x5eed); });
  h.program(1, [](TaskThread& c) { random_thread(c, 1, 0x5eed); });
}

TEST(CoherenceChecker, ReportsBrokenKernelsAndNothingElse) {
  const std::string scenario = g_opt.get("scenario");
  const std::string expect = g_opt.get("expect");
  ASSERT_TRUE(expect == "violations" || expect == "none") << "--expect=violations|none";
  harness::Harness h(g_opt, {{0, 1}});
  if (scenario == "free_before_flush") {
    free_before_flush(h);
  } else if (scenario == "free_table_before_flush") {
    free_table_before_flush(h);
  } else if (scenario == "lazy_freed_tables") {
    lazy_freed_tables(h);
  } else if (scenario == "contpte_unfold") {
    ASSERT_EQ(h.machine().arch(), "arm64") << "contpte is arm64 only";
    contpte_unfold(h);
  } else if (scenario == "random") {
    random_mix(h);
  } else if (scenario == "fork_wrprotect") {
    fork_wrprotect(h);
  } else if (scenario == "mprotect_ro") {
    mprotect_then_probe(h, true, Access::kWrite);
  } else if (scenario == "mprotect_none") {
    mprotect_then_probe(h, false, Access::kRead);
  } else if (scenario == "cow_other_cpu") {
    cow_other_cpu(h);
  } else {
    FAIL() << "unknown --scenario=" << scenario;
  }
  h.run();
  const uint64_t v = h.violations();
  std::printf(
      "scenario %s machine %s kernel %s: %llu violations (walk cache %llu, bbm %llu, "
      "freed-before-invalidate %llu, freed while cached %llu, permission %llu, permission in "
      "flight %llu), probes %llu\n",
      scenario.c_str(), g_opt.machine.c_str(), g_opt.kernel.c_str(),
      static_cast<unsigned long long>(v),
      static_cast<unsigned long long>(h.stat("system.coherence.walk_cache_violations")),
      static_cast<unsigned long long>(h.stat("system.coherence.break_before_make_violations")),
      static_cast<unsigned long long>(
          h.stat("system.coherence.freed_before_invalidate_violations")),
      static_cast<unsigned long long>(h.stat("system.coherence.freed_while_cached_violations")),
      static_cast<unsigned long long>(h.stat("system.coherence.permission_violations")),
      static_cast<unsigned long long>(h.stat("system.coherence.permission_in_flight")),
      static_cast<unsigned long long>(h.stat("system.cpu[1].probes")));
  if (expect == "violations") {
    EXPECT_GE(v, 1u) << "the coherence checker missed the broken kernel in " << scenario;
    if (scenario == "free_before_flush" || scenario == "free_table_before_flush" ||
        scenario == "lazy_freed_tables") {
      EXPECT_GE(h.stat("system.coherence.freed_while_cached_violations"), 1u)
          << "a frame or page table freed while a usable translation was cached must be "
             "caught at the free, whether or not a CPU uses it afterwards: "
          << scenario;
    }
    if (scenario == "fork_wrprotect" || scenario == "mprotect_ro" || scenario == "cow_other_cpu") {
      EXPECT_GE(h.stat("system.coherence.permission_violations"), 1u)
          << "the frames stay allocated: only the permission check can see " << scenario;
    }
  } else {
    EXPECT_EQ(v, 0u) << "a shipped profile produced stale-TLB violations in " << scenario;
  }
}

}  // namespace
}  // namespace tlbsim

int sc_main(int argc, char* argv[]) {
  tlbsim::g_opt = tlbsim::harness::parse_args(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

// Faults, munmap and the flushes they cause, on InstantArch (x86-64 decisions).
#include <gtest/gtest.h>

#include "mm/folio.h"
#include "mm/mmu_gather.h"
#include "tests/unit/mm/kernel_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class Kernel_ : public KernelFixture {};

// mm/memory.c:do_anonymous_page() + folio_add_new_anon_rmap(): a write fault on an
// order-0 anon page.
TEST_F(Kernel_, WriteFaultInstallsExclusiveOrderZeroFolio) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, 16 * kPageSize);
  const uint64_t free_before = pm->nr_free_pages();
  touch(mm, a + 3 * kPageSize);
  uint64_t* pte = kernel->page_tables().walk(ctx[0], mm, a + 3 * kPageSize, 1, false);
  ASSERT_NE(pte, nullptr);
  Folio f = Folio::of(*pm, kernel->codec().pfn(*pte));
  EXPECT_EQ(f.order(), 0u);
  EXPECT_EQ(f.ref_count(), 1);
  EXPECT_EQ(f.mapcount(), 1);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_TRUE(kernel->codec().write(*pte));
  EXPECT_TRUE(kernel->codec().dirty(*pte));
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), 1);
  EXPECT_EQ(kernel->vmstat().rmap_calls.value(), 1u);
  // One folio frame plus the PTE, PMD and PUD tables below the pgd.
  EXPECT_EQ(free_before - pm->nr_free_pages(), 4u);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
}

// A read fault maps the shared zero page: no rmap, no refcount, no rss.
TEST_F(Kernel_, ReadFaultMapsTheZeroPage) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, kPageSize);
  touch(mm, a, /*write=*/false);
  uint64_t* pte = kernel->page_tables().walk(ctx[0], mm, a, 1, false);
  EXPECT_EQ(kernel->codec().pfn(*pte), kernel->zero_pfn());
  EXPECT_FALSE(kernel->codec().write(*pte));
  EXPECT_EQ(mm.rss(kMmAnonPages), 0);
  EXPECT_EQ(kernel->vmstat().rmap_calls.value(), 0u);
  EXPECT_EQ(kernel->vmstat().pgfault_zero_page.value(), 1u);
}

// wp_page_copy() from the zero page: ptep_clear_flush → flush_tlb_page (1 INVLPG on
// the only CPU that runs the mm, no IPI).
TEST_F(Kernel_, WriteAfterZeroPageReadCopiesAndFlushesOnePage) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, kPageSize);
  touch(mm, a, false);
  arch->clear_events();
  touch(mm, a, true);
  EXPECT_EQ(kernel->vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  ASSERT_EQ(count(Kind::kLocalPartial), 1u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
}

// T31: munmap of a range whose PTE table exists but holds only none entries.
TEST_F(Kernel_, MunmapOfNonePtesNeverFlushes) {
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  touch(mm, a);  // the PTE table exists and stays (page 0 survives)
  arch->clear_events();
  munmap(mm, a + 16 * kPageSize, 16 * kPageSize);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
}

// x86 flush_tlb_mm_range(): ≤ 33 pages → INVLPG per page, > 33 → full flush; one IPI
// per remote CPU that runs the mm (tables stay: neighbours keep them in use).
TEST_F(Kernel_, MunmapFlushTypeFollowsTheCeilingOf33) {
  for (uint64_t n : {1, 2, 16, 32, 33, 34, 64, 512}) {
    build();
    Mm& mm = process({0, 1});
    VirtAddr a = mmap(mm, 1024 * kPageSize);
    populate(mm, a, 1024 * kPageSize);
    arch->clear_events();
    munmap(mm, a + 256 * kPageSize, n * kPageSize);
    EXPECT_EQ(count(Kind::kFlushRequest), 1u) << n;
    EXPECT_EQ(count(Kind::kIpi), 1u) << n;
    if (n <= 33) {
      EXPECT_EQ(count(Kind::kLocalPartial), 2u) << n;  // initiator and CPU1
      for (auto& e : arch->events())
        if (e.kind == Kind::kLocalPartial) {
          EXPECT_EQ(e.count, n) << n;
        }
    } else {
      EXPECT_EQ(count(Kind::kLocalFull), 2u) << n;
    }
    EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), n <= 33 ? n : 0) << n;
    EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_all.value(), n <= 33 ? 0u : 1u) << n;
  }
}

// T19: 10,000 order-0 pages; the 9,678th gather item forces a flush inside
// zap_pte_range (local bundle 7 + 19 batches × 509), the final one comes at
// tlb_finish_mmu: 2 flushes, 2 IPIs.
TEST_F(Kernel_, GatherFullForcesFlushAtItem9678) {
  build({.cpus = 2, .memory = 512ull << 20});
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 12000 * kPageSize);
  populate(mm, a, 10000 * kPageSize);
  arch->clear_events();
  munmap(mm, a, 10000 * kPageSize);
  EXPECT_EQ(count(Kind::kFlushRequest), 2u);
  EXPECT_EQ(count(Kind::kIpi), 2u);
  EXPECT_EQ(kernel->flush_stats().gather_forced.value(), 1u);
  EXPECT_EQ(kernel->flush_stats().gather_batches.value(), 19u);
  // Frames freed by the forced flush: exactly 9,678 folios before the second flush.
  uint64_t freed_between = 0;
  int flushes = 0;
  for (auto& e : arch->events()) {
    if (e.kind == Kind::kFlushRequest) ++flushes;
    if (e.kind == Kind::kFramesFreed && flushes == 1) freed_between += e.count;
  }
  EXPECT_EQ(freed_between, 9678u);
}

// mmu_gather ordering: every frame is freed after the flush that covers it.
TEST_F(Kernel_, NeverFreesFolioBeforeFlushCompletes) {
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  arch->clear_events();
  munmap(mm, a, 64 * kPageSize);
  bool flushed = false;
  for (auto& e : arch->events()) {
    if (e.kind == Kind::kLocalFull || e.kind == Kind::kLocalPartial) flushed = true;
    if (e.kind == Kind::kFramesFreed) {
      EXPECT_TRUE(flushed) << "frame freed before the TLB flush";
    }
  }
  EXPECT_TRUE(flushed);
}

// The broken switch really breaks the ordering (so the checkers can be tested).
TEST_F(Kernel_, DebugFreeBeforeFlushBreaksTheOrdering) {
  profile.debug_free_before_flush.set(true);
  build();
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  arch->clear_events();
  munmap(mm, a, 64 * kPageSize);
  ASSERT_FALSE(arch->events().empty());
  EXPECT_EQ(arch->events().front().kind, Kind::kFramesFreed);
}

// munmap of a whole VMA frees its page tables: memory returns to what it was.
TEST_F(Kernel_, MunmapReturnsEveryFrame) {
  Mm& mm = process({0, 1});
  const uint64_t before = pm->nr_free_pages();
  VirtAddr a = mmap(mm, 4096 * kPageSize);
  populate(mm, a, 4096 * kPageSize);
  EXPECT_EQ(before - pm->nr_free_pages(), 4096u + 8 + 2);  // pages + 8 PTE tables + PMD + PUD
  munmap(mm, a, 4096 * kPageSize);
  EXPECT_EQ(pm->nr_free_pages(), before);
  EXPECT_EQ(mm.nr_pgtables(), 0);
  EXPECT_EQ(mm.rss(kMmAnonPages), 0);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), 0);
}

// Lazy CPUs: skipped without freed tables, IPI'd (and switched to init_mm) with them.
TEST_F(Kernel_, LazyCpuSkippedUnlessTablesAreFreed) {
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 1024 * kPageSize);
  populate(mm, a, 1024 * kPageSize);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  munmap(mm, a + 8 * kPageSize, 8 * kPageSize);  // tables stay
  EXPECT_EQ(count(Kind::kIpi), 0u);
  EXPECT_EQ(arch->vmstats().ipis_skipped_lazy.value(), 1u);
  arch->clear_events();
  munmap(mm, a, 1024 * kPageSize);  // the rest: tables freed
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_EQ(arch->cpu_state(1).loaded_mm, nullptr) << "lazy CPU switched to init_mm";
}

TEST_F(Kernel_, BrokenLazySwitchSkipsLazyCpuEvenWithFreedTables) {
  profile.debug_skip_lazy_freed_tables.set(true);
  build();
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  munmap(mm, a, 64 * kPageSize);
  EXPECT_EQ(count(Kind::kIpi), 0u);
}

// Per-PTE zap (linux-6.7) and batched zap (linux-6.9+) reach the same state.
TEST_F(Kernel_, PerPteAndBatchedZapReachTheSameState) {
  uint64_t free_after[2];
  for (int batched = 0; batched < 2; ++batched) {
    profile.zap_batching.set(batched);
    build();
    Mm& mm = process({0});
    const uint64_t before = pm->nr_free_pages();
    VirtAddr a = mmap(mm, 300 * kPageSize);
    populate(mm, a, 300 * kPageSize);
    munmap(mm, a, 300 * kPageSize);
    free_after[batched] = pm->nr_free_pages();
    EXPECT_EQ(free_after[batched], before);
    EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), 0);
  }
  EXPECT_EQ(free_after[0], free_after[1]);
}

// exit_mmap(): full-mm gather; x86 flushes everything once, IPIs lazy CPUs since
// page tables are freed.
TEST_F(Kernel_, ExitFlushesOnceAndFreesEverything) {
  Mm& mm = process({0, 1});
  const uint64_t before = pm->nr_free_pages();
  VirtAddr a = mmap(mm, 100 * kPageSize);
  populate(mm, a, 100 * kPageSize);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  kernel->exit_mmap(ctx[0], mm);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_EQ(pm->nr_free_pages(), before);
  EXPECT_EQ(kernel->flush_stats().by_cause[static_cast<size_t>(FlushCause::kExit)]->full_mm.value(), 1u);
}

// Regression (issue 16 item 2): MAP_FIXED above the user address space was accepted
// and aliased low addresses (the walker ignores bits above the VA width). Mirrors the
// checks of do_mmap() and __get_unmapped_area(): -ENOMEM beyond TASK_SIZE, -EINVAL
// for an unaligned fixed address.
TEST_F(Kernel_, MmapBeyondTaskSizeFailsWithEnomem) {
  Mm& mm = process({0});
  auto mmap_at = [&](uint64_t addr, uint64_t len, bool fixed = true, uint64_t align = 0) {
    MmapArgs a;
    a.addr = addr;
    a.len = len;
    a.fixed = fixed;
    a.align = align;
    return Kernel::mmap_errno(kernel->sys_mmap(ctx[0], mm, a));
  };
  EXPECT_EQ(mmap_at((1ull << 48) + (16ull << 20), 8192), ENOMEM);  // the issue's "hi"
  EXPECT_EQ(mmap_at(0xffff800000000000ull, 4096), ENOMEM);
  EXPECT_EQ(mmap_at(kTaskSizeX86 - 4096, 8192), ENOMEM);
  EXPECT_EQ(mmap_at(kTaskSizeX86 - 8192, 8192), 0);
  EXPECT_EQ(mmap_at(0x10001000, 8192), 0);
  EXPECT_EQ(mmap_at(0x10000800, 8192), EINVAL);
  EXPECT_EQ(mmap_at(0, 1ull << 63, false), ENOMEM);
  EXPECT_EQ(mmap_at(0, 128ull << 40, false), ENOMEM);
  EXPECT_EQ(mmap_at(0, ~0ull, false), ENOMEM) << "PAGE_ALIGN(len) wraps to 0";
  EXPECT_EQ(mmap_at(0, 4096, false, 1ull << 63), ENOMEM);
  MmapArgs a;
  a.len = 4096;
  const uint64_t r = kernel->sys_mmap(ctx[0], mm, a);
  EXPECT_EQ(Kernel::mmap_errno(r), 0);
  EXPECT_LE(r + 4096, kTaskSizeX86);
  check();
}

TEST_F(Kernel_, MmapWithFiveLevelsReachesTheLa57TaskSize) {
  build({.pgtable_levels = 5});
  Mm& mm = process({0});
  MmapArgs a;
  a.len = 8192;
  a.fixed = true;
  a.addr = 1ull << 48;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], mm, a)), 0);
  a.addr = kTaskSizeX86La57 - 4096;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], mm, a)), ENOMEM);
  check();
}

}  // namespace
}  // namespace tlbsim::mm::testing

namespace tlbsim::mm::testing {
namespace {

// mm/vma.c:unmapped_area_topdown() below mm->mmap_base (TASK_SIZE − 128 MiB without
// ASLR): mappings follow each other down with no gap, so two small mappings share
// one PTE table, and munmap of one frees no page table.
TEST_F(Kernel_, AdjacentMappingsShareAPteTable) {
  Mm& mm = process({0});
  const VirtAddr a = mmap(mm, 2 * kPageSize, false, kPageSize);
  EXPECT_EQ(a.value(), kTaskSizeX86 - (uint64_t{128} << 20) - 2 * kPageSize);
  MmapArgs ro;
  ro.len = 2 * kPageSize;
  ro.write = false;  // other flags: its own VMA (no merge)
  const VirtAddr b(kernel->sys_mmap(ctx[0], mm, ro));
  EXPECT_EQ(b + 2 * kPageSize, a) << "no gap between mappings";
  EXPECT_EQ(mm.vmas().size(), 2u);
  touch(mm, a);
  touch(mm, b, false);
  const int64_t tables = mm.nr_pgtables();
  munmap(mm, a, 2 * kPageSize);
  EXPECT_EQ(mm.nr_pgtables(), tables) << "b still uses the PTE table";
  EXPECT_EQ(mm.vmas().size(), 1u);
  // A third mapping with b's flags takes the highest gap — where a was, right
  // above b — and merges with b.
  const VirtAddr c(kernel->sys_mmap(ctx[0], mm, ro));
  EXPECT_EQ(c, a);
  EXPECT_EQ(mm.vmas().size(), 1u) << "vma_merge_new_range() extends b";
}

// __get_unmapped_area() → __thp_get_unmapped_area(): an anonymous mapping whose
// length is a multiple of 2 MiB starts on a PMD boundary (6.12+: "mm, mmap: limit
// THP alignment of anonymous mappings to PMD-aligned sizes"); 3 MiB does not on
// 6.12+, and does on 6.8–6.11 (every mapping of at least PMD_SIZE).
TEST_F(Kernel_, LargeAnonymousMappingsAreThpAligned) {
  Mm& mm = process({0});
  const VirtAddr small = mmap(mm, 2 * kPageSize, false, kPageSize);
  const VirtAddr big = mmap(mm, 4 * kPmdSize, false, kPageSize);
  EXPECT_TRUE(big.is_aligned(kPmdSize));
  EXPECT_LT(big + 4 * kPmdSize, small + 1) << "below the first mapping";
  const VirtAddr odd = mmap(mm, 3 * (kPmdSize / 2), false, kPageSize);
  EXPECT_FALSE(odd.is_aligned(kPmdSize));
  EXPECT_EQ(odd + 3 * (kPmdSize / 2), big) << "no gap";
  profile.thp_anon_align.set("len_ge_pmd");
  build();
  Mm& mm2 = process({0});
  (void)mmap(mm2, 2 * kPageSize, false, kPageSize);
  EXPECT_TRUE(mmap(mm2, 3 * (kPmdSize / 2), false, kPageSize).is_aligned(kPmdSize));
  profile.thp_anon_align.set("none");
  build();
  Mm& mm3 = process({0});
  (void)mmap(mm3, 2 * kPageSize, false, kPageSize);
  EXPECT_FALSE(mmap(mm3, 4 * kPmdSize, false, kPageSize).is_aligned(kPmdSize));
}

// arch/x86/mm/tlb.c:switch_mm_irqs_off(): before 6.14 a CPU leaves the previous mm's
// mm_cpumask when it loads another mm ("Stop remote flushes for the previous mm"),
// so a later munmap of that mm sends it no IPI; from 6.14 ("x86/mm/tlb: Update
// mm_cpumask lazily") the bit stays, and the flush trims it without an IPI
// (should_flush_tlb(): the CPU runs another mm).
TEST_F(Kernel_, SwitchMmLeavesThePreviousCpumaskBefore614) {
  for (bool lazy_cpumask : {false, true}) {
    profile.x86_lazy_cpumask.set(lazy_cpumask);
    build();
    Mm& a = process({0, 1});
    const VirtAddr va = mmap(a, 4 * kPageSize);
    populate(a, va, 4 * kPageSize);
    Mm& b = process({});
    arch->switch_mm(ctx[1], b);
    EXPECT_EQ(a.cpumask().test(1), lazy_cpumask) << lazy_cpumask;
    arch->clear_events();
    munmap(a, va, kPageSize);
    EXPECT_EQ(count(Kind::kIpi), 0u) << lazy_cpumask;
  }
}

// arch/x86/mm/tlb.c:flush_tlb_func(): the partial-flush loop runs "while (addr <
// f->end)", so a munmap that only frees a PTE table — tlb->start/end one page
// (pte_free_tlb → tlb_flush_pmd_range(tlb, addr, PAGE_SIZE)), stride PMD_SHIFT —
// still takes one INVLPG on each CPU it flushes (freed_tables: the lazy-free rules
// do not skip them).
TEST_F(Kernel_, MunmapFreeingOnlyAPteTableIssuesOneInvlpgPerCpu) {
  Mm& mm = process({0, 1});
  // A mapping above keeps the PMD table (free_pgtables' ceiling): freeing that too
  // would widen the range to the PUD boundary (free_pmd_range: start &= PUD_MASK)
  // and make it a full flush, as in Linux.
  const VirtAddr x = mmap(mm, 2 * kPmdSize, false, kPageSize);  // THP-aligned
  touch(mm, x);
  const VirtAddr a = mmap(mm, 2 * kPageSize);  // the 2 MiB above x, alone in it
  ASSERT_EQ(a, x + 2 * kPmdSize);
  touch(mm, a);
  ASSERT_EQ(kernel->sys_madvise(ctx[0], mm, a, 2 * kPageSize, Advice::kDontneed), 0);
  const int64_t tables = mm.nr_pgtables();
  arch->clear_events();
  munmap(mm, a, 2 * kPageSize);
  EXPECT_LT(mm.nr_pgtables(), tables) << "the PTE table went";
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_EQ(count(Kind::kLocalPartial), 2u) << "initiator and CPU1";
  for (auto& e : arch->events()) {
    if (e.kind == Kind::kLocalPartial) {
      EXPECT_EQ(e.count, 1u);
    }
  }
  EXPECT_EQ(count(Kind::kLocalFull), 0u);
}

}  // namespace
}  // namespace tlbsim::mm::testing

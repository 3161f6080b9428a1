// mprotect (change_protection) and madvise (DONTNEED, FREE) on InstantArch.
#include <gtest/gtest.h>

#include "mm/folio.h"
#include "tests/unit/mm/kernel_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class Mprotect : public KernelFixture {
 protected:
  uint64_t pte(Mm& mm, VirtAddr a) {
    uint64_t* p = kernel->page_tables().walk(ctx[0], mm, a, 1, false);
    return p ? *p : 0;
  }
};

// mm/mprotect.c:change_pte_range() + pte_needs_flush(): RW→R needs a flush of every
// changed PTE; x86 flushes once at tlb_finish_mmu with the 33-page rule; the VMA is
// split around the range.
TEST_F(Mprotect, ReadOnlyFlushesChangedPtesOnce) {
  for (uint64_t n : {1, 16, 33, 34}) {
    build();
    Mm& mm = process({0, 1});
    VirtAddr a = mmap(mm, 1024 * kPageSize);
    populate(mm, a, 1024 * kPageSize);
    arch->clear_events();
    ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a + 100 * kPageSize, n * kPageSize, true, false, false), 0);
    check();
    EXPECT_EQ(mm.vmas().size(), 3u) << n;
    EXPECT_FALSE(kernel->codec().write(pte(mm, a + 100 * kPageSize))) << n;
    EXPECT_TRUE(kernel->codec().write(pte(mm, a + (100 + n) * kPageSize))) << n;
    EXPECT_EQ(count(Kind::kFlushRequest), 1u) << n;
    EXPECT_EQ(count(Kind::kIpi), 1u) << n;
    EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), n <= 33 ? n : 0) << n;
    EXPECT_EQ(events_where(Kind::kFlushRequest, FlushCause::kMprotect), 1u) << n;
  }
}

// x86 pte_needs_flush() (arch/x86/include/asm/tlbflush.h): mprotect(PROT_READ)
// right after fork finds every PTE read-only already; change_pte_range() still
// rewrites each (ptep_modify_prot_start/commit), but nothing needs a flush.
TEST_F(Mprotect, UnchangedPtesAreNotFlushedOnX86) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, 8 * kPageSize);
  populate(mm, a, 8 * kPageSize);
  Mm& child = kernel->dup_mmap(ctx[0], mm);
  ASSERT_FALSE(kernel->codec().write(pte(mm, a)));
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 8 * kPageSize, true, false, false), 0);
  check();
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  kernel->exit_mmap(ctx[0], child);
}

// Flushes without freed tables skip lazy CPUs (flush_tlb_mm_range via the gather).
TEST_F(Mprotect, LazyCpusAreSkipped) {
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 8 * kPageSize, true, false, false), 0);
  EXPECT_EQ(count(Kind::kIpi), 0u);
}

// Back to RW: exclusive anon pages become writable at once (can_change_pte_writable),
// so the next write does not fault; the RW change itself is flushed on x86.
TEST_F(Mprotect, WritableAgainWithoutWriteFaults) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, 8 * kPageSize);
  populate(mm, a, 8 * kPageSize);
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 8 * kPageSize, true, false, false), 0);
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 8 * kPageSize, true, true, false), 0);
  check();
  EXPECT_TRUE(kernel->codec().write(pte(mm, a)));
  EXPECT_EQ(mm.vmas().size(), 1u);
}

TEST_F(Mprotect, UnmappedHoleIsEnomem) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, 8 * kPageSize);
  EXPECT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 64 * kPageSize, true, false, false), -ENOMEM);
}

// mm/madvise.c MADV_DONTNEED → zap_page_range_single(): the pages go after the
// flush, the VMA and the page tables stay, the next touch faults a fresh page.
TEST_F(Mprotect, DontneedZapsButKeepsTheVma) {
  Mm& mm = process({0, 1});
  VirtAddr a = mmap(mm, 64 * kPageSize);
  populate(mm, a, 64 * kPageSize);
  const uint64_t free_before = pm->nr_free_pages();
  arch->clear_events();
  ASSERT_EQ(kernel->sys_madvise(ctx[0], mm, a, 16 * kPageSize, Advice::kDontneed), 0);
  check();
  EXPECT_EQ(pm->nr_free_pages() - free_before, 16u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 48);
  EXPECT_EQ(mm.vmas().size(), 1u);
  EXPECT_EQ(events_where(Kind::kFlushRequest, FlushCause::kDontneed), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  touch(mm, a);
  EXPECT_EQ(mm.rss(kMmAnonPages), 49);
}

// MADV_FREE: exclusive anon folios become lazy-free; their PTEs old and clean (a
// flush for each PTE that was young or dirty).
TEST_F(Mprotect, FreeMarksLazyfreeAndCleansPtes) {
  Mm& mm = process({0});
  VirtAddr a = mmap(mm, 8 * kPageSize);
  populate(mm, a, 8 * kPageSize);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_madvise(ctx[0], mm, a, 8 * kPageSize, Advice::kFree), 0);
  check();
  const uint64_t p = pte(mm, a);
  EXPECT_FALSE(kernel->codec().dirty(p));
  EXPECT_FALSE(kernel->codec().young(p));
  Folio f = Folio::of(*pm, kernel->codec().pfn(p));
  EXPECT_FALSE(f.head().test(kPgSwapBacked));
  EXPECT_EQ(kernel->vmstat().lazyfree_folios.value(), 8u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 8u);
}

}  // namespace
}  // namespace tlbsim::mm::testing

namespace tlbsim::mm::testing {
namespace {

// mm/memory.c:zap_present_ptes() + folio_pte_batch(): with zap batching one
// folio_remove_rmap_ptes() call and one gather item per folio run; without it
// (linux-6.7) one rmap call and one gather item per page. Same final state.
class ZapBatching : public KernelFixture {};

TEST_F(ZapBatching, BatchedPathCallsRmapOncePerFolioRun) {
  uint64_t rmap_calls[2], free_after[2];
  for (int batched = 0; batched < 2; ++batched) {
    profile.zap_batching.set(batched);
    const_cast<Param<std::string>&>(profile.thp.per_size(4)).set("always");  // 64 KiB folios
    build();
    Mm& mm = process({0});
    const uint64_t before = pm->nr_free_pages();
    VirtAddr a = mmap(mm, 256 * kPageSize);  // 16 folios of 16 pages
    populate(mm, a, 256 * kPageSize);
    EXPECT_EQ(kernel->vmstat().mthp[4]->anon_fault_alloc.value(), 16u);
    const uint64_t calls_before = kernel->vmstat().rmap_calls.value();
    munmap(mm, a, 256 * kPageSize);
    rmap_calls[batched] = kernel->vmstat().rmap_calls.value() - calls_before;
    free_after[batched] = pm->nr_free_pages();
    EXPECT_EQ(free_after[batched], before);
    EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), 0);
  }
  EXPECT_EQ(rmap_calls[0], 256u) << "per-PTE zap: one rmap call per page";
  EXPECT_EQ(rmap_calls[1], 16u) << "batched zap: one rmap call per 16-page folio run";
}

}  // namespace
}  // namespace tlbsim::mm::testing

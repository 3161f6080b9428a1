// PMD split (mm/huge_memory.c __split_huge_pmd_locked, reference §10.3), folio
// split and the deferred-split shrinker (§9.3–9.4, deferred_split_scan,
// __folio_split, unmap_folio, remap_page) and the batched unmap flush they use
// (§6: set_tlb_ubc_flush_pending, try_to_unmap_flush, flush_tlb_batched_pending).
// Oracles T26 and T30 of §11.
#include <gtest/gtest.h>

#include "mm/deferred_split.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class ThpSplit : public FaultFixture {
 protected:
  /// PMD THP on, no mTHP sizes.
  void build_thp(const KernelFixtureConfig& c = {}) {
    enable_thp_sizes({}, "always");
    per_size(kPmdOrder).set("inherit");
    build(c);
  }
  /// Only 64 KiB mTHP.
  void build_64k(const KernelFixtureConfig& c = {}) {
    enable_thp_sizes({4});
    build(c);
  }
  int madvise(Mm& mm, VirtAddr a, uint64_t len, Advice adv) {
    const int r = kernel->sys_madvise(ctx[0], mm, a, len, adv);
    check();
    return r;
  }
  uint64_t flushes_for(FlushCause c) {
    return kernel->flush_stats().by_cause[static_cast<size_t>(c)]->requests.value();
  }
};

// T26: x86, mm only on CPU0; munmap of one 4 KiB page inside a PMD-mapped anon THP
// that was queued at fault time (zap_pmd_range / __split_huge_pmd_locked /
// __folio_remove_rmap / deferred_split_folio).
TEST_F(ThpSplit, T26_MunmapOfOnePageInsideAPmdThp) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  Folio f = folio_at(mm, a);
  ASSERT_TRUE(f.test_pmd_mappable());
  ASSERT_EQ(kernel->deferred_split().length(), 1u) << "queued at fault (shrink_underused)";
  const uint64_t calls = rmap_calls();
  const int64_t tables = mm.nr_pgtables();
  arch->clear_events();
  munmap(mm, a + 5 * kPageSize, kPageSize);
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  // pmdp_invalidate → flush_pmd_tlb_range (1 INVLPG, stride 2 MiB), then the gather's
  // final flush of the one page (1 INVLPG); no IPIs.
  EXPECT_EQ(count(Kind::kFlushRequest), 2u);
  EXPECT_EQ(events_where(Kind::kFlushRequest, FlushCause::kPmdSplit), 1u);
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 2u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  // folio_add_anon_rmap_ptes(512), folio_remove_rmap_pmd, folio_remove_rmap_ptes(1).
  EXPECT_EQ(rmap_calls() - calls, 3u);
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 0);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 511);
  EXPECT_EQ(mm.rss(kMmAnonPages), 511);
  EXPECT_EQ(f.ref_count(), 511);
  EXPECT_EQ(f.large_mapcount(), 511);
  EXPECT_EQ(f.entire_mapcount(), 0);
  EXPECT_TRUE(f.lf().partially_mapped);
  EXPECT_EQ(vmstat().thp_deferred_split_page.value(), 1u);
  EXPECT_EQ(mthp(kPmdOrder).split_deferred.value(), 1u);
  EXPECT_EQ(mthp(kPmdOrder).nr_anon_partially_mapped.value(), 1);
  EXPECT_EQ(kernel->deferred_split().length(), 1u) << "already queued";
  EXPECT_EQ(mm.nr_pgtables(), tables) << "the deposited table became the PTE table";
  EXPECT_TRUE(f.page(0).test(kPgAnonExclusive)) << "RMAP_EXCLUSIVE propagated";
  EXPECT_TRUE(codec().write(pte(mm, a)));
  EXPECT_EQ(pte(mm, a + 5 * kPageSize), 0u);
}

// Before the rmap overhaul (rmap_batching off): one rmap call per subpage.
TEST_F(ThpSplit, PmdSplitAddsRmapPerPteWithoutRmapBatching) {
  profile.rmap_batching.set(false);
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  const uint64_t calls = rmap_calls();
  EXPECT_EQ(madvise(mm, a + 7 * kPageSize, kPageSize, Advice::kDontneed), 0);
  EXPECT_EQ(rmap_calls() - calls, 512u + 1u + 1u);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 511);
}

// A huge zero PMD splits into 512 zero-page PTEs (__split_huge_zero_page_pmd).
TEST_F(ThpSplit, PartialZapOfHugeZeroPmdLeavesZeroPtes) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, false), FaultResult::kOk);
  ASSERT_TRUE(codec().huge(pmd(mm, a)));
  EXPECT_EQ(madvise(mm, a, kPageSize, Advice::kDontneed), 0);
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  EXPECT_EQ(pte(mm, a), 0u);
  EXPECT_EQ(pfn_at(mm, a + kPageSize), kernel->zero_pfn());
  EXPECT_EQ(fault(mm, a + kPageSize, true), FaultResult::kOk);  // COW of the zero page
  EXPECT_NE(pfn_at(mm, a + kPageSize), kernel->zero_pfn());
}

// mprotect: a THP wholly in the range changes in place (change_huge_pmd, one PMD
// flush); one only partly in the range is split first (change_pmd_range).
TEST_F(ThpSplit, MprotectChangesWholeThpsAndSplitsPartialOnes) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + kPmdSize, true), FaultResult::kOk);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a + kPmdSize, kPmdSize, true, false, false), 0);
  check();
  EXPECT_TRUE(codec().huge(pmd(mm, a + kPmdSize)));
  EXPECT_FALSE(codec().write(pmd(mm, a + kPmdSize)));
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 0u);
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, kPageSize, true, false, false), 0);
  check();
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  EXPECT_FALSE(codec().write(pte(mm, a)));
  EXPECT_TRUE(codec().write(pte(mm, a + kPageSize)));
  // Writable again: exclusive anon PTEs/PMDs become writable without a fault.
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, 2 * kPmdSize, true, true, false), 0);
  check();
  EXPECT_TRUE(codec().write(pte(mm, a)));
  EXPECT_TRUE(codec().write(pmd(mm, a + kPmdSize)));
}

// fork shares a PMD THP; a write in the child finds refcount 2, splits the child's
// PMD (do_huge_pmd_wp_page fallback) and COWs one page at PTE level.
TEST_F(ThpSplit, CowOfSharedPmdThpSplitsAndCopiesOnePage) {
  build_thp();
  Mm& parent = process({0});
  const VirtAddr a = map_anon(parent, kPmdSize);
  ASSERT_EQ(fault(parent, a, true), FaultResult::kOk);
  Folio f = folio_at(parent, a);
  Mm& child = kernel->dup_mmap(ctx[0], parent);
  check();
  arch->switch_mm(ctx[1], child);
  ASSERT_EQ(fault(child, a + 3 * kPageSize, true, 1), FaultResult::kOk);
  EXPECT_TRUE(codec().huge(pmd(parent, a)));
  EXPECT_FALSE(codec().huge(pmd(child, a)));
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(f.entire_mapcount(), 1);
  EXPECT_EQ(f.large_mapcount(), 1 + 511);
  EXPECT_EQ(f.ref_count(), 1 + 511);
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  kernel->exit_mmap(ctx[1], child);
  check();
  EXPECT_EQ(f.large_mapcount(), 1);
  kernel->exit_mmap(ctx[0], parent);
  check();
}

/// T06 then T30 setup: a 64K folio F at A (mm on CPUs 0 and 1), its 6th page zapped.
class DeferredSplitScan : public ThpSplit {
 protected:
  Mm* mm = nullptr;
  VirtAddr a;
  Folio f;
  void setup() {
    build_64k();
    mm = &process({0, 1});
    a = map_anon(*mm, 128 << 10, 64 << 10);
    ASSERT_EQ(fault(*mm, a, true), FaultResult::kOk);
    f = folio_at(*mm, a);
    ASSERT_EQ(f.order(), 4u);
    ASSERT_EQ(madvise(*mm, a + 5 * kPageSize, kPageSize, Advice::kDontneed), 0);
    ASSERT_TRUE(f.lf().partially_mapped);
    ASSERT_EQ(kernel->deferred_split().length(), 1u);
  }
};

// T30 (x86): the shrinker splits the partially mapped F: 15 migration entries with
// one batched flush (one IPI round), 15 folio_add_anon_rmap_pte on remap, the
// unmapped page freed, split[64kB] +1, nr_anon[64kB] −1, partially-mapped gauge −1.
TEST_F(DeferredSplitScan, T30_SplitsPartiallyMappedFolioWithOneBatchedFlush) {
  setup();
  const Pfn head = f.pfn();
  const uint64_t calls = rmap_calls();
  const uint64_t free0 = pm->nr_free_pages();
  const int64_t anon_mapped = vmstat().nr_anon_mapped.value();
  arch->clear_events();
  EXPECT_EQ(kernel->deferred_split_scan(ctx[0], 16), 1u);
  check();
  EXPECT_EQ(mthp(4).split.value(), 1u);
  EXPECT_EQ(mthp(4).nr_anon.value(), 0);
  EXPECT_EQ(mthp(4).nr_anon_partially_mapped.value(), 0);
  EXPECT_EQ(kernel->deferred_split().length(), 0u);
  EXPECT_EQ(pm->nr_free_pages() - free0, 1u) << "the unmapped subpage";
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), anon_mapped) << "net 0";
  EXPECT_EQ(rmap_calls() - calls, 15u + 15u) << "15 removals, 15 remaps";
  EXPECT_EQ(vmstat().pgmigrate_entries.value(), 15u);
  EXPECT_EQ(kernel->flush_stats().tlbbatch_pending.value(), 15u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u) << "one try_to_unmap_flush";
  EXPECT_EQ(count(Kind::kIpi), 1u) << "CPU1, once for the whole folio";
  EXPECT_EQ(flushes_for(FlushCause::kMigration), 1u);
  for (unsigned i = 0; i < 16; ++i) {
    if (i == 5) continue;
    Folio s = folio_at(*mm, a + i * kPageSize);
    EXPECT_EQ(s.pfn(), head + i);
    EXPECT_EQ(s.order(), 0u);
    EXPECT_EQ(s.ref_count(), 1);
    EXPECT_EQ(s.mapcount(), 1);
    EXPECT_TRUE(s.page(0).test(kPgAnonExclusive)) << "restored from the exclusive entries";
    EXPECT_TRUE(codec().write(pte(*mm, a + i * kPageSize)));
  }
  EXPECT_TRUE(pm->buddy().is_free(head + 5));
}

// T24 after a batch: the next PTE modifier of the mm pays one flush_tlb_mm
// (flush_tlb_batched_pending), the one after it does not.
TEST_F(DeferredSplitScan, T24_FirstZapAfterABatchFlushesTheMm) {
  setup();
  ASSERT_EQ(kernel->deferred_split_scan(ctx[0], 16), 1u);
  arch->clear_events();
  munmap(*mm, a + 20 * kPageSize, kPageSize);  // nothing mapped there: no own flush
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  arch->clear_events();
  munmap(*mm, a + 21 * kPageSize, kPageSize);
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
}

// Without batching (batched_reclaim_flush off): one flush per unmapped page.
TEST_F(DeferredSplitScan, WithoutBatchingOneFlushPerPage) {
  profile.batched_reclaim_flush.set(false);
  setup();
  arch->clear_events();
  EXPECT_EQ(kernel->deferred_split_scan(ctx[0], 16), 1u);
  check();
  EXPECT_EQ(count(Kind::kFlushRequest), 15u);
  EXPECT_EQ(count(Kind::kIpi), 15u);
  EXPECT_EQ(kernel->flush_stats().tlbbatch_pending.value(), 0u);
}

// The shrinker drops fully mapped (underused-candidate) THPs from the queue without
// splitting them; a partially mapped PMD-sized folio is split to 512 pages.
TEST_F(ThpSplit, ShrinkerDropsFullyMappedThpsAndSplitsPartialOnes) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + kPmdSize, true), FaultResult::kOk);
  ASSERT_EQ(kernel->deferred_split().length(), 2u);
  EXPECT_EQ(madvise(mm, a + kPmdSize, 2 * kPageSize, Advice::kDontneed), 0);
  const uint64_t free0 = pm->nr_free_pages();
  EXPECT_EQ(kernel->deferred_split_scan(ctx[0], 8), 1u);
  check();
  EXPECT_EQ(kernel->deferred_split().length(), 0u);
  EXPECT_TRUE(codec().huge(pmd(mm, a))) << "the fully mapped THP is left alone";
  EXPECT_EQ(mthp(kPmdOrder).split.value(), 1u);
  EXPECT_EQ(vmstat().thp_split_page.value(), 1u);
  EXPECT_EQ(pm->nr_free_pages() - free0, 2u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 1024 - 2);
  kernel->exit_mmap(ctx[0], mm);
  check();
}

// split_folio() of a PMD-mapped THP: TTU_SPLIT_HUGE_PMD splits the PMD with freeze
// (512 migration entries), then every page is remapped as an order-0 folio.
TEST_F(ThpSplit, SplitFolioOfAPmdMappedThp) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  Folio f = folio_at(mm, a);
  f.ref_add(1);  // the caller's reference
  EXPECT_EQ(kernel->split_folio(ctx[0], f), 0);
  kernel->folio_put_refs(ctx[0], f.pfn(), 1, "test");
  check();
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  EXPECT_EQ(vmstat().pgmigrate_entries.value(), 512u);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 512);
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 0);
  EXPECT_EQ(folio_at(mm, a + 100 * kPageSize).order(), 0u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 512);
}

// can_split_folio(): an extra reference makes the split fail (split_failed).
TEST_F(DeferredSplitScan, ExtraReferenceMakesTheSplitFail) {
  setup();
  f.ref_add(1);
  EXPECT_EQ(kernel->deferred_split_scan(ctx[0], 16), 0u);
  EXPECT_EQ(mthp(4).split_failed.value(), 1u);
  EXPECT_EQ(kernel->deferred_split().length(), 1u) << "still partially mapped: stays queued";
  f.ref_add(-1);
  check();
}

}  // namespace
}  // namespace tlbsim::mm::testing

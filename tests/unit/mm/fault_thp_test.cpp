// PMD-mapped THP faults (mm/huge_memory.c do_huge_pmd_anonymous_page,
// do_huge_pmd_wp_page, do_huge_zero_wp_pmd, zap_huge_pmd) and the page tables
// deposited with them; reference §11 oracle T25.
#include <gtest/gtest.h>

#include <vector>

#include "mm/deferred_split.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class ThpFault : public FaultFixture {
 protected:
  /// PMD THP on (hugepages-2048kB inherits top-level "always"); no mTHP sizes.
  void build_thp(const KernelFixtureConfig& c = {}) {
    enable_thp_sizes({}, "always");
    per_size(kPmdOrder).set("inherit");
    build(c);
  }
};

// do_huge_pmd_anonymous_page() → map_anon_folio_pmd(): one order-9 folio, one PMD
// (writable, dirty), one rmap call, a deposited PTE table counted in nr_pgtables,
// THP_FAULT_ALLOC, queued for the underused shrinker (Linux 6.12+).
TEST_F(ThpFault, WriteFaultMapsAPmdThp) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  const int64_t tables0 = mm.nr_pgtables();
  const uint64_t zero0 = ctx[0].get(KOp::kPageZero);
  const uint64_t tables_alloc0 = ctx[0].get(KOp::kPtAlloc);
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 0x12345, true), FaultResult::kOk);
  const uint64_t m = pmd(mm, a);
  ASSERT_TRUE(codec().huge(m));
  EXPECT_TRUE(codec().write(m) && codec().dirty(m));
  Folio f = folio_at(mm, a);
  EXPECT_EQ(f.order(), kPmdOrder);
  EXPECT_EQ(f.pfn(), codec().pfn(m));
  EXPECT_EQ(f.ref_count(), 1);
  EXPECT_EQ(f.entire_mapcount(), 1);
  EXPECT_EQ(f.large_mapcount(), 1);
  EXPECT_EQ(f.lf().nr_pages_mapped, kEntirelyMapped);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_EQ(rmap_calls(), 1u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 512);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 512);
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 512);
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(kPmdOrder).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(kPmdOrder).nr_anon.value(), 1);
  EXPECT_EQ(ctx[0].get(KOp::kPageZero) - zero0 - (ctx[0].get(KOp::kPtAlloc) - tables_alloc0), 512u)
      << "folio_zero_user of 512 pages, besides the new page tables";
  EXPECT_EQ(mm.nr_pgtables() - tables0, 3) << "PUD and PMD tables and the deposited table";
  EXPECT_EQ(kernel->page_tables().walk(ctx[0], mm, a, 1, false), nullptr) << "no PTE table";
  EXPECT_EQ(kernel->deferred_split().length(), 1u);
  EXPECT_FALSE(f.lf().partially_mapped);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  // Faults under the PMD only update access flags.
  ASSERT_EQ(fault(mm, a + 0x1000, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 0x1000, false), FaultResult::kOk);
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 1u);
}

// Pre-6.12 kernels (deferred_split_partial_only off) or shrink_underused off: no
// queueing at fault time.
TEST_F(ThpFault, UnderusedQueueingFollowsTheProfile) {
  for (int variant = 0; variant < 2; ++variant) {
    if (variant == 0) profile.deferred_split_partial_only.set(false);
    else profile.thp.shrink_underused.set(false);
    build_thp();
    Mm& mm = process({0});
    const VirtAddr a = map_anon(mm, kPmdSize);
    ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
    EXPECT_EQ(kernel->deferred_split().length(), 0u) << variant;
    profile.deferred_split_partial_only.set(true);
    profile.thp.shrink_underused.set(true);
  }
}

// The PMD order needs a 2 MiB aligned window inside the VMA; otherwise
// VM_FAULT_FALLBACK to the PTE level (with no THP_FAULT_FALLBACK: no allocation
// was tried).
TEST_F(ThpFault, UnsuitableVmaFallsBackToPtes) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize + 0x10000, kPmdSize);
  munmap(mm, a, 0x10000);  // the VMA is [A+64K, A+2M+64K): no aligned 2 MiB inside
  ASSERT_EQ(fault(mm, a + 0x10000, true), FaultResult::kOk);
  EXPECT_FALSE(codec().huge(pmd(mm, a)));
  EXPECT_EQ(folio_at(mm, a + 0x10000).order(), 0u);
  EXPECT_EQ(vmstat().thp_fault_fallback.value(), 0u);
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 0u);
}

// An order-9 allocation failure counts THP_FAULT_FALLBACK and
// anon_fault_fallback[2048kB], then the PTE level uses the enabled mTHP sizes.
TEST_F(ThpFault, PmdAllocationFailureFallsBackToMthp) {
  enable_thp_sizes({4}, "always");
  per_size(kPmdOrder).set("inherit");
  build({.cpus = 2, .memory = 16ull << 20});
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  ASSERT_EQ(fault(mm, a + kPmdSize, true), FaultResult::kOk);  // a THP; tables exist
  std::vector<Pfn> held;
  while (auto p = pm->alloc_folio(4)) held.push_back(*p);  // no order ≥ 5 block left
  ASSERT_LT(pm->buddy().largest_free_order(), 9);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().thp_fault_fallback.value(), 1u);
  EXPECT_EQ(mthp(kPmdOrder).anon_fault_fallback.value(), 1u);
  EXPECT_FALSE(codec().huge(pmd(mm, a)));
  EXPECT_EQ(folio_at(mm, a).order(), 0u) << "no order-4 block left either";
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 1u);
  for (Pfn p : held) {
    Folio(*pm, p).put_refs(1);
    pm->free_folio(p, "test");
  }
}

// A read fault with use_zero_page maps the huge zero folio read-only (its own
// deposited table, no rmap, no rss); the write that follows replaces it with a
// THP (do_huge_zero_wp_pmd: pmdp_huge_clear_flush → one flush_pmd_tlb_range).
TEST_F(ThpFault, HugeZeroPageReadThenWriteAllocatesATHP) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  const int64_t tables0 = mm.nr_pgtables();
  ASSERT_EQ(fault(mm, a + 0x5000, false), FaultResult::kOk);
  const uint64_t m = pmd(mm, a);
  ASSERT_TRUE(codec().huge(m));
  EXPECT_FALSE(codec().write(m));
  EXPECT_EQ(codec().pfn(m), kernel->huge_zero_pfn());
  EXPECT_TRUE(pm->page(kernel->huge_zero_pfn()).test(kPgZero));
  EXPECT_EQ(rmap_calls(), 0u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 0);
  EXPECT_EQ(vmstat().thp_zero_page_alloc.value(), 1u);
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 0u);
  EXPECT_EQ(mm.nr_pgtables() - tables0, 3) << "PUD and PMD tables and the deposited table";
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 0x5000, true), FaultResult::kOk);
  Folio f = folio_at(mm, a);
  EXPECT_EQ(f.order(), kPmdOrder);
  EXPECT_FALSE(f.test_zero());
  EXPECT_TRUE(codec().write(pmd(mm, a)));
  EXPECT_EQ(mm.rss(kMmAnonPages), 512);
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 512);
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 1u);
  EXPECT_EQ(mm.nr_pgtables() - tables0, 3) << "the zero PMD's deposit carries over";
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(events_where(Kind::kLocalPartial, FlushCause::kCow), 1u);
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 1u) << "one INVLPG for 2 MiB";
  // A second mm's read reuses the one huge zero folio.
  Mm& other = process({1});
  const VirtAddr b = map_anon(other, kPmdSize);
  ASSERT_EQ(fault(other, b, false), FaultResult::kOk);
  EXPECT_EQ(codec().pfn(pmd(other, b)), kernel->huge_zero_pfn());
  EXPECT_EQ(vmstat().thp_zero_page_alloc.value(), 1u);
}

// Before 6.13 (huge_zero_wp_thp off; mm/huge_memory.c:do_huge_pmd_wp_page() of 6.12:
// "if (is_huge_zero_pmd(orig_pmd)) goto fallback"): the write splits the huge zero
// PMD into 512 zero-page PTEs (__split_huge_zero_page_pmd: one flush of the 2 MiB
// entry) and the PTE fault copies one page; no THP is allocated.
TEST_F(ThpFault, HugeZeroPageWriteBefore613SplitsAndCopiesOnePage) {
  profile.huge_zero_wp_thp.set(false);
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a + 0x5000, false), FaultResult::kOk);
  ASSERT_TRUE(codec().huge(pmd(mm, a)));
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 0x5000, true), FaultResult::kOk);
  EXPECT_FALSE(codec().huge(pmd(mm, a)));
  EXPECT_EQ(vmstat().thp_fault_alloc.value(), 0u);
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  Folio f = folio_at(mm, a + 0x5000);
  EXPECT_EQ(f.order(), 0u);
  EXPECT_FALSE(f.test_zero());
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  EXPECT_EQ(codec().pfn(pte(mm, a)), kernel->zero_pfn()) << "the other 511 PTEs map the zero page";
}

// use_zero_page off: a read fault allocates a real THP.
TEST_F(ThpFault, ReadFaultWithoutHugeZeroPageAllocatesATHP) {
  profile.thp.use_zero_page.set(false);
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, false), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a).order(), kPmdOrder);
  EXPECT_EQ(vmstat().thp_zero_page_alloc.value(), 0u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 512);
}

// T25 — zap_huge_pmd(), tlb_get_unmap_shift(), x86 tlb_flush(): munmap of one
// PMD-mapped THP: 1 folio_remove_rmap_pmd, the deposited table freed directly,
// cleared_pmds only → stride 2 MiB → 1 INVLPG; the folio freed (1 reference).
TEST_F(ThpFault, T25_MunmapOfAPmdThp) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + kPmdSize, true), FaultResult::kOk);  // the PMD table stays
  Folio f = folio_at(mm, a);
  const Pfn head = f.pfn();
  const int64_t tables = mm.nr_pgtables();
  const uint64_t calls = rmap_calls();
  const uint64_t free0 = pm->nr_free_pages();
  const uint64_t items = ctx[0].get(KOp::kGatherEntry);
  arch->clear_events();
  munmap(mm, a, kPmdSize);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(ctx[0].get(KOp::kGatherEntry) - items, 1u) << "one gather item for the PMD";
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 512);
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 512);
  EXPECT_EQ(mm.rss(kMmAnonPages), 512);
  EXPECT_EQ(tables - mm.nr_pgtables(), 1) << "nr_ptes −1";
  EXPECT_EQ(pm->nr_free_pages() - free0, 513u) << "the THP and its deposited table";
  EXPECT_TRUE(pm->buddy().is_free(head));
  EXPECT_EQ(mthp(kPmdOrder).nr_anon.value(), 1);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 1u);
  EXPECT_EQ(kernel->deferred_split().length(), 1u) << "the other THP";
  // The deposited table is freed before the flush, the folio after it.
  bool flushed = false;
  for (auto& e : arch->events()) {
    if (e.kind == Kind::kLocalPartial) flushed = true;
    if (e.kind == Kind::kFramesFreed && e.pfn == head.value()) {
      EXPECT_TRUE(flushed);
    }
  }
}

// Zap of a huge zero PMD: only the deposited table goes; exit returns everything
// but the huge zero folio itself.
TEST_F(ThpFault, ExitFreesThpsZeroPmdsAndDeposits) {
  build_thp();
  Mm& mm = process({0, 1});
  const uint64_t free0 = pm->nr_free_pages();
  const VirtAddr a = map_anon(mm, 4 * kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + kPmdSize, false), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 2 * kPmdSize, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 3 * kPmdSize + 0x3000, false), FaultResult::kOk);
  kernel->exit_mmap(ctx[0], mm);
  check();
  EXPECT_EQ(mm.nr_pgtables(), 0);
  EXPECT_EQ(free0 - pm->nr_free_pages(), 512u) << "only the huge zero folio stays";
  EXPECT_EQ(vmstat().nr_anon_thps.value(), 0);
  EXPECT_EQ(kernel->deferred_split().length(), 0u);
}


// do_huge_pmd_wp_page(): an exclusive THP behind a write-protected PMD is reused in
// place (no new folio, no rmap call, no flush on x86).
TEST_F(ThpFault, WriteToExclusiveWriteProtectedPmdReuses) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ExecContext scratch;
  uint64_t* p = kernel->page_tables().walk(scratch, mm, a, 2, false);
  *p = codec().wrprotect(*p);  // as after mprotect(PROT_READ) + mprotect(PROT_WRITE)
  const uint64_t calls = rmap_calls();
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 0x7000, true), FaultResult::kOk);
  EXPECT_TRUE(codec().write(pmd(mm, a)));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  EXPECT_EQ(vmstat().cow_reuse.value(), 1u);
}

// do_huge_pmd_wp_page(): not PageAnonExclusive but the only reference (the other
// mm exited): folio_move_anon_rmap, exclusive again, reuse. With another reference
// (here a GUP-like extra reference) the PMD is split and one PTE COWed.
TEST_F(ThpFault, NonExclusivePmdThpReusedOnlyWithoutOtherReferences) {
  build_thp();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  Folio f = folio_at(mm, a);
  ExecContext scratch;
  uint64_t* p = kernel->page_tables().walk(scratch, mm, a, 2, false);
  AnonVma* own = mm.find_vma(a)->anon_vma();
  AnonVma child_av(own);  // the folio points at another anon_vma of the same tree
  f.head().mapping = reinterpret_cast<uint64_t>(&child_av);
  f.head().clear(kPgAnonExclusive);
  *p = codec().wrprotect(*p);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_EQ(f.head().mapping, reinterpret_cast<uint64_t>(own)) << "folio_move_anon_rmap";
  EXPECT_TRUE(codec().write(pmd(mm, a)));
  // Shared: a second reference and no exclusivity.
  f.head().clear(kPgAnonExclusive);
  *p = codec().wrprotect(*p);
  f.ref_add(1);
  ASSERT_EQ(kernel->handle_mm_fault(ctx[0], mm, a, kFaultWrite), FaultResult::kOk);
  EXPECT_FALSE(codec().huge(pmd(mm, a))) << "__split_huge_pmd on the fallback";
  EXPECT_EQ(vmstat().thp_split_pmd.value(), 1u);
  EXPECT_EQ(vmstat().cow_copy.value(), 1u) << "page 0 copied at PTE level";
  EXPECT_NE(folio_at(mm, a).pfn(), f.pfn());
  f.ref_add(-1);
  check();
  kernel->exit_mmap(ctx[0], mm);
  check();
}

}  // namespace
}  // namespace tlbsim::mm::testing

// Anonymous faults with mTHP order choice (mm/memory.c do_anonymous_page,
// alloc_anon_folio; include/linux/huge_mm.h thp_vma_allowable_orders), the zap of
// what they map, and reference §11 oracles T01–T06, T14, T15.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "mm/deferred_split.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class AnonFault : public FaultFixture {};

// T01 — alloc_anon_folio(), do_anonymous_page(), folio_add_new_anon_rmap(),
// folio_set_large_mapcount(): hugepages-64kB = always, a write at A+0x3000 with the
// whole [A, A+64K) none maps one order-4 folio with 16 PTEs and one rmap call.
TEST_F(AnonFault, T01_WriteFaultMapsA64KFolioWithOneRmapCall) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, 2 * kPmdSize);
  arch->clear_events();
  const uint64_t zero0 = ctx[0].get(KOp::kPageZero), rcalls0 = ctx[0].get(KOp::kRmapCall);
  const uint64_t tables_alloc0 = ctx[0].get(KOp::kPtAlloc);
  ASSERT_EQ(fault(mm, a + 0x3000, true), FaultResult::kOk);
  Folio f = folio_at(mm, a + 0x3000);
  ASSERT_TRUE(f);
  EXPECT_EQ(f.order(), 4u);
  for (int i = 0; i < 16; ++i) {
    const uint64_t e = pte(mm, a + i * kPageSize);
    EXPECT_EQ(codec().pfn(e), f.pfn() + i) << i;
    EXPECT_TRUE(codec().write(e) && codec().dirty(e)) << i;
    EXPECT_EQ(f.page(i).mapcount, 1) << i;
    EXPECT_TRUE(f.page(i).test(kPgAnonExclusive)) << i;
  }
  EXPECT_EQ(pte(mm, a + 16 * kPageSize), 0u);
  EXPECT_EQ(f.ref_count(), 16);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.entire_mapcount(), 0);
  EXPECT_EQ(f.nr_pages_mapped(), 16);
  EXPECT_EQ(f.lf().mm_id[0], mm.mm_id());
  EXPECT_EQ(f.lf().mm_id_mapcount[0], 16);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(rmap_calls(), 1u);
  EXPECT_EQ(ctx[0].get(KOp::kRmapCall) - rcalls0, 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageZero) - zero0 - (ctx[0].get(KOp::kPtAlloc) - tables_alloc0), 16u)
      << "folio_zero_user: every 4 KiB page (besides the new page tables)";
  EXPECT_EQ(mm.rss(kMmAnonPages), 16);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 16);
  EXPECT_EQ(mthp(4).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(4).nr_anon.value(), 1);
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 0u);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  // A second write inside the folio is an access-flag fault, not a new folio.
  ASSERT_EQ(fault(mm, a + 0x5000, true), FaultResult::kOk);
  EXPECT_EQ(mthp(4).anon_fault_alloc.value(), 1u);
}

// T02 — alloc_anon_folio(): the first loop drops orders whose window holds a
// non-none PTE without counting anon_fault_fallback; only 64 kB enabled → order 0.
TEST_F(AnonFault, T02_PresentPteInTheWindowFallsBackSilently) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a + 0x8000, false), FaultResult::kOk);  // zero-page PTE at A+0x8000
  ASSERT_EQ(fault(mm, a + 0x3000, true), FaultResult::kOk);
  Folio f = folio_at(mm, a + 0x3000);
  EXPECT_EQ(f.order(), 0u);
  EXPECT_EQ(pte(mm, a + 0x2000), 0u) << "only the faulting page is mapped";
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 0u);
  EXPECT_EQ(mthp(4).anon_fault_alloc.value(), 0u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
}

// T02 with 16 kB enabled as well: the highest order whose window is all none wins.
TEST_F(AnonFault, T02_ASmallerEnabledOrderWhoseWindowIsNoneIsUsed) {
  enable_thp_sizes({2, 4});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a + 0x8000, false), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 0x3000, true), FaultResult::kOk);
  Folio f = folio_at(mm, a + 0x3000);
  EXPECT_EQ(f.order(), 2u);
  EXPECT_EQ(folio_at(mm, a).pfn(), f.pfn()) << "16 KiB window [A, A+16K)";
  EXPECT_EQ(mthp(2).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 0u);
}

// T03 — alloc_anon_folio(), mod_mthp_stat(): an order-4 allocation failure counts
// anon_fault_fallback[64kB] and tries the next enabled order; order 0 counts nothing.
TEST_F(AnonFault, T03_AllocationFailureFallsBackOrderByOrder) {
  enable_thp_sizes({3, 4});
  build({.cpus = 2, .memory = 16ull << 20});
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a + 0x80000, true), FaultResult::kOk);  // tables + anon_vma exist
  // Exhaust memory with order-0 folios, then give back one aligned order-3 block
  // whose order-4 buddy half stays allocated, and one isolated frame.
  std::vector<Pfn> held;
  while (auto p = pm->alloc_folio(0)) held.push_back(*p);
  auto give_back = [&](Pfn p) {
    Folio(*pm, p).put_refs(1);
    pm->free_folio(p, "test");
    std::erase(held, p);
  };
  std::sort(held.begin(), held.end());
  Pfn block;
  for (size_t i = 0; i + 16 <= held.size(); ++i)
    if (held[i].value() % 16 == 0 && held[i + 15] == held[i] + 15) {
      block = held[i];
      break;
    }
  ASSERT_NE(block, Pfn());
  for (int i = 0; i < 8; ++i) give_back(block + i);
  ASSERT_EQ(pm->buddy().nr_free(3), 1u);
  ASSERT_EQ(pm->buddy().largest_free_order(), 3);
  ASSERT_EQ(fault(mm, a + 0x3000, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a + 0x3000).order(), 3u);
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 1u);
  EXPECT_EQ(mthp(3).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(3).anon_fault_fallback.value(), 0u);
  // Only a lone frame left: both enabled orders fail, order 0 is used.
  give_back(held[held.size() / 2]);
  ASSERT_EQ(fault(mm, a + 0x13000, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a + 0x13000).order(), 0u);
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 2u);
  EXPECT_EQ(mthp(3).anon_fault_fallback.value(), 1u);
  EXPECT_EQ(mthp(4).anon_fault_fallback_charge.value(), 0u);
  // Nothing left at all, and nothing reclaimable (the folios are taken off the LRU,
  // as if unevictable): direct reclaim frees nothing, VM_FAULT_OOM.
  while (kernel->lru().length()) kernel->lru().del(kernel->lru().tail());
  EXPECT_EQ(fault(mm, a + 0x23000, true), FaultResult::kOom);
  EXPECT_EQ(vmstat().oom.value(), 1u);
  for (Pfn p : std::vector<Pfn>(held)) give_back(p);
}

// T04 — do_anonymous_page(), do_wp_page(), wp_page_copy(): a read maps the zero
// page (no rmap, refcount, rss or flush); the later write copies into an order-0
// folio even with mTHP enabled, with one ptep_clear_flush.
// mm_account_fault() (mm/memory.c): PGFAULT counts completed faults; a write to a
// read-only VMA is refused (access_error / VM_FAULT_SIGSEGV) and is not counted.
TEST_F(AnonFault, PgfaultCountsCompletedFaultsOnly) {
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().pgfault.value(), 1u);
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], mm, a, kPmdSize, true, false, false), 0);
  EXPECT_EQ(fault(mm, a + kPageSize, true), FaultResult::kSegv);
  EXPECT_EQ(vmstat().pgfault.value(), 1u) << "a refused access is no fault Linux counts";
  ASSERT_EQ(fault(mm, a + kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(vmstat().pgfault.value(), 2u);
}

TEST_F(AnonFault, T04_ReadMapsZeroPageThenWriteCopiesOnePage) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  arch->clear_events();
  ASSERT_EQ(fault(mm, a, false), FaultResult::kOk);
  EXPECT_EQ(codec().pfn(pte(mm, a)), kernel->zero_pfn());
  EXPECT_FALSE(codec().write(pte(mm, a)));
  EXPECT_EQ(pte(mm, a + kPageSize), 0u) << "mTHP is never used for reads";
  EXPECT_EQ(rmap_calls(), 0u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 0);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  const uint64_t zero0 = ctx[0].get(KOp::kPageZero), copy0 = ctx[0].get(KOp::kPageCopy);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  Folio f = folio_at(mm, a);
  EXPECT_EQ(f.order(), 0u);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_TRUE(codec().write(pte(mm, a)));
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  EXPECT_EQ(rmap_calls(), 1u) << "1 folio_add_new_anon_rmap, 0 removes";
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageZero) - zero0, 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageCopy) - copy0, 0u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  EXPECT_EQ(events_where(Kind::kLocalPartial, FlushCause::kCow), 1u);
  EXPECT_EQ(mthp(4).anon_fault_alloc.value(), 0u);
}

// T05 — zap_present_ptes(), folio_pte_batch(), __tlb_remove_folio_pages(), x86
// tlb_flush(): munmap(A, 64K) of F on the only CPU: one rmap call for 16 PTEs, one
// flush of 16 INVLPGs, F freed as one folio.
TEST_F(AnonFault, T05_MunmapOf64KFolioIsOneBatch) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 0x100000, true), FaultResult::kOk);  // keeps the PTE table
  Folio f = folio_at(mm, a);
  const Pfn head = f.pfn();
  const uint64_t calls = rmap_calls();
  arch->clear_events();
  munmap(mm, a, 16 * kPageSize);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 16u);
  uint64_t freed = 0;
  for (auto& e : arch->events())
    if (e.kind == Kind::kFramesFreed) {
      EXPECT_EQ(e.pfn, head.value());
      freed += e.count;
    }
  EXPECT_EQ(freed, 16u);
  EXPECT_TRUE(pm->buddy().is_free(head));
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 16) << "the other 64K folio";
  EXPECT_EQ(mm.rss(kMmAnonPages), 16);
  EXPECT_EQ(mthp(4).nr_anon.value(), 1);
  EXPECT_EQ(kernel->deferred_split().length(), 0u);
}

// T06 — __folio_remove_rmap(), deferred_split_folio(): unmapping the 6th page of F
// (munmap here; MADV_DONTNEED takes the same zap path) leaves it partially mapped.
TEST_F(AnonFault, T06_UnmapOfOnePageQueuesPartiallyMappedFolio) {
  for (bool npm : {false, true}) {
    enable_thp_sizes({4});
    profile.no_page_mapcount.set(npm);
    build();
    Mm& mm = process({0, 1});
    const VirtAddr a = map_anon(mm, kPmdSize);
    ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
    Folio f = folio_at(mm, a);
    const uint64_t calls = rmap_calls();
    arch->clear_events();
    munmap(mm, a + 5 * kPageSize, kPageSize);
    EXPECT_EQ(rmap_calls() - calls, 1u);
    EXPECT_EQ(f.page(5).mapcount, 0);
    if (!npm) {
      EXPECT_EQ(f.nr_pages_mapped(), 15);
    }
    EXPECT_EQ(vmstat().nr_anon_mapped.value(), npm ? 16 : 15);
    EXPECT_TRUE(f.lf().partially_mapped);
    EXPECT_EQ(mthp(4).split_deferred.value(), 1u);
    EXPECT_EQ(mthp(4).nr_anon_partially_mapped.value(), 1);
    EXPECT_EQ(kernel->deferred_split().length(), 1u);
    EXPECT_EQ(vmstat().thp_deferred_split_page.value(), 0u);
    EXPECT_EQ(f.large_mapcount(), 15);
    EXPECT_EQ(f.ref_count(), 15);
    EXPECT_EQ(mm.rss(kMmAnonPages), 15);
    EXPECT_EQ(count(Kind::kIpi), 1u);
    EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_one.value(), 1u);
  }
}

// T14 — get_flush_tlb_info() ceiling: 40 order-0 pages on CPU0+CPU1 → 40 rmap
// calls, one full flush on each CPU, 40 folios freed.
TEST_F(AnonFault, T14_MunmapOf40PagesIsOneFullFlushAndOneIpi) {
  build();
  Mm& mm = process({0, 1});
  const VirtAddr a = map_anon(mm, 64 * kPageSize);
  for (int i = 0; i < 41; ++i) ASSERT_EQ(fault(mm, a + i * kPageSize, true), FaultResult::kOk);
  const uint64_t calls = rmap_calls(), pgfree0 = vmstat().pgfree.value();
  arch->clear_events();
  munmap(mm, a, 40 * kPageSize);
  EXPECT_EQ(rmap_calls() - calls, 40u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_EQ(count(Kind::kLocalFull), 2u);
  EXPECT_EQ(vmstat().pgfree.value() - pgfree0, 40u) << "40 folios (the gather's batch page aside)";
}

// T15 — native_flush_tlb_multi(): as T14 with CPU1 lazy: no IPI.
TEST_F(AnonFault, T15_LazyCpuGetsNoIpiWithoutFreedTables) {
  build();
  Mm& mm = process({0, 1});
  const VirtAddr a = map_anon(mm, 64 * kPageSize);
  for (int i = 0; i < 41; ++i) ASSERT_EQ(fault(mm, a + i * kPageSize, true), FaultResult::kOk);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  munmap(mm, a, 40 * kPageSize);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  EXPECT_EQ(count(Kind::kLocalFull), 1u);
}

// include/linux/huge_mm.h:thp_vma_allowable_orders(): per-size always / inherit /
// madvise / never against the top-level mode and VM_HUGEPAGE / VM_NOHUGEPAGE.
TEST_F(AnonFault, AllowableOrdersFollowSysfsAndVmaFlags) {
  struct Case {
    const char* top;
    const char* size;  // hugepages-64kB
    uint64_t vm;
    bool allowed;
  };
  const Case cases[] = {
      {"never", "always", 0, true},        {"never", "always", kVmNoHugePage, false},
      {"never", "inherit", 0, false},      {"always", "inherit", 0, true},
      {"madvise", "inherit", 0, false},    {"madvise", "inherit", kVmHugePage, true},
      {"never", "inherit", kVmHugePage, false},
      {"never", "madvise", 0, false},      {"never", "madvise", kVmHugePage, true},
      {"always", "never", kVmHugePage, false},
      {"always", "always", kVmHugePage | kVmNoHugePage, false},
  };
  for (const Case& c : cases) {
    enable_thp_sizes({});
    profile.thp.enabled.set(c.top);
    per_size(4).set(c.size);
    build();
    Mm& mm = process({0});
    const VirtAddr a = map_anon(mm, kPmdSize, kPmdSize, c.vm);
    const Vma& vma = *mm.find_vma(a);
    const std::string what = std::string(c.top) + "/" + c.size + "/" + std::to_string(c.vm);
    EXPECT_EQ(kernel->thp_vma_allowable_orders(vma, vma.flags(), 1u << 4), c.allowed ? 1u << 4 : 0u)
        << what;
    ASSERT_EQ(fault(mm, a, true), FaultResult::kOk);
    EXPECT_EQ(folio_at(mm, a).order(), c.allowed ? 4u : 0u) << what;
  }
}

// alloc_anon_folio(): the highest enabled order whose aligned window fits the VMA;
// orders 0 and 1 are never THP (THP_ORDERS_ALL_ANON).
TEST_F(AnonFault, HighestSuitableOrderIsChosen) {
  enable_thp_sizes({2, 4, 6});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  ASSERT_EQ(fault(mm, a + 0x7000, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a).order(), 6u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 64);
  // A 48 KiB VMA at a 64 KiB boundary: 256K and 64K windows leave it; 16K fits.
  const VirtAddr b = map_anon(mm, 12 * kPageSize);
  ASSERT_EQ(fault(mm, b + 0x9000, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, b + 0x9000).order(), 2u);
  EXPECT_EQ(folio_at(mm, b + 0x8000).pfn(), folio_at(mm, b + 0x9000).pfn());
  EXPECT_EQ(mthp(6).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(2).anon_fault_alloc.value(), 1u);
  EXPECT_EQ(mthp(4).anon_fault_fallback.value(), 0u) << "unsuitable orders count nothing";
}

// A VMA that is not 16 KiB aligned at its start: the window at the start leaves it.
TEST_F(AnonFault, WindowOutsideTheVmaIsNeverUsed) {
  enable_thp_sizes({2});
  build();
  Mm& mm = process({0});
  const VirtAddr a = map_anon(mm, kPmdSize);
  munmap(mm, a, kPageSize);  // the VMA now starts at A + 4K
  ASSERT_EQ(fault(mm, a + kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a + kPageSize).order(), 0u);
  ASSERT_EQ(fault(mm, a + 4 * kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(mm, a + 4 * kPageSize).order(), 2u);
}

// MAP_POPULATE (populate_vma_page_range): one fault per folio; pages already mapped
// are skipped as GUP's follow_page_mask() finds them.
TEST_F(AnonFault, PopulateFaultsOncePerFolio) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  MmapArgs args;
  args.len = 256 * kPageSize;
  args.align = kPmdSize;
  args.populate = true;
  const uint64_t faults0 = vmstat().pgfault.value();
  ASSERT_GT(kernel->sys_mmap(ctx[0], mm, args), 0);
  check();
  EXPECT_EQ(vmstat().pgfault.value() - faults0, 16u);
  EXPECT_EQ(mthp(4).anon_fault_alloc.value(), 16u);
  EXPECT_EQ(mm.rss(kMmAnonPages), 256);
}

// exit_mmap() of mTHPs of several sizes returns every frame and every counter.
TEST_F(AnonFault, ExitFreesEveryMthp) {
  enable_thp_sizes({2, 3, 4, 5});
  build();
  Mm& mm = process({0, 1});
  const uint64_t free0 = pm->nr_free_pages();
  const VirtAddr a = map_anon(mm, kPmdSize);
  for (uint64_t off = 0; off < kPmdSize; off += 0x5000) fault(mm, a + off, true);
  kernel->exit_mmap(ctx[0], mm);
  check();
  EXPECT_EQ(pm->nr_free_pages(), free0);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 0);
  for (unsigned o = 2; o <= 5; ++o) EXPECT_EQ(mthp(o).nr_anon.value(), 0) << o;
  EXPECT_EQ(kernel->deferred_split().length(), 0u);
}

}  // namespace
}  // namespace tlbsim::mm::testing

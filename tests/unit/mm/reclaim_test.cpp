// Reclaim with the batched unmap flush, swap entries and page migration (reference
// §6, §3.6, §4.7): oracles T22, T23 and T24 of §11 (should_defer_flush,
// set_tlb_ubc_flush_pending, arch_tlbbatch_add_pending, arch_tlbbatch_flush,
// flush_tlb_batched_pending), do_swap_page, zap_nonpresent_ptes,
// copy_nonpresent_pte, migrate_pages_batch.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mm/instant_arch_arm64.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class Reclaim : public FaultFixture {
 protected:
  static constexpr unsigned kPages = 100;
  Mm* mm = nullptr;
  VirtAddr a;
  /// T22 set-up: x86, 4 CPUs, mm A on CPU0 and CPU1 with kPages order-0 anon pages
  /// written (dirty PTEs).
  void setup(const KernelFixtureConfig& c = {4, 256ull << 20}) {
    build(c);
    mm = &process({0, 1});
    a = map_anon(*mm, kPages * kPageSize);
    populate(*mm, a, kPages * kPageSize);
  }
  /// The pages swapped out once (dirty: written) and read back: clean PTEs of
  /// folios still in the swap cache ("clean, swap-cache-backed", T22).
  void make_clean_swap_cache_backed() {
    ASSERT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
    check();
    for (unsigned i = 0; i < kPages; ++i) ASSERT_EQ(fault(*mm, a + i * kPageSize, false), FaultResult::kOk);
    ASSERT_TRUE(folio_at(*mm, a).head().test(kPgSwapCache));
    ASSERT_FALSE(codec().dirty(pte(*mm, a)));
  }
  uint64_t swap_stat_out() { return kernel->swap().stats().pswpout.value(); }
};

// T22: kswapd on CPU3 reclaims 100 clean swap-cache-backed order-0 pages of A (on
// CPU0 and CPU1): every unmap is deferred, no dirty flush, one try_to_unmap_flush →
// flush_tlb_multi({0,1}, full) = 2 IPIs, each a full flush.
TEST_F(Reclaim, T22_OneBatchedFlushForAHundredCleanPages) {
  setup();
  make_clean_swap_cache_backed();
  const uint64_t out = swap_stat_out();
  const uint32_t pending = mm->tlb_flush_batched & 0x7fff;
  const uint64_t remote = arch->vmstats().nr_tlb_remote_flush.value();
  arch->clear_events();
  EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
  check();
  EXPECT_EQ(count(Kind::kIpi), 2u) << "CPU0 and CPU1, once for the whole batch";
  EXPECT_EQ(count(Kind::kLocalPartial), 0u) << "mm = NULL: full flushes only";
  EXPECT_EQ(arch->vmstats().nr_tlb_remote_flush.value() - remote, 1u);
  EXPECT_EQ(kernel->flush_stats().tlbbatch_flushes.value(), 1u + kPages)
      << "the dirty first pass flushed per page";
  EXPECT_EQ(swap_stat_out(), out) << "clean swap-cache folios are not written again";
  EXPECT_EQ(mm->rss(kMmAnonPages), 0);
  EXPECT_EQ(mm->rss(kMmSwapEnts), int64_t{kPages});
  EXPECT_EQ(mm->tlb_flush_batched & 0x7fff, pending + kPages);
  EXPECT_TRUE(codec().is_swap_entry(pte(*mm, a + 7 * kPageSize)));
  EXPECT_TRUE(codec().swp_exclusive(pte(*mm, a + 7 * kPageSize)));
  EXPECT_EQ(kernel->lru().length(), 0u);
}

// T22, unbatched (batched_reclaim_flush off): one flush_tlb_range per page, 200 IPIs.
TEST_F(Reclaim, WithoutBatchingOneFlushPerPage) {
  profile.batched_reclaim_flush.set(false);
  setup();
  make_clean_swap_cache_backed();
  arch->clear_events();
  EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
  check();
  EXPECT_EQ(count(Kind::kIpi), 2u * kPages);
  EXPECT_EQ(count(Kind::kFlushRequest), kPages);
  EXPECT_EQ(kernel->flush_stats().tlbbatch_pending.value(), 0u);
}

// Dirty pages: try_to_unmap_flush_dirty() before each pageout, so each is flushed
// before its write (shrink_folio_list).
TEST_F(Reclaim, DirtyPagesAreFlushedBeforeTheirWrite) {
  setup();
  arch->clear_events();
  EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
  check();
  EXPECT_EQ(swap_stat_out(), kPages);
  EXPECT_EQ(count(Kind::kIpi), 2u * kPages);
  EXPECT_EQ(kernel->flush_stats().tlbbatch_flushes.value(), kPages);
  EXPECT_EQ(kernel->swap().stats().slots_used.value(), int64_t{kPages});
}

// T24 after T22: the first munmap of A pays one flush_tlb_mm (pending ≠ flushed)
// plus its own 1-page flush (2 IPIs); the next munmap only its own (1 IPI).
TEST_F(Reclaim, T24_FirstMunmapAfterReclaimFlushesTheMm) {
  setup();
  const VirtAddr b = map_anon(*mm, 4 * kPageSize);
  populate(*mm, b, 4 * kPageSize);
  ASSERT_EQ(kernel->reclaim(ctx[3], kPages), kPages);  // the oldest: A's pages
  arch->clear_events();
  munmap(*mm, b, kPageSize);
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(count(Kind::kIpi), 2u);
  arch->clear_events();
  munmap(*mm, b + kPageSize, kPageSize);
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
}

// pte_accessible skip (Huang Ying, "mm,unmap: avoid flushing TLB in batch if PTE is
// inaccessible", 6.4): try_to_unmap_one clears every present PTE, but
// set_tlb_ubc_flush_pending() leaves out the PROT_NONE entries no TLB can hold
// (mprotect flushed them; no gather is pending). 60 of the 100 clean pages are
// PROT_NONE: with the skip 60 are skipped and 40 batched; without it all 100 are
// batched. Either way the batch flushes once (2 IPIs).
TEST_F(Reclaim, PteAccessibleSkipLeavesProtNoneEntriesOutOfTheBatch) {
  for (const bool skip : {true, false}) {
    SCOPED_TRACE(skip ? "pte_accessible_skip" : "no skip");
    profile.pte_accessible_skip.set(skip);
    setup();
    make_clean_swap_cache_backed();
    ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 60 * kPageSize, false, false, false), 0);
    check();
    const uint64_t e = pte(*mm, a + 59 * kPageSize);
    EXPECT_TRUE(codec().protnone(e) && codec().present(e) && !codec().valid(e));
    EXPECT_TRUE(codec().valid(pte(*mm, a + 60 * kPageSize)));
    EXPECT_EQ(mm->tlb_flush_pending, 0);
    const uint64_t skipped0 = kernel->flush_stats().tlbbatch_skipped.value();
    const uint64_t pending0 = kernel->flush_stats().tlbbatch_pending.value();
    arch->clear_events();
    EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages) << "PROT_NONE pages are reclaimed too";
    check();
    EXPECT_EQ(kernel->flush_stats().tlbbatch_skipped.value() - skipped0, skip ? 60u : 0u);
    EXPECT_EQ(kernel->flush_stats().tlbbatch_pending.value() - pending0, skip ? 40u : 100u);
    EXPECT_EQ(count(Kind::kIpi), 2u);
    EXPECT_TRUE(codec().is_swap_entry(pte(*mm, a)));
  }
}

// All 100 pages PROT_NONE: with the skip the reclaim needs no flush at all; without
// it the batch still flushes CPU0 and CPU1 (2 IPIs) for entries no TLB held.
TEST_F(Reclaim, PteAccessibleSkipAllProtNoneNeedsNoFlush) {
  for (const bool skip : {true, false}) {
    SCOPED_TRACE(skip ? "pte_accessible_skip" : "no skip");
    profile.pte_accessible_skip.set(skip);
    setup();
    make_clean_swap_cache_backed();
    ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, kPages * kPageSize, false, false, false), 0);
    const uint64_t flushes0 = kernel->flush_stats().tlbbatch_flushes.value();
    arch->clear_events();
    EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
    check();
    EXPECT_EQ(count(Kind::kIpi), skip ? 0u : 2u);
    EXPECT_EQ(kernel->flush_stats().tlbbatch_flushes.value() - flushes0, skip ? 0u : 1u);
  }
}

// The mprotect(PROT_NONE) itself: x86 flushes every page that lost _PAGE_PRESENT
// (pte_needs_flush), once for the call; back to PROT_READ needs no flush (the
// old entries were not present), and the pages are still the same folios.
TEST_F(Reclaim, MprotectProtNoneFlushesAndBackDoesNot) {
  setup();
  const Pfn pfn = codec().pfn(pte(*mm, a + 3 * kPageSize));
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 8 * kPageSize, false, false, false), 0);
  check();
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u) << "CPU1 runs the mm";
  EXPECT_EQ(codec().pfn(pte(*mm, a + 3 * kPageSize)), pfn);
  EXPECT_FALSE(codec().write(pte(*mm, a + 3 * kPageSize)));
  EXPECT_TRUE(codec().dirty(pte(*mm, a + 3 * kPageSize))) << "pte_modify keeps _PAGE_DIRTY";
  EXPECT_EQ(fault(*mm, a, false), FaultResult::kSegv) << "access_error(): no VM_READ";
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 8 * kPageSize, true, false, false), 0);
  check();
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  EXPECT_TRUE(codec().valid(pte(*mm, a + 3 * kPageSize)));
  EXPECT_FALSE(codec().write(pte(*mm, a + 3 * kPageSize)));
  EXPECT_EQ(fault(*mm, a, false), FaultResult::kOk);
  // RW again: exclusive anon pages become writable without a fault
  // (MM_CP_TRY_CHANGE_WRITABLE); a changed _PAGE_RW is in pte_flags_need_flush()'s
  // flush_on_change, so this one flushes.
  arch->clear_events();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 8 * kPageSize, true, true, false), 0);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_TRUE(codec().write(pte(*mm, a + 3 * kPageSize)));
  EXPECT_EQ(mm->vmas().size(), 1u) << "the three protections merged back into one VMA";
}

// do_swap_page: a write fault on an exclusive swap entry maps the page writable and
// exclusive, restores rss and mapcount, and frees the slot (should_try_to_free_swap).
TEST_F(Reclaim, SwapInRestoresMapcountRssAndFreesTheSlot) {
  setup();
  ASSERT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
  const uint64_t free0 = pm->nr_free_pages();
  ASSERT_EQ(fault(*mm, a + 5 * kPageSize, true), FaultResult::kOk);
  Folio f = folio_at(*mm, a + 5 * kPageSize);
  EXPECT_EQ(f.mapcount(), 1);
  EXPECT_EQ(f.ref_count(), 1);
  EXPECT_TRUE(f.page(0).test(kPgAnonExclusive));
  EXPECT_FALSE(f.head().test(kPgSwapCache));
  EXPECT_TRUE(codec().write(pte(*mm, a + 5 * kPageSize)));
  EXPECT_EQ(mm->rss(kMmAnonPages), 1);
  EXPECT_EQ(mm->rss(kMmSwapEnts), int64_t{kPages} - 1);
  EXPECT_EQ(kernel->swap().stats().pswpin.value(), 1u);
  EXPECT_EQ(kernel->swap().stats().slots_used.value(), int64_t{kPages} - 1);
  EXPECT_EQ(free0 - pm->nr_free_pages(), 1u);
  // A read fault keeps the folio in the swap cache (exclusive: still writable).
  ASSERT_EQ(fault(*mm, a + 6 * kPageSize, false), FaultResult::kOk);
  EXPECT_TRUE(folio_at(*mm, a + 6 * kPageSize).head().test(kPgSwapCache));
  EXPECT_EQ(folio_at(*mm, a + 6 * kPageSize).ref_count(), 2);
  // munmap frees the swap entries and the swap-cache folio (zap_nonpresent_ptes,
  // free_pages_and_swap_cache).
  munmap(*mm, a, kPages * kPageSize);
  EXPECT_EQ(mm->rss(kMmSwapEnts), 0);
  EXPECT_EQ(kernel->swap().stats().slots_used.value(), 0);
}

// copy_nonpresent_pte: fork shares each slot (count 2), the parent's entries lose
// the exclusive marker; both processes fault the same swap-cache folio back in.
TEST_F(Reclaim, ForkOfSwappedOutMemorySharesTheSlots) {
  setup();
  ASSERT_EQ(kernel->reclaim(ctx[3], kPages), kPages);
  Mm& child = kernel->dup_mmap(ctx[0], *mm);
  check();
  const uint64_t e = pte(*mm, a);
  EXPECT_FALSE(codec().swp_exclusive(e));
  EXPECT_EQ(pte(child, a), e);
  EXPECT_EQ(kernel->swap().count(codec().swp_offset(e)), 2u);
  EXPECT_EQ(child.rss(kMmSwapEnts), int64_t{kPages});
  arch->switch_mm(ctx[2], child);
  ASSERT_EQ(fault(child, a, false, 2), FaultResult::kOk);
  Folio f = folio_at(child, a);
  EXPECT_FALSE(codec().write(pte(child, a))) << "not exclusive: read-only";
  ASSERT_EQ(fault(*mm, a, false), FaultResult::kOk);
  EXPECT_EQ(folio_at(*mm, a), f) << "the parent finds it in the swap cache";
  EXPECT_EQ(f.mapcount(), 2);
  EXPECT_EQ(kernel->swap().stats().swap_cache_hits.value(), 1u);
  // The child's write copies (shared folio).
  ASSERT_EQ(fault(child, a, true, 2), FaultResult::kOk);
  EXPECT_NE(folio_at(child, a), f);
  kernel->exit_mmap(ctx[2], child);
  check();
  kernel->exit_mmap(ctx[0], *mm);
  check();
  EXPECT_EQ(kernel->swap().stats().slots_used.value(), 0);
  EXPECT_EQ(vmstat().pgfree.value(), vmstat().pgalloc.value());
}

// MADV_FREE'd folios are discarded without swap; a redirtied one is kept.
TEST_F(Reclaim, LazyfreeFoliosAreDiscardedUnlessRedirtied) {
  setup();
  ASSERT_EQ(kernel->sys_madvise(ctx[0], *mm, a, kPages * kPageSize, Advice::kFree), 0);
  check();
  Folio f = folio_at(*mm, a);
  *kernel->page_tables().walk(ctx[0], *mm, a, 1, false) = codec().mkdirty(pte(*mm, a));  // a write
  EXPECT_EQ(kernel->reclaim(ctx[3], kPages), kPages - 1);
  check();
  EXPECT_EQ(vmstat().pglazyfreed.value(), kPages - 1);
  EXPECT_EQ(swap_stat_out(), 0u);
  EXPECT_EQ(folio_at(*mm, a), f);
  EXPECT_TRUE(f.head().test(kPgSwapBacked)) << "redirtied: swap-backed again";
  EXPECT_EQ(mm->rss(kMmAnonPages), 1);
  EXPECT_EQ(pte(*mm, a + kPageSize), 0u) << "discarded: none, not a swap entry";
}

// A large swap-backed folio is split before swap-out (no THP_SWAP).
TEST_F(Reclaim, LargeAnonFolioIsSplitBeforeSwapOut) {
  enable_thp_sizes({4});
  build({4, 256ull << 20});
  mm = &process({0, 1});
  a = map_anon(*mm, 64 << 10, 64 << 10);
  ASSERT_EQ(fault(*mm, a, true), FaultResult::kOk);
  ASSERT_EQ(folio_at(*mm, a).order(), 4u);
  EXPECT_EQ(kernel->reclaim(ctx[3], 16), 16u);
  check();
  EXPECT_EQ(mthp(4).split.value(), 1u);
  EXPECT_EQ(swap_stat_out(), 16u);
  EXPECT_EQ(mm->rss(kMmSwapEnts), 16);
}

// File folios: clean ones leave the page cache; a later fault reads the page back.
TEST_F(Reclaim, CleanFileFoliosLeaveThePageCacheAndRefault) {
  build({4, 256ull << 20});
  mm = &process({0, 1});
  const int64_t file = kernel->create_file(8, 0);
  a = map_file(*mm, file, 8 * kPageSize, /*shared=*/false, 0, /*write=*/false);
  ASSERT_EQ(fault(*mm, a, false), FaultResult::kOk);
  const uint64_t free0 = pm->nr_free_pages();
  EXPECT_EQ(kernel->reclaim(ctx[3], 8), 8u);
  check();
  EXPECT_EQ(pm->nr_free_pages() - free0, 8u);
  EXPECT_EQ(mm->rss(kMmFilePages), 0);
  EXPECT_EQ(kernel->page_cache().lookup(file, 3)->value(), 0u);
  ASSERT_EQ(fault(*mm, a + 3 * kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(vmstat().pgmajfault.value(), 1u);
  EXPECT_EQ(mm->rss(kMmFilePages), 1);
}

// MADV_PAGEOUT reclaims exactly the range's private folios; MADV_COLD moves them to
// the reclaim end of the LRU.
TEST_F(Reclaim, PageoutReclaimsTheRangeAndColdDeactivates) {
  setup();
  ASSERT_EQ(kernel->sys_madvise(ctx[0], *mm, a + 10 * kPageSize, 5 * kPageSize, Advice::kPageout), 0);
  check();
  EXPECT_EQ(swap_stat_out(), 5u);
  EXPECT_TRUE(codec().is_swap_entry(pte(*mm, a + 12 * kPageSize)));
  EXPECT_TRUE(codec().present(pte(*mm, a + 15 * kPageSize)));
  ASSERT_EQ(kernel->sys_madvise(ctx[0], *mm, a + 50 * kPageSize, kPageSize, Advice::kCold), 0);
  EXPECT_EQ(kernel->lru().tail(), folio_at(*mm, a + 50 * kPageSize).pfn());
  EXPECT_EQ(kernel->reclaim(ctx[3], 1), 1u);
  EXPECT_TRUE(codec().is_swap_entry(pte(*mm, a + 50 * kPageSize)));
  check();
}

// Direct reclaim: an allocation that fails reclaims a batch and retries (allocstall).
TEST_F(Reclaim, FailedAllocationEntersDirectReclaim) {
  build({2, 8ull << 20});
  mm = &process({0});
  const uint64_t pages = 4096;  // 16 MiB of anon memory on an 8 MiB machine
  a = map_anon(*mm, pages * kPageSize);
  for (uint64_t i = 0; i < pages; ++i)
    ASSERT_EQ(kernel->handle_mm_fault(ctx[0], *mm, a + i * kPageSize, kFaultWrite), FaultResult::kOk)
        << "page " << i;
  check();
  EXPECT_GT(vmstat().allocstall.value(), 0u);
  EXPECT_GT(mm->rss(kMmSwapEnts), 0);
  EXPECT_EQ(mm->rss(kMmSwapEnts) + mm->rss(kMmAnonPages), static_cast<int64_t>(pages));
}

// --- migration --------------------------------------------------------------------------

// migrate_pages_batch: order-0 folios are unmapped as one batch, one flush.
TEST_F(Reclaim, MoveOfOrder0FoliosUsesOneBatchedFlush) {
  setup();
  const Pfn old = pfn_at(*mm, a + 3 * kPageSize);
  arch->clear_events();
  EXPECT_EQ(kernel->move_pages(ctx[0], *mm, a, 10 * kPageSize), 10);
  check();
  EXPECT_EQ(vmstat().pgmigrate_success.value(), 10u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_NE(pfn_at(*mm, a + 3 * kPageSize), old);
  EXPECT_TRUE(codec().write(pte(*mm, a + 3 * kPageSize)));
  EXPECT_TRUE(folio_at(*mm, a + 3 * kPageSize).page(0).test(kPgAnonExclusive));
}

// PMD-sized folios fill a batch alone (NR_MAX_BATCHED_MIGRATION = 512): one flush per
// THP (here the PMD split's, the migration entries being written by the split).
TEST_F(Reclaim, MoveOfThpsFlushesPerFolio) {
  enable_thp_sizes({}, "always");
  per_size(kPmdOrder).set("inherit");
  build({4, 256ull << 20});
  mm = &process({0, 1});
  a = map_anon(*mm, 2 * kPmdSize);
  ASSERT_EQ(fault(*mm, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(*mm, a + kPmdSize, true), FaultResult::kOk);
  arch->clear_events();
  EXPECT_EQ(kernel->move_pages(ctx[0], *mm, a, 2 * kPmdSize), 2);
  check();
  EXPECT_EQ(vmstat().pgmigrate_success.value(), 1024u);
  EXPECT_EQ(count(Kind::kFlushRequest), 2u);
  EXPECT_EQ(folio_at(*mm, a + 5 * kPageSize).order(), kPmdOrder);
  EXPECT_EQ(mm->rss(kMmAnonPages), 1024);
}

// --- arm64 ----------------------------------------------------------------------------

class ReclaimArm64 : public ::testing::Test {
 protected:
  void build(bool contpte_64k = false, bool local_flush_on_write_fault = false) {
    if (contpte_64k) profile.thp.hugepages_64kB.set("always");
    stats = std::make_unique<StatGroup>("");
    pm = std::make_unique<PhysMem>(256ull << 20);
    Arm64ArchConfig cfg;
    cfg.nr_cpus = 4;
    cfg.phys = pm.get();
    cfg.local_flush_on_write_fault = local_flush_on_write_fault;
    arch = std::make_unique<InstantArm64Arch>(cfg, stats.get());
    pm->set_observer(arch.get());
    kernel = std::make_unique<Kernel>(profile, *pm, *arch, stats.get());
    for (unsigned i = 0; i < 4; ++i) ctx.emplace_back(i);
    mm = &kernel->mm_create(ctx[0]);
    arch->switch_mm(ctx[0], *mm);
    arch->switch_mm(ctx[1], *mm);
  }
  VirtAddr map(uint64_t len) {
    MmapArgs m;
    m.len = len;
    m.align = 64 << 10;
    return VirtAddr(static_cast<uint64_t>(kernel->sys_mmap(ctx[0], *mm, m)));
  }
  void fault(VirtAddr va, bool write) {
    ASSERT_EQ(kernel->handle_mm_fault(ctx[0], *mm, va, write ? static_cast<uint32_t>(kFaultWrite) : 0u),
              FaultResult::kOk);
    EXPECT_EQ(check_invariants(*kernel), "");
  }
  uint64_t* pte_of(VirtAddr va) { return kernel->page_tables().walk(ctx[0], *mm, va, 1, false); }

  KernelProfile profile;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<PhysMem> pm;
  std::unique_ptr<InstantArm64Arch> arch;
  std::unique_ptr<Kernel> kernel;
  std::vector<ExecContext> ctx;
  Mm* mm = nullptr;
};

// T23: the arm64 version of T22: 100 TLBI VALE1IS issued at unmap time, one DSB ISH
// in try_to_unmap_flush; no IPIs exist on arm64.
TEST_F(ReclaimArm64, T23_TlbiPerPageAndOneDsb) {
  build();
  const VirtAddr a = map(100 * kPageSize);
  for (unsigned i = 0; i < 100; ++i) fault(a + i * kPageSize, true);
  ASSERT_EQ(kernel->reclaim(ctx[3], 100), 100u);
  for (unsigned i = 0; i < 100; ++i) fault(a + i * kPageSize, false);
  arch->clear_events();
  EXPECT_EQ(kernel->reclaim(ctx[3], 100), 100u);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), 100u);
  EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kTlbi), 100u);
  EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kDsb), 1u);
  EXPECT_EQ(mm->rss(kMmSwapEnts), 100);
}

// try_to_unmap_one() without a deferred flush (batched_reclaim_flush off, as arm64
// before 6.5): before 6.15 each PTE is cleared with ptep_clear_flush() — TLBI VALE1IS
// (flush_tlb_page); from 6.15 (354dffd29575) the unmap flushes with flush_tlb_range()
// — TLBI VAE1IS, which arm64 issues as a non-last-level invalidation.
TEST_F(ReclaimArm64, UndeferredUnmapFlushIsPerPageBefore615AndARangeFrom615) {
  for (const bool batch : {false, true}) {
    profile.batched_reclaim_flush.set(false);
    profile.unmap_lazyfree_batch.set(batch);
    ctx.clear();
    kernel.reset();
    build();
    const VirtAddr a = map(8 * kPageSize);
    for (unsigned i = 0; i < 8; ++i) fault(a + i * kPageSize, true);
    arch->clear_events();
    EXPECT_EQ(kernel->reclaim(ctx[3], 8), 8u);
    EXPECT_EQ(check_invariants(*kernel), "");
    EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), batch ? 0u : 8u) << batch;
    EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVae1is), batch ? 8u : 0u) << batch;
    EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kDsb), 8u) << batch << ": one flush per page";
  }
}

// T24 on arm64: the first munmap after the batch finds its mm's batch pending and
// calls arch_flush_tlb_batched_pending(), which on arm64 (Linux 6.5+,
// arch/arm64/include/asm/tlbflush.h) is only dsb(ish): the TLBIs went out at
// arch_tlbbatch_add_pending(). So: 1 DSB from it, no TLBI ASIDE1IS, and the munmap's
// own 1-page flush (1 TLBI VALE1IS + its DSB).
TEST_F(ReclaimArm64, T24_BatchedPendingIsOnlyADsb) {
  build();
  const VirtAddr a = map(100 * kPageSize);
  const VirtAddr b = map(4 * kPageSize);
  for (unsigned i = 0; i < 100; ++i) fault(a + i * kPageSize, true);
  for (unsigned i = 0; i < 4; ++i) fault(b + i * kPageSize, true);
  ASSERT_EQ(kernel->reclaim(ctx[3], 100), 100u);  // the oldest: a's pages
  arch->clear_events();
  ASSERT_EQ(kernel->sys_munmap(ctx[0], *mm, b, kPageSize), 0);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kAside1is), 0u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), 1u);
  EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kDsb), 2u);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_munmap(ctx[0], *mm, b + kPageSize, kPageSize), 0);
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kDsb), 1u);
}

// From 6.16 ("arm64/mm: Close theoretical race where stale TLB entry remains valid")
// arch_flush_tlb_batched_pending() is flush_tlb_mm(): one TLBI ASIDE1IS.
TEST_F(ReclaimArm64, T24_BatchedPendingFlushesTheMmFrom616) {
  profile.arm64_batched_pending_flush_mm.set(true);
  build();
  const VirtAddr a = map(100 * kPageSize);
  const VirtAddr b = map(4 * kPageSize);
  for (unsigned i = 0; i < 100; ++i) fault(a + i * kPageSize, true);
  for (unsigned i = 0; i < 4; ++i) fault(b + i * kPageSize, true);
  ASSERT_EQ(kernel->reclaim(ctx[3], 100), 100u);
  arch->clear_events();
  ASSERT_EQ(kernel->sys_munmap(ctx[0], *mm, b, kPageSize), 0);
  EXPECT_EQ(kernel->flush_stats().batched_pending_flushes.value(), 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kAside1is), 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), 1u);
}

// T11 on arm64 (wp_page_reuse → ptep_set_access_flags): a write to one page of an
// exclusively owned 64 KiB contpte block unfolds the block (16 TLBIs) and flushes the
// stale read-only entry (1 broadcast VALE1IS); only that page becomes writable.
// Linux 6.19 (Huang Ying, "arm64, tlbflush: don't TLBI broadcast if page reused in
// write fault"): __ptep_set_access_flags() invalidates the stale read-only entry with
// a local TLBI VALE1 + DSB NSH. A small folio: 1 local TLBI, no broadcast, no DSB ISH;
// a contpte block keeps its broadcast unfold (16 VALE1IS + 1 DSB) and then the one
// local TLBI of the reused page.
TEST_F(ReclaimArm64, CowReuseFlushesLocallyFrom619) {
  for (const bool contpte : {false, true}) {
    ctx.clear();
    kernel.reset();
    build(contpte, /*local_flush_on_write_fault=*/true);
    const VirtAddr a = map(64 << 10);
    fault(a, true);
    Mm& child = kernel->dup_mmap(ctx[0], *mm);
    kernel->exit_mmap(ctx[2], child);
    kernel->mm_destroy(child);
    arch->clear_events();
    fault(a, true);
    EXPECT_EQ(kernel->vmstat().cow_reuse.value(), 1u) << contpte;
    EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1), 1u) << contpte;
    EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), contpte ? 16u : 0u) << contpte;
    EXPECT_EQ(arch->count(Arm64ArchEvent::Kind::kDsb), contpte ? 1u : 0u) << contpte;
    EXPECT_EQ(arch->vmstats().tlbi_local.value(), 1u) << contpte;
    EXPECT_TRUE(kernel->codec().write(*pte_of(a))) << contpte;
  }
}

TEST_F(ReclaimArm64, CowReuseUnfoldsTheBlockAndFlushesTheStaleEntry) {
  build(/*contpte_64k=*/true);
  const VirtAddr a = map(64 << 10);
  fault(a, true);
  ASSERT_TRUE(kernel->codec().cont(*pte_of(a)));
  Mm& child = kernel->dup_mmap(ctx[0], *mm);
  kernel->exit_mmap(ctx[2], child);
  kernel->mm_destroy(child);
  arch->clear_events();
  fault(a + 7 * kPageSize, true);
  const PteCodec& c = kernel->codec();
  EXPECT_EQ(kernel->vmstat().cow_reuse.value(), 1u);
  EXPECT_EQ(arch->vmstats().contpte_unfolds.value(), 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), 16u + 1u);
  EXPECT_TRUE(c.write(*pte_of(a + 7 * kPageSize)));
  EXPECT_FALSE(c.write(*pte_of(a + 8 * kPageSize))) << "a separate fault, as in Linux";
  EXPECT_FALSE(c.cont(*pte_of(a + 8 * kPageSize)));
}

// mprotect(PROT_NONE) of a contpte block (arm64, 64 KiB mTHP): the first
// ptep_modify_prot_start() unfolds the block (contpte_try_unfold: 16 TLBI VALE1IS),
// each entry becomes PTE_PRESENT_INVALID (never contiguous: only valid entries fold)
// and the VMA's flush invalidates the 16 pages (16 TLBI VALE1IS, one DSB). Back to
// read-write the entries are valid again and the last one's commit refolds the block
// (contpte_try_fold); the pages are the same folio, no fault needed.
TEST_F(ReclaimArm64, MprotectProtNoneUnfoldsAContpteBlockAndBackRefolds) {
  build(/*contpte_64k=*/true);
  const VirtAddr a = map(64 << 10);
  fault(a, true);
  const PteCodec& c = kernel->codec();
  ASSERT_TRUE(c.cont(*pte_of(a)));
  const Pfn pfn = c.pfn(*pte_of(a + 5 * kPageSize));
  arch->clear_events();
  const uint64_t unfolds0 = arch->vmstats().contpte_unfolds.value();
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 64 << 10, false, false, false), 0);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_EQ(arch->vmstats().contpte_unfolds.value() - unfolds0, 1u);
  EXPECT_EQ(arch->count_tlbi(arm64::TlbiKind::kVale1is), 16u + 16u);
  for (unsigned i = 0; i < 16; ++i) {
    const uint64_t e = *pte_of(a + i * kPageSize);
    EXPECT_TRUE(c.protnone(e) && c.present(e) && !c.valid(e) && !c.cont(e)) << i;
  }
  EXPECT_EQ(c.pfn(*pte_of(a + 5 * kPageSize)), pfn);
  EXPECT_EQ(kernel->handle_mm_fault(ctx[0], *mm, a, 0), FaultResult::kSegv);
  ASSERT_EQ(kernel->sys_mprotect(ctx[0], *mm, a, 64 << 10, true, true, false), 0);
  EXPECT_EQ(check_invariants(*kernel), "");
  EXPECT_TRUE(c.cont(*pte_of(a))) << "refolded";
  EXPECT_TRUE(c.valid(*pte_of(a + 15 * kPageSize)) && c.write(*pte_of(a + 15 * kPageSize)));
  EXPECT_EQ(c.pfn(*pte_of(a + 5 * kPageSize)), pfn);
}

}  // namespace
}  // namespace tlbsim::mm::testing

// fork(): dup_mmap, copy_page_range/copy_present_ptes batching, the end-of-fork
// flush and COW after fork — oracles T08–T13 of reference/linux-mm.md §11 on
// InstantArch (x86-64 decisions).
#include <gtest/gtest.h>

#include "tests/unit/mm/fork_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class Fork : public ForkFixture {};

// --- order-0 pages ------------------------------------------------------------------------

// copy_present_ptes() single-PTE path + __copy_present_ptes(): an order-0 anon page
// ends up shared read-only in both processes; one flush_tlb_mm(parent).
TEST_F(Fork, OrderZeroPageIsSharedReadOnlyInBothProcesses) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 4 * kPageSize);
  touch(p, a);
  Folio x = folio_at(p, a);
  const uint64_t calls = rmap_calls();
  const int64_t anon_mapped = kernel->vmstat().nr_anon_mapped.value();
  arch->clear_events();
  Mm& c = fork(p);
  EXPECT_EQ(x.ref_count(), 2);
  EXPECT_EQ(x.mapcount(), 2);
  EXPECT_FALSE(x.head().test(kPgAnonExclusive));
  EXPECT_FALSE(codec().write(pte(p, a))) << "parent write-protected (wrprotect_ptes)";
  EXPECT_TRUE(codec().young(pte(p, a)));
  EXPECT_FALSE(codec().write(pte(c, a)));
  EXPECT_FALSE(codec().young(pte(c, a))) << "child PTEs are old";
  EXPECT_TRUE(codec().dirty(pte(c, a))) << "private mapping: dirty bit kept";
  EXPECT_EQ(codec().pfn(pte(c, a)), x.pfn());
  EXPECT_EQ(c.rss(kMmAnonPages), 1);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), anon_mapped);
  EXPECT_EQ(fork_flushes(), 1u);
  expect_one_local_fork_flush();
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_all.value(), 1u);
}

// dup_mmap(): the flush comes even when nothing was write-protected, and only once
// however many VMAs were copied.
TEST_F(Fork, ExactlyOneParentFlushPerForkEvenWithNothingToProtect) {
  Mm& p = process({0});
  arch->clear_events();
  fork(p);
  expect_one_local_fork_flush();
  for (int i = 0; i < 5; ++i) {
    VirtAddr a = mmap(p, 8 * kPageSize);
    populate(p, a, 8 * kPageSize);
  }
  arch->clear_events();
  fork(p);
  expect_one_local_fork_flush();
  EXPECT_EQ(fork_flushes(), 2u);
}

// T13 (wp_can_reuse_anon_folio, small): after the child exited, the parent's write
// reuses the page: folio_move_anon_rmap, PageAnonExclusive again, no flush.
TEST_F(Fork, T13_OrderZeroReuseAfterChildExit) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPageSize);
  touch(p, a);
  Folio x = folio_at(p, a);
  Mm& c = fork(p);
  exit(c);
  EXPECT_EQ(x.ref_count(), 1);
  EXPECT_EQ(x.mapcount(), 1);
  arch->clear_events();
  const uint64_t calls = rmap_calls();
  touch(p, a);
  EXPECT_EQ(kernel->vmstat().cow_reuse.value(), 1u);
  EXPECT_TRUE(x.head().test(kPgAnonExclusive));
  EXPECT_TRUE(codec().write(pte(p, a)));
  EXPECT_EQ(x.head().mapping, reinterpret_cast<uint64_t>(p.find_vma(a)->anon_vma()));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
}

// T13, second half: with the child alive the refcount is 2, so the write copies.
TEST_F(Fork, T13_OrderZeroCopyWhileChildMapsIt) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPageSize);
  touch(p, a);
  Folio x = folio_at(p, a);
  Mm& c = fork(p);
  arch->clear_events();
  touch(p, a);
  EXPECT_EQ(kernel->vmstat().cow_copy.value(), 1u);
  EXPECT_NE(folio_at(p, a).pfn(), x.pfn());
  EXPECT_EQ(x.ref_count(), 1);
  EXPECT_EQ(x.mapcount(), 1);
  EXPECT_EQ(codec().pfn(pte(c, a)), x.pfn());
  EXPECT_EQ(count(Kind::kFlushRequest), 1u) << "ptep_clear_flush of the one page";
}

// Zero-page PTEs are copied without any folio work (vm_normal_page() == NULL).
TEST_F(Fork, ZeroPagePteIsCopiedWithoutRmapOrRss) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 2 * kPageSize);
  touch(p, a);                     // gives the VMA its anon_vma
  touch(p, a + kPageSize, false);  // zero page
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(codec().pfn(pte(c, a + kPageSize)), kernel->zero_pfn());
  EXPECT_FALSE(codec().write(pte(c, a + kPageSize)));
  EXPECT_EQ(rmap_calls() - calls, 1u) << "only the real page";
  EXPECT_EQ(c.rss(kMmAnonPages), 1);
  EXPECT_EQ(pm->page(kernel->zero_pfn()).refcount, 1);
}

// vma_needs_copy(): a VMA that never got an anon_vma (read faults only) is not
// copied at all; the child faults its pages in later.
TEST_F(Fork, VmaWithoutAnonVmaIsNotCopied) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 4 * kPageSize);
  touch(p, a, false);
  const uint64_t before = pm->nr_free_pages();
  Mm& c = fork(p);
  EXPECT_EQ(pte(c, a), 0u);
  EXPECT_EQ(c.nr_pgtables(), 0);
  EXPECT_EQ(before - pm->nr_free_pages(), 1u) << "only the child's pgd";
  arch->switch_mm(ctx[1], c);
  touch(c, a, false, 1);
  EXPECT_EQ(codec().pfn(pte(c, a)), kernel->zero_pfn());
}

// dup_mmap(): VM_DONTCOPY VMAs are skipped; VM_WIPEONFORK VMAs exist in the child
// but empty, without anon_vma.
TEST_F(Fork, DontCopyAndWipeOnForkVmas) {
  Mm& p = process({0});
  VirtAddr keep = mmap(p, kPageSize);
  touch(p, keep);
  MmapArgs args;
  args.len = kPageSize;
  args.extra_vm_flags = kVmDontCopy;
  const VirtAddr dontcopy(static_cast<uint64_t>(kernel->sys_mmap(ctx[0], p, args)));
  touch(p, dontcopy);
  args.extra_vm_flags = kVmWipeOnFork;
  const VirtAddr wipe(static_cast<uint64_t>(kernel->sys_mmap(ctx[0], p, args)));
  touch(p, wipe);
  Mm& c = fork(p);
  EXPECT_EQ(c.vmas().size(), 2u);
  EXPECT_EQ(c.find_vma(dontcopy), nullptr);
  ASSERT_NE(c.find_vma(wipe), nullptr);
  EXPECT_EQ(c.find_vma(wipe)->anon_vma(), nullptr);
  EXPECT_EQ(pte(c, wipe), 0u);
  EXPECT_EQ(c.rss(kMmAnonPages), 1);
  arch->switch_mm(ctx[1], c);
  touch(c, wipe, true, 1);
  EXPECT_NE(folio_at(c, wipe).pfn(), folio_at(p, wipe).pfn()) << "a fresh page, not the parent's";
}

// --- large folios -------------------------------------------------------------------------

// T08: x86, P (only on CPU0) owns 64K folio F writable; fork().
TEST_F(Fork, T08_LargeFolioDupedWithOneBatchedRmapCall) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  const uint64_t calls = rmap_calls();
  const int64_t anon_mapped = kernel->vmstat().nr_anon_mapped.value();
  const int64_t nr_anon = kernel->vmstat().mthp[4]->nr_anon.value();
  const uint64_t flush_all = arch->vmstats().nr_tlb_local_flush_all.value();
  const ExecContext before = ctx[0];
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 1u) << "one folio_try_dup_anon_rmap_ptes(nr = 16)";
  auto ops = [&](KOp op) { return ctx[0].get(op) - before.get(op); };
  EXPECT_EQ(ops(KOp::kRmapCall), 1u);
  // 16 parent write-protects (ptep_set_wrprotect: locked), then 16 child PTEs + the
  // child's PUD/PMD/PTE table entries (plain stores).
  EXPECT_EQ(ops(KOp::kPteXchg), 16u);
  EXPECT_EQ(ops(KOp::kPteWrite), 16u + 3u);
  // folio_ref_add(16) + 16 per-page mapcounts + 16 cleared PageAnonExclusive + large.
  EXPECT_EQ(ops(KOp::kAtomic), 1u + 16u + 16u + 1u);
  EXPECT_EQ(ops(KOp::kPtAlloc), 4u) << "the child's pgd, PUD, PMD and PTE tables";
  EXPECT_EQ(ops(KOp::kPageAlloc), 4u) << "the tables' pages; no folio is allocated";
  EXPECT_EQ(ops(KOp::kPageCopy), 0u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_FALSE(f.page(i).test(kPgAnonExclusive)) << i;
    EXPECT_EQ(f.page(i).mapcount, 2) << i;
    const VirtAddr va = a + i * kPageSize;
    EXPECT_FALSE(codec().write(pte(p, va))) << i;
    EXPECT_FALSE(codec().write(pte(c, va))) << i;
    EXPECT_FALSE(codec().young(pte(c, va))) << i;
    EXPECT_EQ(codec().pfn(pte(c, va)), f.pfn() + i) << i;
  }
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.lf().mm_id[0], p.mm_id());
  EXPECT_EQ(f.lf().mm_id_mapcount[0], 16);
  EXPECT_EQ(f.lf().mm_id[1], c.mm_id());
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 16);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(f.ref_count(), 32);
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), anon_mapped);
  EXPECT_EQ(kernel->vmstat().mthp[4]->nr_anon.value(), nr_anon);
  expect_one_local_fork_flush();
  EXPECT_EQ(arch->vmstats().nr_tlb_local_flush_all.value() - flush_all, 1u);
}

// T08 under linux-6.7 switches: no fork or rmap batching, no MM-ID — one
// folio_try_dup_anon_rmap_pte per PTE, same mapcounts.
TEST_F(Fork, T08_WithoutBatchingOneRmapCallPerPte) {
  profile.fork_batching.set(false);
  profile.rmap_batching.set(false);
  profile.zap_batching.set(false);
  profile.mm_id.set(false);
  build();
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  const uint64_t calls = rmap_calls();
  const uint64_t pte_writes = ctx[0].get(KOp::kPteWrite);
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 16u);
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.ref_count(), 32);
  EXPECT_EQ(f.lf().mm_id[0], 0u) << "no MM-ID tracking in 6.7";
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(f.page(i).mapcount, 2) << i;
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
  // 16 child PTEs + the child's PUD/PMD/PTE entries (the 16 parent write-protects
  // are kPteXchg).
  EXPECT_EQ(ctx[0].get(KOp::kPteWrite) - pte_writes, 16u + 3u);
  expect_one_local_fork_flush();
}

// fork_batching on, rmap_batching off: PTEs copied as one batch, but the rmap is
// duplicated one page at a time.
TEST_F(Fork, ForkBatchingWithoutRmapBatchingCallsRmapPerPage) {
  profile.rmap_batching.set(false);
  build();
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 16u);
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 16);
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
}

// copy_present_ptes(): FPB_RESPECT_DIRTY for private mappings — a clean run and a
// dirty run of the same folio are two batches, and each child PTE keeps its bit.
TEST_F(Fork, DirtyAndCleanRunsAreSeparateBatches) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  for (int i = 8; i < 16; ++i) {
    uint64_t* e = kernel->page_tables().walk(ctx[0], p, a + i * kPageSize, 1, false);
    *e = codec().mkclean(*e);
  }
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 2u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(codec().dirty(pte(c, a + i * kPageSize)), i < 8) << i;
  EXPECT_EQ(f.large_mapcount(), 32);
}

// folio_pte_batch_flags(FPB_MERGE_WRITE): read-only and writable PTEs of one folio
// form one batch; the parent's whole batch is write-protected.
TEST_F(Fork, WriteBitsAreMergedIntoOneBatch) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  for (int i = 0; i < 16; i += 2) {
    uint64_t* e = kernel->page_tables().walk(ctx[0], p, a + i * kPageSize, 1, false);
    *e = codec().wrprotect(*e);
  }
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_FALSE(codec().write(pte(p, a + i * kPageSize))) << i;
    EXPECT_FALSE(codec().write(pte(c, a + i * kPageSize))) << i;
  }
  EXPECT_EQ(f.ref_count(), 32);
}

// A batch never crosses the end of the folio or of the PTE table / VMA range:
// two adjacent 64K folios are two batches.
TEST_F(Fork, BatchesStopAtFolioBoundaries) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 32 * kPageSize);
  Folio f0 = large(p, a, 4);
  Folio f1 = large(p, a + 16 * kPageSize, 4);
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 2u);
  EXPECT_EQ(f0.large_mapcount(), 32);
  EXPECT_EQ(f1.large_mapcount(), 32);
  EXPECT_EQ(c.rss(kMmAnonPages), 32);
}

// T09: a second thread of P sits lazily on CPU1: the fork flush still IPIs it
// (flush_tlb_mm passes freed_tables = true), and CPU1 switches to init_mm.
TEST_F(Fork, T09_ForkFlushIpisLazyCpu) {
  Mm& p = process({0, 1});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  large(p, a, 4);
  arch->enter_lazy_tlb(ctx[1]);
  arch->clear_events();
  fork(p);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 1u);
  EXPECT_EQ(arch->cpu_state(1).loaded_mm, nullptr) << "lazy CPU switched to init_mm";
}

// T10: after T08 the child (only on CPU2) writes page 3 of F: copy; F keeps the shared
// bit (slot1 count 15) and is not partially mapped.
TEST_F(Fork, T10_ChildWriteCopiesOnePageOfSharedLargeFolio) {
  build({.cpus = 3});
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c = fork(p);
  arch->switch_mm(ctx[2], c);
  arch->clear_events();
  const uint64_t calls = rmap_calls();
  const int64_t anon_mapped = kernel->vmstat().nr_anon_mapped.value();
  touch(c, a + 3 * kPageSize, true, 2);
  EXPECT_EQ(kernel->vmstat().cow_copy.value(), 1u);
  Folio n = folio_at(c, a + 3 * kPageSize);
  EXPECT_NE(n.pfn(), f.pfn() + 3);
  EXPECT_EQ(n.order(), 0u);
  EXPECT_EQ(rmap_calls() - calls, 2u) << "1 folio_add_new_anon_rmap + 1 folio_remove_rmap_pte";
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  ASSERT_EQ(count(Kind::kLocalPartial), 1u);
  for (auto& e : arch->events())
    if (e.kind == Kind::kLocalPartial) {
      EXPECT_EQ(e.cpu, 2u);
      EXPECT_EQ(e.count, 1u);
    }
  EXPECT_EQ(f.large_mapcount(), 31);
  EXPECT_EQ(f.page(3).mapcount, 1);
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 15);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  EXPECT_FALSE(f.lf().partially_mapped);
  EXPECT_EQ(f.ref_count(), 31);
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), anon_mapped + 1);
}

// T11, first half: the child exits without writing: one folio_remove_rmap_ptes(16),
// slot1 freed, the shared bit cleared (slot0 owns all 16), refcount 16.
TEST_F(Fork, T11_ChildExitReturnsFolioToSoleOwner) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c = fork(p);
  const uint64_t calls = rmap_calls();
  exit(c);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(f.ref_count(), 16);
  EXPECT_FALSE(f.maybe_mapped_shared(true));
}

// T11, second half (do_wp_page → __wp_can_reuse_large_anon_folio): P's write to
// page 7 reuses F in place — only page 7 becomes exclusive and writable; no new
// folio, no rmap call, no flush on x86. Needs the large-folio COW reuse of the
// cow_reuse_large switch.
TEST_F(Fork, T11_ParentWriteReusesLargeFolioAfterChildExit) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c = fork(p);
  exit(c);
  arch->clear_events();
  const uint64_t calls = rmap_calls();
  touch(p, a + 7 * kPageSize);
  EXPECT_EQ(kernel->vmstat().cow_copy.value(), 0u);
  EXPECT_EQ(codec().pfn(pte(p, a + 7 * kPageSize)), f.pfn() + 7);
  EXPECT_TRUE(codec().write(pte(p, a + 7 * kPageSize)));
  EXPECT_TRUE(f.page(7).test(kPgAnonExclusive));
  EXPECT_FALSE(f.page(8).test(kPgAnonExclusive));
  EXPECT_FALSE(codec().write(pte(p, a + 8 * kPageSize)));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
}

// T12: P forks C1 then C2; P and C1 exit: both MM-ID slots are free but the shared
// bit stays set (false positive), so C2's write copies although C2 maps F alone.
TEST_F(Fork, T12_StaleSharedBitMakesSoleMapperCopy) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c1 = fork(p);
  Mm& c2 = fork(p);
  EXPECT_EQ(f.large_mapcount(), 48);
  EXPECT_EQ(f.lf().mm_id[1], c1.mm_id());
  exit(p);
  exit(c1);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.lf().mm_id[0], 0u);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_TRUE(f.maybe_mapped_shared(true));
  arch->switch_mm(ctx[1], c2);
  arch->clear_events();
  const uint64_t calls = rmap_calls();
  touch(c2, a, true, 1);
  EXPECT_EQ(kernel->vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(rmap_calls() - calls, 2u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(f.large_mapcount(), 15);
}

// CONFIG_NO_PAGE_MAPCOUNT: the dup leaves per-page mapcounts alone.
TEST_F(Fork, NoPageMapcountDupTouchesOnlyLargeMapcount) {
  profile.no_page_mapcount.set(true);
  build();
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  fork(p);
  EXPECT_EQ(f.large_mapcount(), 32);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(f.page(i).mapcount, 0) << i;
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
}

// --- failure ---------------------------------------------------------------------------------

// dup_mmap() out of memory: the partial child is torn down, every frame comes
// back, the parent's folios lose the child's counts again.
TEST_F(Fork, OutOfMemoryTearsDownThePartialChild) {
  build({.cpus = 2, .memory = 4ull << 20});
  Mm& p = process({0});
  VirtAddr a = mmap(p, 900 * kPageSize);
  populate(p, a, 900 * kPageSize);
  // Leave room for the child's pgd/PUD/PMD but not for a page-table per 2 MiB.
  VirtAddr b = mmap(p, 4 * kPageSize);
  populate(p, b, kPageSize);
  std::vector<Pfn> hog;
  while (pm->nr_free_pages() > 3) hog.push_back(*pm->alloc_folio(0));
  const uint64_t before = pm->nr_free_pages();
  Folio x = folio_at(p, a);
  EXPECT_THROW(kernel->dup_mmap(ctx[0], p), std::runtime_error);
  check();
  EXPECT_EQ(pm->nr_free_pages(), before);
  EXPECT_EQ(x.mapcount(), 1);
  EXPECT_EQ(x.ref_count(), 1);
  EXPECT_EQ(kernel->mms().size(), 1u);
  for (Pfn h : hog) {
    Folio(*pm, h).put_refs(1);
    pm->free_folio(h, "test");
  }
}

// Parent and child both exit: every frame comes back.
TEST_F(Fork, ExitOfBothReturnsEveryFrame) {
  const uint64_t before = pm->nr_free_pages();
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 64 * kPageSize);
  large(p, a, 4);
  large(p, a + 32 * kPageSize, 5);
  populate(p, a + 16 * kPageSize, 16 * kPageSize);
  Mm& c = fork(p);
  arch->switch_mm(ctx[1], c);
  touch(c, a + 40 * kPageSize, true, 1);
  exit(c);
  exit(p);
  EXPECT_EQ(pm->nr_free_pages(), before);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), 0);
}

}  // namespace
}  // namespace tlbsim::mm::testing

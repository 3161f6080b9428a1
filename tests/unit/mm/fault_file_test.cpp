// File mappings: the page cache (mm/filemap.c) and the file fault paths of
// mm/memory.c (do_read_fault + do_fault_around → filemap_map_pages, do_cow_fault,
// do_shared_fault, wp_page_shared, wp_page_copy of a file page), and the zap of
// file PTEs (reference §11 T20).
#include <gtest/gtest.h>

#include <cerrno>

#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class FileFault : public FaultFixture {
 protected:
  Folio cached(int64_t file, uint64_t index) {
    return Folio::of(*pm, *kernel->page_cache().lookup(file, index));
  }
};

// PageCache::create(): naturally aligned folios of the requested order, smaller
// ones at the end; the cache holds nr_pages references per folio.
TEST_F(FileFault, CreateFileCachesEveryPageInAlignedFolios) {
  build();
  const uint64_t free0 = pm->nr_free_pages();
  const int64_t file = kernel->create_file(37, 3);
  ASSERT_GE(file, 0);
  EXPECT_EQ(free0 - pm->nr_free_pages(), 37u);
  EXPECT_EQ(kernel->page_cache().nr_pages(file), 37u);
  for (uint64_t i : {0u, 8u, 16u, 24u}) EXPECT_EQ(cached(file, i).order(), 3u) << i;
  EXPECT_EQ(cached(file, 33).order(), 2u);
  EXPECT_EQ(cached(file, 36).order(), 0u);
  EXPECT_EQ(cached(file, 13).pfn(), cached(file, 8).pfn());
  EXPECT_EQ(cached(file, 8).ref_count(), 8);
  EXPECT_EQ(cached(file, 8).head().index, 8u);
  EXPECT_FALSE(cached(file, 8).test_anon());
  EXPECT_FALSE(kernel->page_cache().lookup(file, 37));
  check();
  EXPECT_EQ(kernel->create_file(0), -EINVAL);
  EXPECT_NE(input_error([&] { kernel->create_file(4, kPmdOrder); }).find("not supported yet"),
            std::string::npos);
}

// do_read_fault() → do_fault_around() → filemap_map_pages(): a read maps the
// 16-page aligned window around the fault (fault_around_bytes = 64 KiB) read-only,
// one rmap call and one reference per order-0 folio; no flush.
TEST_F(FileFault, ReadFaultMapsTheFaultAroundWindow) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, /*shared=*/false);
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 21 * kPageSize, false), FaultResult::kOk);
  for (uint64_t i = 0; i < 64; ++i) {
    const uint64_t e = pte(mm, a + i * kPageSize);
    if (i < 16 || i > 31) {
      EXPECT_EQ(e, 0u) << i;
      continue;
    }
    EXPECT_EQ(codec().pfn(e), cached(file, i).pfn()) << i;
    EXPECT_FALSE(codec().write(e)) << "COW mapping: read-only until written";
    EXPECT_TRUE(codec().young(e)) << "x86 keeps prefaulted PTEs young";
    EXPECT_EQ(cached(file, i).ref_count(), 2) << i;
    EXPECT_EQ(cached(file, i).mapcount(), 1) << i;
  }
  EXPECT_EQ(rmap_calls(), 16u);
  EXPECT_EQ(mm.rss(kMmFilePages), 16);
  EXPECT_EQ(mm.rss(kMmAnonPages), 0);
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 16);
  EXPECT_EQ(vmstat().fault_around_pages.value(), 16u);
  EXPECT_EQ(vmstat().pgfault_file.value(), 1u);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  // A read inside the window is an access-flag fault only.
  ASSERT_EQ(fault(mm, a + 17 * kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(vmstat().pgfault_file.value(), 1u);
}

// filemap_map_folio_range(): a large page-cache folio is mapped by runs, one
// folio_add_file_rmap_ptes and one folio_ref_add per run; a present PTE splits the
// run. Without rmap batching (linux-6.7 profiles) every PTE is its own rmap call.
TEST_F(FileFault, LargeFileFolioMappedInRunsWithOneRmapCallEach) {
  for (bool batching : {true, false}) {
    profile.rmap_batching.set(batching);
    build();
    Mm& mm = process({0});
    const int64_t file = kernel->create_file(64, 4);
    const VirtAddr a = map_file(mm, file, 64 * kPageSize, false);
    ASSERT_EQ(fault(mm, a + 40 * kPageSize, false), FaultResult::kOk);
    Folio f = cached(file, 32);
    EXPECT_EQ(rmap_calls(), batching ? 1u : 16u);
    EXPECT_EQ(f.large_mapcount(), 16);
    EXPECT_EQ(f.nr_pages_mapped(), 16);
    EXPECT_EQ(f.ref_count(), 32);
    // COW one page of the next folio, then fault the rest around it.
    ASSERT_EQ(fault(mm, a + 24 * kPageSize, true), FaultResult::kOk);
    const uint64_t calls = rmap_calls();
    ASSERT_EQ(fault(mm, a + 21 * kPageSize, false), FaultResult::kOk);
    EXPECT_EQ(rmap_calls() - calls, batching ? 2u : 15u) << "runs [16, 24) and [25, 32)";
    EXPECT_EQ(cached(file, 16).large_mapcount(), 15);
    EXPECT_EQ(mm.rss(kMmFilePages), 31);
    EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  }
  profile.rmap_batching.set(true);
}

// do_fault_around(): the window is clamped to the VMA (which may start inside the
// file) and filemap_map_pages() to the end of the file; beyond it: SIGBUS.
TEST_F(FileFault, FaultAroundIsClampedToTheVmaAndTheFile) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(20);
  const VirtAddr a = map_file(mm, file, 8 * kPageSize, false, 5 * kPageSize);
  ASSERT_EQ(fault(mm, a + 2 * kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(mm.rss(kMmFilePages), 8);
  EXPECT_EQ(pfn_at(mm, a), cached(file, 5).pfn());
  EXPECT_EQ(pfn_at(mm, a + 7 * kPageSize), cached(file, 12).pfn());
  // A mapping longer than the file.
  const VirtAddr b = map_file(mm, file, 32 * kPageSize, false);
  ASSERT_EQ(fault(mm, b + 17 * kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(mm.rss(kMmFilePages), 8 + 4) << "pages 16..19 of the window [16, 32)";
  EXPECT_EQ(fault(mm, b + 25 * kPageSize, false), FaultResult::kSegv);
  EXPECT_EQ(fault(mm, b + 25 * kPageSize, true), FaultResult::kSegv);
}

// fault_around_bytes = 4 KiB: no fault-around; __do_fault + finish_fault map one page.
TEST_F(FileFault, NoFaultAroundMapsOnePage) {
  profile.fault_around_bytes.set(Bytes{4096});
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, false);
  ASSERT_EQ(fault(mm, a + 21 * kPageSize, false), FaultResult::kOk);
  EXPECT_EQ(mm.rss(kMmFilePages), 1);
  EXPECT_EQ(cached(file, 21).ref_count(), 2);
  EXPECT_EQ(vmstat().fault_around_pages.value(), 0u);
  EXPECT_EQ(rmap_calls(), 1u);
}

// do_cow_fault(): a write to a none PTE of a private file mapping copies the cached
// page into a new exclusive order-0 anon folio (even with mTHP enabled).
TEST_F(FileFault, PrivateWriteFaultCopiesIntoAnAnonFolio) {
  enable_thp_sizes({4});
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, false);
  const uint64_t copies = ctx[0].get(KOp::kPageCopy);
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, true), FaultResult::kOk);
  Folio f = folio_at(mm, a + 3 * kPageSize);
  EXPECT_TRUE(f.test_anon());
  EXPECT_EQ(f.order(), 0u);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_TRUE(codec().write(pte(mm, a + 3 * kPageSize)));
  EXPECT_EQ(pte(mm, a + 4 * kPageSize), 0u) << "no fault-around for writes";
  EXPECT_EQ(cached(file, 3).ref_count(), 1);
  EXPECT_EQ(cached(file, 3).mapcount(), 0);
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  EXPECT_EQ(mm.rss(kMmFilePages), 0);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 1);
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 0);
  EXPECT_EQ(rmap_calls(), 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageCopy) - copies, 1u);
}

// do_wp_page() → wp_page_copy() of a file page: rss moves file → anon, the file
// folio loses its mapping (folio_remove_rmap_pte) and reference, one flush.
TEST_F(FileFault, PrivateWriteAfterReadCopiesTheMappedFilePage) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, false);
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, false), FaultResult::kOk);
  const uint64_t calls = rmap_calls();
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, true), FaultResult::kOk);
  EXPECT_TRUE(folio_at(mm, a + 3 * kPageSize).test_anon());
  EXPECT_EQ(rmap_calls() - calls, 2u);
  EXPECT_EQ(mm.rss(kMmFilePages), 15);
  EXPECT_EQ(mm.rss(kMmAnonPages), 1);
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 15);
  EXPECT_EQ(cached(file, 3).ref_count(), 1);
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(events_where(Kind::kLocalPartial, FlushCause::kCow), 1u);
}

// do_shared_fault(): a write to a none PTE of a shared mapping maps the cached page
// writable and dirty and dirties the folio.
TEST_F(FileFault, SharedWriteFaultMapsWritableAndDirtiesTheFolio) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, /*shared=*/true);
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, true), FaultResult::kOk);
  const uint64_t e = pte(mm, a + 3 * kPageSize);
  EXPECT_EQ(codec().pfn(e), cached(file, 3).pfn());
  EXPECT_TRUE(codec().write(e) && codec().dirty(e));
  EXPECT_TRUE(cached(file, 3).head().test(kPgDirty));
  EXPECT_EQ(cached(file, 3).ref_count(), 2);
  EXPECT_EQ(mm.rss(kMmFilePages), 1);
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 1);
}

// wp_page_shared(): a write to a read-faulted shared page (write-notify) makes the
// same PTE writable and dirties the folio: no copy, no flush.
TEST_F(FileFault, SharedWriteAfterReadReusesThePage) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, true);
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, false), FaultResult::kOk);
  EXPECT_FALSE(codec().write(pte(mm, a + 3 * kPageSize))) << "write-notify";
  EXPECT_FALSE(cached(file, 3).head().test(kPgDirty));
  const uint64_t calls = rmap_calls();
  arch->clear_events();
  ASSERT_EQ(fault(mm, a + 3 * kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(pfn_at(mm, a + 3 * kPageSize), cached(file, 3).pfn());
  EXPECT_TRUE(codec().write(pte(mm, a + 3 * kPageSize)));
  EXPECT_TRUE(cached(file, 3).head().test(kPgDirty));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  EXPECT_EQ(vmstat().cow_copy.value(), 0u);
  EXPECT_EQ(cached(file, 3).ref_count(), 2);
}

// T20 — zap_present_folio_ptes(), tlb_delay_rmap(), tlb_flush_rmaps(): munmap over
// table T1 with 3 dirty shared-file PTEs and table T2 with 2 clean ones: a forced
// flush at the end of T1 (then the delayed rmaps), the final flush for T2 → 2
// flushes; NR_FILE_MAPPED −5, file rss −5; the folios stay in the page cache.
TEST_F(FileFault, T20_DirtySharedFilePtesForceAFlushPerTable) {
  profile.fault_around_bytes.set(Bytes{4096});
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(1024);
  const VirtAddr a = map_file(mm, file, 1024 * kPageSize, true);
  for (uint64_t i : {100u, 101u, 102u}) ASSERT_EQ(fault(mm, a + i * kPageSize, true), FaultResult::kOk);
  for (uint64_t i : {600u, 601u}) ASSERT_EQ(fault(mm, a + i * kPageSize, false), FaultResult::kOk);
  const uint64_t free0 = pm->nr_free_pages();
  arch->clear_events();
  munmap(mm, a + 100 * kPageSize, 502 * kPageSize);
  EXPECT_EQ(count(Kind::kFlushRequest), 2u);
  EXPECT_EQ(kernel->flush_stats().gather_forced.value(), 1u);
  std::vector<uint64_t> invlpgs;
  for (auto& e : arch->events())
    if (e.kind == Kind::kLocalPartial) invlpgs.push_back(e.count);
  EXPECT_EQ(invlpgs, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 0);
  EXPECT_EQ(mm.rss(kMmFilePages), 0);
  EXPECT_EQ(pm->nr_free_pages(), free0) << "page-cache folios and both tables stay";
  for (uint64_t i : {100u, 101u, 102u}) EXPECT_TRUE(cached(file, i).head().test(kPgDirty));
  EXPECT_FALSE(cached(file, 600).head().test(kPgDirty));
  EXPECT_EQ(cached(file, 600).ref_count(), 1);
}

// munmap and exit drop only the mappings' references: the page cache keeps its
// folios; anon COW copies are freed.
TEST_F(FileFault, UnmapAndExitKeepThePageCache) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64, 2);
  const uint64_t free0 = pm->nr_free_pages();
  const VirtAddr a = map_file(mm, file, 64 * kPageSize, false);
  ASSERT_EQ(fault(mm, a, false), FaultResult::kOk);
  ASSERT_EQ(fault(mm, a + 5 * kPageSize, true), FaultResult::kOk);
  munmap(mm, a, 8 * kPageSize);
  const VirtAddr b = map_file(mm, file, 64 * kPageSize, true);
  ASSERT_EQ(fault(mm, b + 40 * kPageSize, true), FaultResult::kOk);
  ASSERT_EQ(fault(mm, b + 50 * kPageSize, false), FaultResult::kOk);
  kernel->exit_mmap(ctx[0], mm);
  check();
  EXPECT_EQ(pm->nr_free_pages(), free0);
  for (uint64_t i = 0; i < 64; i += 4) EXPECT_EQ(cached(file, i).ref_count(), 4) << i;
  EXPECT_EQ(vmstat().nr_file_mapped.value(), 0);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), 0);
}

// MAP_POPULATE of a shared file mapping: read faults (populate_vma_page_range()
// writes only private writable mappings), one per fault-around window.
TEST_F(FileFault, PopulateOfASharedMappingReadFaultsOncePerWindow) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(64);
  MmapArgs args;
  args.len = 64 * kPageSize;
  args.file = file;
  args.shared = true;
  args.populate = true;
  args.align = kPmdSize;
  const int64_t r = kernel->sys_mmap(ctx[0], mm, args);
  ASSERT_GT(r, 0);
  check();
  EXPECT_EQ(vmstat().pgfault_file.value(), 4u);
  EXPECT_EQ(mm.rss(kMmFilePages), 64);
  EXPECT_FALSE(cached(file, 0).head().test(kPgDirty));
}

// sys_mmap() argument checks for files; MAP_SHARED anonymous memory (shmem) is not
// modelled.
TEST_F(FileFault, MmapRejectsBadFileArguments) {
  build();
  Mm& mm = process({0});
  const int64_t file = kernel->create_file(8);
  MmapArgs args;
  args.len = 8 * kPageSize;
  args.file = file + 1;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], mm, args)), EBADF);
  args.file = file;
  args.file_offset = 100;
  EXPECT_EQ(Kernel::mmap_errno(kernel->sys_mmap(ctx[0], mm, args)), EINVAL);
  MmapArgs anon;
  anon.len = kPageSize;
  anon.shared = true;
  EXPECT_EQ(input_error([&] { kernel->sys_mmap(ctx[0], mm, anon); }),
            "not supported yet: MAP_SHARED anonymous mappings");
  check();
}

}  // namespace
}  // namespace tlbsim::mm::testing

// fork() of THP and file mappings: copy_huge_pmd for PMD-mapped THPs and the
// huge zero PMD, mTHP end to end through the fault path, private and shared file
// mappings and the folio_dup_file_rmap family (reference/linux-mm.md §2.6, §4.5).
#include <gtest/gtest.h>

#include "mm/rmap_walk.h"
#include "tests/unit/mm/fork_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class ForkThpFile : public ForkFixture {};

// --- PMD-mapped THP -------------------------------------------------------------------------

// §4.5 copy_huge_pmd(): one folio_try_dup_anon_rmap_pmd; both PMDs read-only, the
// child's old; the child gets 512 anon pages and a deposited page table. Both
// processes' exits give every frame back (zap_huge_pmd withdraws the deposits).
TEST_F(ForkThpFile, PmdMappedThpIsDuplicatedAsOnePmd) {
  profile.thp.enabled.set("always");
  build();
  const uint64_t before = pm->nr_free_pages();
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPmdSize);
  touch(p, a + 5 * kPageSize);  // do_huge_pmd_anonymous_page
  uint64_t* pmd = kernel->page_tables().walk(ctx[0], p, a, 2, false);
  ASSERT_TRUE(pmd && codec().huge(*pmd));
  Folio f(*pm, codec().pfn(*pmd));
  ASSERT_EQ(f.order(), 9u);
  const uint64_t calls = rmap_calls();
  const uint64_t tables = pm->nr_page_tables();
  arch->clear_events();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(f.entire_mapcount(), 2);
  EXPECT_EQ(f.large_mapcount(), 2);
  EXPECT_EQ(f.ref_count(), 2);
  EXPECT_FALSE(f.head().test(kPgAnonExclusive));
  EXPECT_EQ(f.lf().mm_id[1], c.mm_id());
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  uint64_t* cpmd = kernel->page_tables().walk(ctx[0], c, a, 2, false);
  ASSERT_NE(cpmd, nullptr);
  EXPECT_TRUE(codec().huge(*cpmd));
  EXPECT_EQ(codec().pfn(*cpmd), f.pfn());
  EXPECT_FALSE(codec().write(*cpmd));
  EXPECT_FALSE(codec().young(*cpmd));
  EXPECT_FALSE(codec().write(*pmd));
  EXPECT_EQ(c.rss(kMmAnonPages), 512);
  // pgd, PUD and PMD tables of the child plus the deposited PTE table.
  EXPECT_EQ(pm->nr_page_tables() - tables, 4u);
  EXPECT_EQ(c.nr_pgtables(), 3);
  expect_one_local_fork_flush();
  exit(c);
  EXPECT_EQ(f.entire_mapcount(), 1);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
  exit(p);
  EXPECT_EQ(pm->nr_free_pages(), before);
}

// copy_huge_pmd() of the huge zero PMD: no folio accounting, a deposited table,
// both read-only.
TEST_F(ForkThpFile, HugeZeroPmdIsCopiedWithoutRmap) {
  profile.thp.enabled.set("always");
  build();
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPmdSize);
  touch(p, a, false);
  ASSERT_NE(kernel->huge_zero_pfn(), Pfn());
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  uint64_t* cpmd = kernel->page_tables().walk(ctx[0], c, a, 2, false);
  ASSERT_TRUE(cpmd && codec().huge(*cpmd));
  EXPECT_EQ(codec().pfn(*cpmd), kernel->huge_zero_pfn());
  EXPECT_FALSE(codec().write(*cpmd));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(c.rss(kMmAnonPages), 0);
  EXPECT_EQ(c.nr_pgtables(), 3);
  exit(c);
  exit(p);
}

// T01 → T08 → T10 end to end through the mTHP fault path (hugepages-64kB always):
// one folio_add_new_anon_rmap at the fault, one batched dup at fork, one COW copy.
TEST_F(ForkThpFile, MthpFaultForkAndCowEndToEnd) {
  profile.thp.enabled.set("never");
  profile.thp.hugepages_64kB.set("always");
  build({.cpus = 3});
  Mm& p = process({0});
  VirtAddr a = mmap(p, 16 * kPageSize);
  touch(p, a + 3 * kPageSize);
  Folio f = folio_at(p, a);
  ASSERT_EQ(f.order(), 4u);
  EXPECT_EQ(f.ref_count(), 16);
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 1u);
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.ref_count(), 32);
  arch->switch_mm(ctx[2], c);
  arch->clear_events();
  touch(c, a + 3 * kPageSize, true, 2);
  EXPECT_EQ(f.large_mapcount(), 31);
  EXPECT_EQ(f.ref_count(), 31);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  exit(c);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
}

// --- file mappings -------------------------------------------------------------------------

// copy_present_ptes() for a private file mapping that has an anon_vma: page-cache
// pages are duplicated with one folio_dup_file_rmap_ptes per batch (no stats), the
// COWed anon page with folio_try_dup_anon_rmap_pte; rmap walks of the file folio
// find both processes.
TEST_F(ForkThpFile, PrivateFileMappingCopiesFileAndAnonPages) {
  const int64_t file = kernel->create_file(32, 4);
  ASSERT_GE(file, 0);
  Mm& p = process({0});
  MmapArgs args;
  args.len = 32 * kPageSize;
  args.file = file;
  const VirtAddr a(static_cast<uint64_t>(kernel->sys_mmap(ctx[0], p, args)));
  touch(p, a, false);                  // fault-around maps the first 64K folio
  touch(p, a + 20 * kPageSize, true);  // do_cow_fault: anon page, anon_vma
  Folio f = folio_at(p, a);
  ASSERT_EQ(f.order(), 4u);
  ASSERT_TRUE(f.head().test(kPgFile));
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.ref_count(), 32) << "16 page-cache references + 16 mappings";
  const uint64_t calls = rmap_calls();
  const int64_t file_mapped = kernel->vmstat().nr_file_mapped.value();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls() - calls, 2u) << "1 folio_dup_file_rmap_ptes(16) + 1 anon dup";
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.ref_count(), 48);
  EXPECT_EQ(f.lf().mm_id[1], c.mm_id());
  EXPECT_EQ(kernel->vmstat().nr_file_mapped.value(), file_mapped);
  EXPECT_EQ(c.rss(kMmFilePages), 16);
  EXPECT_EQ(c.rss(kMmAnonPages), 1);
  EXPECT_EQ(codec().pfn(pte(c, a + 20 * kPageSize)), codec().pfn(pte(p, a + 20 * kPageSize)));
  int64_t found = 0;
  RmapWalkControl rwc;
  rwc.rmap_one = [&](Folio fo, Vma& vma, VirtAddr address) {
    for (PageVmaMappedWalk w(*kernel, ctx[0], fo, vma, address); w.next();) ++found;
    return true;
  };
  rmap_walk(*kernel, ctx[0], f, rwc);
  EXPECT_EQ(found, 32);
  exit(c);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.ref_count(), 32);
}

// vma_needs_copy(): a shared file mapping has no anon_vma, so fork copies nothing;
// the child faults the page cache in later.
TEST_F(ForkThpFile, SharedFileMappingIsNotCopied) {
  const int64_t file = kernel->create_file(16, 0);
  Mm& p = process({0});
  MmapArgs args;
  args.len = 16 * kPageSize;
  args.file = file;
  args.shared = true;
  const VirtAddr a(static_cast<uint64_t>(kernel->sys_mmap(ctx[0], p, args)));
  touch(p, a, true);
  const uint64_t calls = rmap_calls();
  Mm& c = fork(p);
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(pte(c, a), 0u);
  EXPECT_EQ(c.rss(kMmFilePages), 0);
  EXPECT_TRUE(codec().write(pte(p, a))) << "shared mapping: not write-protected";
  arch->switch_mm(ctx[1], c);
  touch(c, a, false, 1);
  EXPECT_EQ(codec().pfn(pte(c, a)), codec().pfn(pte(p, a)));
}

// folio_dup_file_rmap_ptes()/_pmd(): mapcounts only, the child's MM-ID slot, no stats.
TEST_F(ForkThpFile, DupFileRmapCountsMappingsWithoutStats) {
  Mm& p = process({0});
  Mm& c = process({1});
  Vma pv(&p, VirtAddr(0x10000000), VirtAddr(0x10000000 + kPmdSize), kVmRead, 0);
  Vma cv(&c, VirtAddr(0x10000000), VirtAddr(0x10000000 + kPmdSize), kVmRead, 0);
  pv.set_file(7);
  cv.set_file(7);
  auto pfn = pm->alloc_folio(4);
  Folio f(*pm, *pfn);
  f.head().set(kPgFile);
  f.head().mapping = 7;
  kernel->rmap().folio_add_file_rmap_ptes(ctx[0], f, f.pfn(), 16, pv);
  const int64_t file_mapped = kernel->vmstat().nr_file_mapped.value();
  kernel->rmap().folio_dup_file_rmap_ptes(ctx[0], f, f.pfn() + 4, 8, cv);
  EXPECT_EQ(f.large_mapcount(), 24);
  EXPECT_EQ(f.page(4).mapcount, 2);
  EXPECT_EQ(f.page(3).mapcount, 1);
  EXPECT_EQ(f.lf().mm_id[1], c.mm_id());
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 8);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(kernel->vmstat().nr_file_mapped.value(), file_mapped);
  EXPECT_THROW(kernel->rmap().folio_dup_file_rmap_pmd(ctx[0], f, f.pfn(), cv), std::logic_error)
      << "PMD dup of a folio that is not PMD-sized";
  kernel->rmap().folio_remove_rmap_ptes(ctx[0], f, f.pfn() + 4, 8, cv);
  kernel->rmap().folio_remove_rmap_ptes(ctx[0], f, f.pfn(), 16, pv);
  EXPECT_EQ(f.large_mapcount(), 0);
  f.put_refs(1);
  pm->free_folio(f.pfn(), "test");
}

}  // namespace
}  // namespace tlbsim::mm::testing

// Write-protect faults on anonymous memory (mm/memory.c do_wp_page,
// wp_can_reuse_anon_folio, __wp_can_reuse_large_anon_folio, wp_page_reuse,
// wp_page_copy): reuse or copy of small folios and PTE-mapped large folios. The
// shared state a fork leaves behind is built by hand here (copy_present_ptes: the
// child maps the same pages read-only, PageAnonExclusive cleared, the parent's PTEs
// write-protected), so these tests do not depend on fork itself; the scenarios are
// those of reference §11 T10–T13.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mm/deferred_split.h"
#include "tests/unit/mm/fault_fixture.h"

namespace tlbsim::mm::testing {
namespace {

using Kind = ArchEvent::Kind;

class CowFault : public FaultFixture {
 protected:
  /// The child side of copy_present_ptes() for the `nr` pages of one folio at `a`:
  /// a new mm on `cpus` with the parent's VMA (same range; an anon_vma of the same
  /// tree), read-only old PTEs, the child's references and mappings, every page no
  /// longer PageAnonExclusive, the parent's PTEs write-protected.
  Mm& share(Mm& parent, VirtAddr a, unsigned nr, std::initializer_list<unsigned> cpus) {
    Mm& child = process(cpus);
    Vma* pv = parent.find_vma(a);
    MmapArgs args;
    args.addr = pv->start().value();
    args.len = pv->end() - pv->start();
    args.fixed = true;
    EXPECT_GT(kernel->sys_mmap(ctx[0], child, args), 0);
    Vma* cv = child.find_vma(a);
    m_anon_vmas.push_back(std::make_unique<AnonVma>(pv->anon_vma()));  // anon_vma_fork
    cv->set_anon_vma(m_anon_vmas.back().get());
    Folio f = folio_at(parent, a);
    const Pfn first = pfn_at(parent, a);
    ExecContext scratch;
    for (unsigned i = 0; i < nr; ++i) {
      uint64_t* pp = kernel->page_tables().walk(scratch, parent, a + i * kPageSize, 1, false);
      uint64_t* cp = kernel->page_tables().walk(scratch, child, a + i * kPageSize, 1, true);
      *pp = codec().wrprotect(*pp);
      *cp = codec().mkold(*pp);
      f.page_of(first + i).clear(kPgAnonExclusive);
    }
    f.ref_add(static_cast<int32_t>(nr));
    kernel->rmap().folio_add_anon_rmap_ptes(scratch, f, first, nr, *cv, a, kRmapNone);
    child.add_rss(kMmAnonPages, nr);
    check();
    arch->clear_events();
    return child;
  }
  void exit(Mm& mm) {
    kernel->exit_mmap(ctx[0], mm);
    check();
  }
  /// A 64 KiB folio F written by `mm` at a fresh 2 MiB aligned area.
  VirtAddr map_f(Mm& mm) {
    const VirtAddr a = map_anon(mm, kPmdSize);
    EXPECT_EQ(fault(mm, a, true), FaultResult::kOk);
    EXPECT_EQ(folio_at(mm, a).order(), 4u);
    return a;
  }

  std::vector<std::unique_ptr<AnonVma>> m_anon_vmas;
};

// T10 — do_wp_page(), __wp_can_reuse_large_anon_folio() (shared bit set),
// wp_page_copy(): the other mm writes page 3 of F: an order-0 copy, one
// ptep_clear_flush on that mm's CPU, one add and one remove rmap call.
TEST_F(CowFault, T10_WriteToSharedLargeFolioCopiesOnePage) {
  enable_thp_sizes({4});
  build({.cpus = 3});
  Mm& p = process({0});
  const VirtAddr a = map_f(p);
  Folio f = folio_at(p, a);
  Mm& c = share(p, a, 16, {2});
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  const uint64_t calls = rmap_calls();
  const int64_t anon_mapped = vmstat().nr_anon_mapped.value();
  ASSERT_EQ(fault(c, a + 3 * kPageSize, true, 2), FaultResult::kOk);
  Folio n = folio_at(c, a + 3 * kPageSize);
  EXPECT_NE(n.pfn(), f.pfn());
  EXPECT_EQ(n.order(), 0u) << "COW never allocates mTHP";
  EXPECT_TRUE(n.head().test(kPgAnonExclusive));
  EXPECT_EQ(rmap_calls() - calls, 2u);
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
  EXPECT_EQ(count(Kind::kIpi), 0u);
  for (auto& e : arch->events())
    if (e.kind == Kind::kLocalPartial) {
      EXPECT_EQ(e.cpu, 2u);
      EXPECT_EQ(e.count, 1u);
      EXPECT_EQ(e.cause, FlushCause::kCow);
    }
  EXPECT_EQ(f.large_mapcount(), 31);
  EXPECT_EQ(f.page(3).mapcount, 1);
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 15);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  EXPECT_FALSE(f.lf().partially_mapped);
  EXPECT_EQ(f.ref_count(), 31);
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
  EXPECT_EQ(vmstat().nr_anon_mapped.value(), anon_mapped + 1);
}

// T11 — folio_sub_return_large_mapcount(), wp_can_reuse_anon_folio(),
// wp_page_reuse(): after the other mm exits, F is exclusive to P again (shared bit
// cleared, refcount == mapcount): P's write reuses page 7 only; x86: no flush.
TEST_F(CowFault, T11_LargeFolioReusedAfterTheOtherMmExits) {
  enable_thp_sizes({4});
  build();
  Mm& p = process({0});
  const VirtAddr a = map_f(p);
  Folio f = folio_at(p, a);
  Mm& c = share(p, a, 16, {1});
  exit(c);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_EQ(f.ref_count(), 16);
  const uint64_t calls = rmap_calls();
  const uint64_t allocs = ctx[0].get(KOp::kPageAlloc);
  arch->clear_events();
  ASSERT_EQ(fault(p, a + 7 * kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(p, a + 7 * kPageSize).pfn(), f.pfn());
  EXPECT_TRUE(codec().write(pte(p, a + 7 * kPageSize)));
  EXPECT_TRUE(f.page(7).test(kPgAnonExclusive));
  EXPECT_FALSE(f.page(8).test(kPgAnonExclusive));
  EXPECT_FALSE(codec().write(pte(p, a + 8 * kPageSize)));
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(ctx[0].get(KOp::kPageAlloc), allocs);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
  EXPECT_EQ(vmstat().cow_reuse.value(), 1u);
  ASSERT_EQ(fault(p, a + 8 * kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().cow_reuse.value(), 2u);
  EXPECT_EQ(vmstat().cow_copy.value(), 0u);
}

// T12 — §1.7.3–1.7.5: a third mm finds no free MM-ID slot; after P and C1 exit the
// shared bit stays set (false positive), so C2's write copies although C2 is the
// only mapper.
TEST_F(CowFault, T12_StaleSharedBitMakesTheLastMapperCopy) {
  enable_thp_sizes({4});
  build();
  Mm& p = process({0});
  const VirtAddr a = map_f(p);
  Folio f = folio_at(p, a);
  Mm& c1 = share(p, a, 16, {1});
  Mm& c2 = share(p, a, 16, {1});
  EXPECT_EQ(f.large_mapcount(), 48);
  exit(p);
  exit(c1);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.lf().mm_id[0], 0u);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_TRUE(f.maybe_mapped_shared(true));
  const uint64_t calls = rmap_calls();
  arch->clear_events();
  ASSERT_EQ(fault(c2, a, true, 1), FaultResult::kOk);
  EXPECT_NE(folio_at(c2, a).pfn(), f.pfn());
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  EXPECT_EQ(rmap_calls() - calls, 2u);
  EXPECT_EQ(count(Kind::kFlushRequest), 1u);
}

// T13 — wp_can_reuse_anon_folio() for a small folio: refcount 1 → reuse (0
// flushes on x86); with the other mapping still there (refcount 2) → copy.
TEST_F(CowFault, T13_SmallFolioReusedOnlyWhenItIsTheOnlyReference) {
  build();
  Mm& p = process({0});
  const VirtAddr a = map_anon(p, kPmdSize);
  ASSERT_EQ(fault(p, a, true), FaultResult::kOk);
  ASSERT_EQ(fault(p, a + kPageSize, true), FaultResult::kOk);
  Folio x = folio_at(p, a);
  Mm& c = share(p, a, 1, {1});
  share(p, a + kPageSize, 1, {1});  // (a second child for the second page)
  (void)c;
  // The page both map: refcount 2 → copy.
  ASSERT_EQ(fault(p, a + kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  exit(c);
  EXPECT_EQ(x.ref_count(), 1);
  arch->clear_events();
  const uint64_t calls = rmap_calls();
  ASSERT_EQ(fault(p, a, true), FaultResult::kOk);
  EXPECT_EQ(folio_at(p, a).pfn(), x.pfn());
  EXPECT_TRUE(x.head().test(kPgAnonExclusive));
  EXPECT_TRUE(codec().write(pte(p, a)));
  EXPECT_EQ(vmstat().cow_reuse.value(), 1u);
  EXPECT_EQ(rmap_calls(), calls);
  EXPECT_EQ(count(Kind::kFlushRequest), 0u);
}

// folio_move_anon_rmap() on small-folio reuse: the survivor's own anon_vma.
TEST_F(CowFault, SmallFolioReuseMovesTheAnonRmap) {
  build();
  Mm& p = process({0});
  const VirtAddr a = map_anon(p, kPmdSize);
  ASSERT_EQ(fault(p, a, true), FaultResult::kOk);
  Folio x = folio_at(p, a);
  Mm& c = share(p, a, 1, {1});
  AnonVma* child_av = c.find_vma(a)->anon_vma();
  EXPECT_NE(x.head().mapping, reinterpret_cast<uint64_t>(child_av));
  exit(p);
  ASSERT_EQ(fault(c, a, true, 1), FaultResult::kOk);
  EXPECT_EQ(folio_at(c, a).pfn(), x.pfn());
  EXPECT_EQ(x.head().mapping, reinterpret_cast<uint64_t>(child_av));
}

// Before Linux 6.15 (cow_reuse_large off), and without MM-ID, a PTE-mapped large
// folio is never reused: the write copies one page and F becomes partially mapped.
TEST_F(CowFault, LargeFolioCopiedWithoutCowReuseLarge) {
  for (int variant = 0; variant < 2; ++variant) {
    enable_thp_sizes({4});
    profile.cow_reuse_large.set(variant == 1);
    profile.mm_id.set(variant == 0);
    build();
    Mm& p = process({0});
    const VirtAddr a = map_f(p);
    Folio f = folio_at(p, a);
    Mm& c = share(p, a, 16, {1});
    exit(c);
    ASSERT_EQ(fault(p, a + 7 * kPageSize, true), FaultResult::kOk);
    EXPECT_NE(folio_at(p, a + 7 * kPageSize).pfn(), f.pfn()) << variant;
    EXPECT_EQ(vmstat().cow_copy.value(), 1u) << variant;
    EXPECT_TRUE(f.lf().partially_mapped) << variant;
  }
  profile.cow_reuse_large.set(true);
  profile.mm_id.set(true);
}

// __wp_can_reuse_large_anon_folio(): a folio with a single mapped page is copied
// (so it can be freed); an extra reference (refcount != mapcount) also copies.
TEST_F(CowFault, LargeFolioReuseNeedsMoreThanOneMappingAndNoExtraReference) {
  enable_thp_sizes({4});
  build();
  Mm& p = process({0});
  const VirtAddr a = map_f(p);
  Folio f = folio_at(p, a);
  const Pfn head = f.pfn();
  Mm& c = share(p, a, 16, {1});
  exit(c);
  f.ref_add(1);  // e.g. a GUP reference
  ASSERT_EQ(fault(p, a + 2 * kPageSize, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().cow_copy.value(), 1u);
  f.ref_add(-1);
  munmap(p, a + 3 * kPageSize, 13 * kPageSize);
  munmap(p, a + kPageSize, kPageSize);
  EXPECT_EQ(f.large_mapcount(), 1);
  ASSERT_EQ(fault(p, a, true), FaultResult::kOk);
  EXPECT_EQ(vmstat().cow_copy.value(), 2u);
  EXPECT_TRUE(pm->buddy().is_free(head)) << "the last page's copy freed F";
  EXPECT_EQ(vmstat().cow_reuse.value(), 0u);
}

}  // namespace
}  // namespace tlbsim::mm::testing

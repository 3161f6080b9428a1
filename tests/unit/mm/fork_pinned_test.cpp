// fork() of pinned pages: MMF_HAS_PINNED, folio_needs_cow_for_dma, the −EBUSY
// dup and the copy_present_page fallback (oracle T21), FOLL_PIN itself, and
// folio_try_share_anon_rmap (reference/linux-mm.md §2.7, §2.8, §4.4).
#include <gtest/gtest.h>

#include <cerrno>

#include "tests/unit/mm/fork_fixture.h"

namespace tlbsim::mm::testing {
namespace {

class ForkPinned : public ForkFixture {};

// --- pinned pages ---------------------------------------------------------------------------

// T21: MMF_HAS_PINNED, order-0 page X exclusive and pinned: try_dup −EBUSY → −EAGAIN
// → one preallocated folio → copy_present_page. The child's copy is exclusive,
// writable and dirty; the parent PTE stays writable; one fork flush.
TEST_F(ForkPinned, T21_PinnedExclusivePageIsCopiedForTheChild) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPageSize);
  touch(p, a);
  auto pinned = kernel->pin_user_page(ctx[0], p, a);
  ASSERT_TRUE(pinned);
  Folio x = folio_at(p, a);
  EXPECT_EQ(x.ref_count(), 1025);
  EXPECT_TRUE(p.has_pinned);
  const int64_t anon_mapped = kernel->vmstat().nr_anon_mapped.value();
  const uint64_t allocs = ctx[0].get(KOp::kPageAlloc), copies = ctx[0].get(KOp::kPageCopy);
  const uint64_t tables = ctx[0].get(KOp::kPtAlloc);
  arch->clear_events();
  Mm& c = fork(p);
  EXPECT_EQ(ctx[0].get(KOp::kPageAlloc) - allocs - (ctx[0].get(KOp::kPtAlloc) - tables), 1u)
      << "the one preallocated folio (besides the child's page tables)";
  EXPECT_EQ(ctx[0].get(KOp::kPageCopy) - copies, 1u);
  Folio n = folio_at(c, a);
  EXPECT_NE(n.pfn(), x.pfn());
  EXPECT_TRUE(n.head().test(kPgAnonExclusive));
  EXPECT_TRUE(codec().write(pte(c, a)));
  EXPECT_TRUE(codec().dirty(pte(c, a)));
  EXPECT_TRUE(codec().write(pte(p, a))) << "parent PTE untouched";
  EXPECT_TRUE(x.head().test(kPgAnonExclusive));
  EXPECT_EQ(x.mapcount(), 1);
  EXPECT_EQ(x.ref_count(), 1025);
  EXPECT_EQ(c.rss(kMmAnonPages), 1);
  EXPECT_EQ(kernel->vmstat().nr_anon_mapped.value(), anon_mapped + 1);
  EXPECT_FALSE(c.has_pinned) << "MMF_HAS_PINNED is not inherited";
  expect_one_local_fork_flush();
  kernel->unpin_user_page(ctx[0], *pinned);
  EXPECT_EQ(x.ref_count(), 1);
}

// MMF_HAS_PINNED alone changes nothing for pages that are not pinned.
TEST_F(ForkPinned, HasPinnedWithoutPinsDuplicatesNormally) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 2 * kPageSize);
  touch(p, a);
  touch(p, a + kPageSize);
  auto pinned = kernel->pin_user_page(ctx[0], p, a);
  ASSERT_TRUE(pinned);
  Folio y = folio_at(p, a + kPageSize);
  Mm& c = fork(p);
  EXPECT_EQ(codec().pfn(pte(c, a + kPageSize)), y.pfn());
  EXPECT_EQ(y.mapcount(), 2);
  EXPECT_NE(codec().pfn(pte(c, a)), *pinned) << "the pinned page itself is copied";
  kernel->unpin_user_page(ctx[0], *pinned);
}

// §4.4 for a pinned large folio: the batched dup fails as a whole if any page is
// exclusive; the single-PTE path then copies exclusive pages one by one (each
// after a failed batch attempt and one preallocation) and duplicates the shared
// rest in one batch.
TEST_F(ForkPinned, PinnedLargeFolioCopiesOnlyExclusivePages) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  // Pages 8..15 are no longer exclusive (as after a sharer exited): read-only.
  for (int i = 8; i < 16; ++i) {
    f.page(i).clear(kPgAnonExclusive);
    uint64_t* e = kernel->page_tables().walk(ctx[0], p, a + i * kPageSize, 1, false);
    *e = codec().wrprotect(*e);
  }
  auto pinned = kernel->pin_user_page(ctx[0], p, a);
  ASSERT_TRUE(pinned);
  EXPECT_EQ(f.lf().pincount, 1);
  EXPECT_EQ(f.ref_count(), 17);
  const uint64_t calls = rmap_calls();
  const uint64_t copies = ctx[0].get(KOp::kPageCopy);
  Mm& c = fork(p);
  // 8 × (failed batch dup + failed single dup + folio_add_new_anon_rmap) + 1 batch.
  EXPECT_EQ(rmap_calls() - calls, 8u * 3u + 1u);
  EXPECT_EQ(ctx[0].get(KOp::kPageCopy) - copies, 8u);
  for (int i = 0; i < 16; ++i) {
    const uint64_t e = pte(c, a + i * kPageSize);
    if (i < 8) {
      EXPECT_NE(codec().pfn(e), f.pfn() + i) << i;
      EXPECT_TRUE(codec().write(e)) << i;
      EXPECT_TRUE(codec().write(pte(p, a + i * kPageSize))) << i;
      EXPECT_EQ(f.page(i).mapcount, 1) << i;
    } else {
      EXPECT_EQ(codec().pfn(e), f.pfn() + i) << i;
      EXPECT_FALSE(codec().write(e)) << i;
      EXPECT_EQ(f.page(i).mapcount, 2) << i;
    }
  }
  EXPECT_EQ(f.large_mapcount(), 24);
  EXPECT_EQ(f.ref_count(), 25);
  EXPECT_EQ(c.rss(kMmAnonPages), 16);
  expect_one_local_fork_flush();
  kernel->unpin_user_page(ctx[0], *pinned);
  EXPECT_EQ(f.lf().pincount, 0);
  EXPECT_EQ(f.ref_count(), 24);
}

// pin_user_page() on a zero-page or shared mapping faults for write first (COW is
// broken), so the pinned page is always exclusive.
TEST_F(ForkPinned, PinBreaksCowFirst) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPageSize);
  touch(p, a);
  Folio x = folio_at(p, a);
  Mm& c = fork(p);
  (void)c;
  auto pinned = kernel->pin_user_page(ctx[0], p, a);
  ASSERT_TRUE(pinned);
  EXPECT_NE(*pinned, x.pfn()) << "shared page: the write fault copied it";
  EXPECT_TRUE(pm->page(*pinned).test(kPgAnonExclusive));
  EXPECT_EQ(Folio::of(*pm, *pinned).ref_count(), 1025);
  kernel->unpin_user_page(ctx[0], *pinned);
}

// folio_try_share_anon_rmap_pte(): clears PageAnonExclusive unless the folio may be
// pinned (−EBUSY); mapcounts unchanged.
TEST_F(ForkPinned, TryShareAnonRmapRefusesPinnedFolios) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 2 * kPageSize);
  touch(p, a);
  touch(p, a + kPageSize);
  Folio x = folio_at(p, a), y = folio_at(p, a + kPageSize);
  auto pinned = kernel->pin_user_page(ctx[0], p, a + kPageSize);
  ASSERT_TRUE(pinned);
  EXPECT_EQ(kernel->rmap().folio_try_share_anon_rmap_pte(ctx[0], x, x.pfn()), 0);
  EXPECT_FALSE(x.head().test(kPgAnonExclusive));
  EXPECT_EQ(x.mapcount(), 1);
  EXPECT_EQ(kernel->rmap().folio_try_share_anon_rmap_pte(ctx[0], y, y.pfn()), -EBUSY);
  EXPECT_TRUE(y.head().test(kPgAnonExclusive));
  EXPECT_THROW(kernel->rmap().folio_try_share_anon_rmap_pte(ctx[0], x, x.pfn()), std::logic_error)
      << "only exclusive pages can be shared";
  // Restore a consistent state for the invariant checker: x is mapped writable.
  uint64_t* e = kernel->page_tables().walk(ctx[0], p, a, 1, false);
  *e = codec().wrprotect(*e);
  kernel->unpin_user_page(ctx[0], *pinned);
}

}  // namespace
}  // namespace tlbsim::mm::testing

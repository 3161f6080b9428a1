// rmap walks after fork: anon_vma_fork links the child and grandchild so
// rmap_walk finds every mapping; page_vma_mapped_walk; folio_referenced
// (mm/rmap.c, mm/page_vma_mapped.c).
#include <gtest/gtest.h>

#include <vector>

#include "mm/rmap_walk.h"
#include "tests/unit/mm/fork_fixture.h"

namespace tlbsim::mm::testing {
namespace {

class RmapWalk : public ForkFixture {};

// anon_vma_fork(): rmap walks from a folio the parent faulted find the child and
// the grandchild (forked anon_vmas), at the folio's address.
TEST_F(RmapWalk, FindsEveryForkedMapping) {
  Mm& p = process({0});
  VirtAddr a = mmap(p, 4 * kPageSize);
  touch(p, a + 2 * kPageSize);
  Folio x = folio_at(p, a + 2 * kPageSize);
  Mm& c = fork(p);
  Mm& g = fork(c);
  std::vector<std::pair<uint32_t, uint64_t>> seen;
  RmapWalkControl rwc;
  rwc.rmap_one = [&](Folio f, Vma& vma, VirtAddr address) {
    for (PageVmaMappedWalk w(*kernel, ctx[0], f, vma, address); w.next();)
      seen.emplace_back(vma.mm()->mm_id(), w.address().value());
    return true;
  };
  rmap_walk(*kernel, ctx[0], x, rwc);
  ASSERT_EQ(seen.size(), 3u);
  for (auto& [id, va] : seen) EXPECT_EQ(va, (a + 2 * kPageSize).value()) << id;
  EXPECT_EQ(seen[0].first, p.mm_id());
  EXPECT_EQ(seen[1].first, c.mm_id());
  EXPECT_EQ(seen[2].first, g.mm_id());
  // A page the child COWs lives under the child's own anon_vma: the parent is not
  // searched, the grandchild forked earlier does not map it.
  arch->switch_mm(ctx[1], c);
  touch(c, a + 2 * kPageSize, true, 1);
  Folio n = folio_at(c, a + 2 * kPageSize);
  seen.clear();
  rmap_walk(*kernel, ctx[0], n, rwc);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, c.mm_id());
  // After the grandchild exits, the walk no longer visits it.
  exit(g);
  seen.clear();
  rmap_walk(*kernel, ctx[0], x, rwc);
  EXPECT_EQ(seen.size(), 1u) << "only the parent maps the original now";
}

// folio_referenced(): counts VMAs whose mapping was young and clears the bits; the
// child's copies are old after fork.
TEST_F(RmapWalk, FolioReferencedCountsYoungMappingsOnce) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c = fork(p);
  (void)c;
  uint64_t flags = 0;
  EXPECT_EQ(folio_referenced(*kernel, ctx[0], f, &flags), 1) << "parent PTEs young, child's old";
  EXPECT_TRUE(flags & kVmWrite);
  for (int i = 0; i < 16; ++i) EXPECT_FALSE(codec().young(pte(p, a + i * kPageSize))) << i;
  EXPECT_EQ(folio_referenced(*kernel, ctx[0], f, &flags), 0);
  EXPECT_EQ(flags, 0u);
}

// A VMA split in the child (munmap of a middle page) keeps both halves findable.
TEST_F(RmapWalk, FindsBothHalvesOfASplitChildVma) {
  Mm& p = process({0});
  VirtAddr a = anon_area(p, 16 * kPageSize);
  Folio f = large(p, a, 4);
  Mm& c = fork(p);
  munmap(c, a + 5 * kPageSize, kPageSize);
  uint64_t child_maps = 0, vmas = 0;
  RmapWalkControl rwc;
  rwc.rmap_one = [&](Folio fo, Vma& vma, VirtAddr address) {
    if (vma.mm() == &c) ++vmas;
    for (PageVmaMappedWalk w(*kernel, ctx[0], fo, vma, address); w.next();)
      if (vma.mm() == &c) ++child_maps;
    return true;
  };
  rmap_walk(*kernel, ctx[0], f, rwc);
  EXPECT_EQ(vmas, 2u);
  EXPECT_EQ(child_maps, 15u);
}

// page_vma_mapped_walk() of a PMD-mapped THP: one PMD per mapping VMA, reported
// at the PMD's address with pmd() set; folio_referenced clears the PMD's young bit.
TEST_F(RmapWalk, FindsPmdMappingsOfAThp) {
  profile.thp.enabled.set("always");
  build();
  Mm& p = process({0});
  VirtAddr a = mmap(p, kPmdSize);
  touch(p, a + 7 * kPageSize);
  const uint64_t* pmd = kernel->page_tables().walk(ctx[0], p, a, 2, false);
  ASSERT_TRUE(pmd && codec().huge(*pmd));
  Folio f(*pm, codec().pfn(*pmd));
  ASSERT_TRUE(f.test_pmd_mappable());
  Mm& c = fork(p);
  std::vector<uint32_t> seen;
  RmapWalkControl rwc;
  rwc.rmap_one = [&](Folio fo, Vma& vma, VirtAddr address) {
    for (PageVmaMappedWalk w(*kernel, ctx[0], fo, vma, address); w.next();) {
      EXPECT_NE(w.pmd(), nullptr);
      EXPECT_EQ(w.pte(), nullptr);
      EXPECT_EQ(w.address(), a);
      EXPECT_EQ(w.page(), f.pfn());
      seen.push_back(vma.mm()->mm_id());
    }
    return true;
  };
  rmap_walk(*kernel, ctx[0], f, rwc);
  EXPECT_EQ(seen, (std::vector<uint32_t>{p.mm_id(), c.mm_id()}));
  uint64_t flags = 0;
  EXPECT_EQ(folio_referenced(*kernel, ctx[0], f, &flags), 1) << "the child's PMD is old";
  EXPECT_EQ(folio_referenced(*kernel, ctx[0], f, &flags), 0);
}

}  // namespace
}  // namespace tlbsim::mm::testing

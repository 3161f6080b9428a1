// The folio rmap families and MM-ID owner tracking (include/linux/rmap.h, mm/rmap.c).
#include "mm/rmap.h"

#include <gtest/gtest.h>

#include "mm/deferred_split.h"
#include "mm/mm_struct.h"

namespace tlbsim::mm {
namespace {

class RmapTest : public ::testing::Test {
 protected:
  void SetUp() override { make(RmapConfig{}); }
  void make(RmapConfig cfg) {
    stats = std::make_unique<StatGroup>("");
    vmstat = std::make_unique<VmStat>(stats.get());
    deferred = std::make_unique<DeferredSplit>(pm, *vmstat);
    rmap = std::make_unique<Rmap>(pm, cfg, *vmstat, deferred.get());
  }
  /// An mm with one anonymous VMA at kBase sharing the root anon_vma.
  struct Proc {
    std::unique_ptr<Mm> mm;
    std::unique_ptr<Vma> vma;
  };
  Proc proc(uint32_t id) {
    Proc p{std::make_unique<Mm>(id, id, 2), nullptr};
    p.vma = std::make_unique<Vma>(p.mm.get(), kBase, kBase + (4ull << 20), kVmRead | kVmWrite,
                                  kBase.vpn());
    p.vma->set_anon_vma(&anon);
    return p;
  }
  Folio folio(unsigned order) {
    auto pfn = pm.alloc_folio(order);
    EXPECT_TRUE(pfn);
    return Folio(pm, *pfn);
  }

  static constexpr VirtAddr kBase = VirtAddr(0x7f0000000000ull);
  PhysMem pm{64ull << 20, 18};
  AnonVma anon{nullptr};
  ExecContext ctx;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<VmStat> vmstat;
  std::unique_ptr<DeferredSplit> deferred;
  std::unique_ptr<Rmap> rmap;
};

// T01's rmap part: folio_add_new_anon_rmap of a 64 KiB mTHP.
TEST_F(RmapTest, NewAnonMthpSetsEveryCounter) {
  Proc p = proc(1);
  Folio f = folio(4);
  f.ref_add(15);  // 16 references for 16 PTEs
  rmap->folio_add_new_anon_rmap(ctx, f, *p.vma, kBase, kRmapExclusive);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.entire_mapcount(), 0);
  EXPECT_EQ(f.nr_pages_mapped(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(f.page(i).mapcount, 1);
    EXPECT_TRUE(f.page(i).test(kPgAnonExclusive));
  }
  EXPECT_EQ(f.lf().mm_id[0], 1u);
  EXPECT_EQ(f.lf().mm_id_mapcount[0], 16);
  EXPECT_FALSE(f.maybe_mapped_shared(true));
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 16);
  EXPECT_EQ(vmstat->mthp[4]->nr_anon.value(), 1);
  EXPECT_EQ(ctx.get(KOp::kRmapCall), 1u);
}

// A PMD-mappable folio mapped by one PMD.
TEST_F(RmapTest, NewAnonPmdThpIsEntirelyMapped) {
  Proc p = proc(1);
  Folio f = folio(9);
  rmap->folio_add_new_anon_rmap(ctx, f, *p.vma, kBase, kRmapExclusive);
  EXPECT_EQ(f.entire_mapcount(), 1);
  EXPECT_EQ(f.large_mapcount(), 1);
  EXPECT_EQ(f.lf().nr_pages_mapped, kEntirelyMapped);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_FALSE(f.page(1).test(kPgAnonExclusive));
  EXPECT_EQ(vmstat->nr_anon_thps.value(), 512);
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 512);
}

// reference §1.7.6: the worked example, P forks C1 (then C1 exits), P forks C1 and
// C2 (C2 finds no free slot), P and C1 exit: the shared bit stays set (false
// positive) until C2 unmaps everything.
TEST_F(RmapTest, MmIdWorkedExampleAndThirdMmImprecision) {
  Proc P = proc(1), C1 = proc(2), C2 = proc(3);
  Folio f = folio(4);
  rmap->folio_add_new_anon_rmap(ctx, f, *P.vma, kBase, kRmapExclusive);
  auto add = [&](Proc& p) { rmap->folio_add_anon_rmap_ptes(ctx, f, f.pfn(), 16, *p.vma, kBase, 0); };
  auto sub = [&](Proc& p) { rmap->folio_remove_rmap_ptes(ctx, f, f.pfn(), 16, *p.vma); };
  add(C1);
  EXPECT_EQ(f.large_mapcount(), 32);
  EXPECT_EQ(f.lf().mm_id[1], 2u);
  EXPECT_EQ(f.lf().mm_id_mapcount[1], 16);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  sub(C1);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
  add(C1);
  add(C2);
  EXPECT_EQ(f.large_mapcount(), 48);
  EXPECT_EQ(f.lf().mm_id[0], 1u);
  EXPECT_EQ(f.lf().mm_id[1], 2u);
  EXPECT_TRUE(f.lf().maybe_mapped_shared);
  sub(P);
  sub(C1);
  EXPECT_EQ(f.large_mapcount(), 16);
  EXPECT_EQ(f.lf().mm_id[0], 0u);
  EXPECT_EQ(f.lf().mm_id[1], 0u);
  EXPECT_TRUE(f.maybe_mapped_shared(true)) << "stale shared bit: the known false positive";
  sub(C2);
  EXPECT_EQ(f.large_mapcount(), 0);
  EXPECT_FALSE(f.lf().maybe_mapped_shared);
}

// __folio_remove_rmap(): partial unmap of an anon mTHP queues it for deferred split
// (PG_partially_mapped, split_deferred +1), once.
TEST_F(RmapTest, PartialUnmapQueuesDeferredSplitOnce) {
  Proc p = proc(1);
  Folio f = folio(4);
  rmap->folio_add_new_anon_rmap(ctx, f, *p.vma, kBase, kRmapExclusive);
  rmap->folio_remove_rmap_pte(ctx, f, f.pfn() + 3, *p.vma);
  EXPECT_TRUE(f.lf().partially_mapped);
  EXPECT_EQ(deferred->length(), 1u);
  EXPECT_EQ(vmstat->mthp[4]->split_deferred.value(), 1u);
  EXPECT_EQ(vmstat->mthp[4]->nr_anon_partially_mapped.value(), 1);
  rmap->folio_remove_rmap_pte(ctx, f, f.pfn() + 4, *p.vma);
  EXPECT_EQ(vmstat->mthp[4]->split_deferred.value(), 1u);
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 14);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn() + 5, 11, *p.vma);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn(), 3, *p.vma);
  EXPECT_EQ(f.large_mapcount(), 0);
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 0);
}

// CONFIG_NO_PAGE_MAPCOUNT: per-page mapcounts untouched; the whole folio counts as
// mapped when it goes from unmapped to mapped, and partial unmap is judged from the
// large mapcount.
TEST_F(RmapTest, NoPageMapcountKeepsOnlyFolioCounters) {
  make(RmapConfig{.mm_id = true, .no_page_mapcount = true});
  Proc p = proc(1);
  Folio f = folio(4);
  rmap->folio_add_new_anon_rmap(ctx, f, *p.vma, kBase, kRmapExclusive);
  EXPECT_EQ(f.page(0).mapcount, 0);
  EXPECT_EQ(f.lf().nr_pages_mapped, 0);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn(), 8, *p.vma);
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 16) << "not fully unmapped: still accounted";
  EXPECT_TRUE(f.lf().partially_mapped);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn() + 8, 8, *p.vma);
  EXPECT_EQ(vmstat->nr_anon_mapped.value(), 0);
}

// __folio_rmap_sanity_checks: pages outside the folio, PMD mapping of a small folio.
TEST_F(RmapTest, SanityChecksAreAssertions) {
  Proc p = proc(1);
  Folio f = folio(2);
  rmap->folio_add_new_anon_rmap(ctx, f, *p.vma, kBase, kRmapExclusive);
  EXPECT_THROW(rmap->folio_remove_rmap_ptes(ctx, f, f.pfn() + 2, 4, *p.vma), std::logic_error);
  EXPECT_THROW(rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *p.vma), std::logic_error);
}

}  // namespace
}  // namespace tlbsim::mm

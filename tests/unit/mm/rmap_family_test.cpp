// The rmap families, function by function (mm/rmap.c, include/linux/rmap.h;
// reference §2): the exact effect of each call on every counter — per-page
// mapcounts, large / entire mapcount, _nr_pages_mapped, MM-ID slots and the
// shared bit, PageAnonExclusive, NR_ANON_MAPPED / NR_ANON_THPS / NR_FILE_MAPPED /
// NR_FILE_PMDMAPPED, the per-size nr_anon gauge and the deferred split queue — for
// an order-0, a 64 KiB and a 2 MiB folio, PTE- and PMD-mapped, with per-page
// mapcounts and with CONFIG_NO_PAGE_MAPCOUNT. Direct Rmap calls: no page tables.
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "mm/deferred_split.h"
#include "mm/mm_struct.h"
#include "mm/rmap.h"
#include "mm/vma.h"

namespace tlbsim::mm {
namespace {

constexpr VirtAddr kBase = VirtAddr(0x7f0000000000ull);

/// Every counter an rmap call may change, for one folio.
struct State {
  std::vector<int32_t> mapcount;  // per page; [0] is the folio mapcount of a small folio
  std::vector<bool> exclusive;    // PageAnonExclusive per page
  int32_t large = 0, entire = 0, nr_pages_mapped = 0;
  uint32_t id[2] = {0, 0};
  int32_t id_count[2] = {0, 0};
  bool shared = false, partially_mapped = false;
  int64_t anon_mapped = 0, anon_thps = 0, file_mapped = 0, file_pmdmapped = 0;
  int64_t nr_anon = 0, nr_anon_partially_mapped = 0;
  uint64_t split_deferred = 0, thp_deferred_split_page = 0, queue = 0;

  std::string str() const {
    std::ostringstream o;
    o << "mapcount[";
    for (size_t i = 0; i < mapcount.size(); ++i) o << (i ? "," : "") << mapcount[i];
    o << "] exclusive[";
    for (size_t i = 0; i < exclusive.size(); ++i) o << exclusive[i];
    o << "] large=" << large << " entire=" << entire << " nr_pages_mapped=" << nr_pages_mapped
      << " slots=(" << id[0] << "," << id_count[0] << ")(" << id[1] << "," << id_count[1]
      << ") shared=" << shared << " partially_mapped=" << partially_mapped
      << " NR_ANON_MAPPED=" << anon_mapped << " NR_ANON_THPS=" << anon_thps
      << " NR_FILE_MAPPED=" << file_mapped << " NR_FILE_PMDMAPPED=" << file_pmdmapped
      << " nr_anon=" << nr_anon << " nr_anon_partially_mapped=" << nr_anon_partially_mapped
      << " split_deferred=" << split_deferred << " thp_deferred_split_page="
      << thp_deferred_split_page << " queue=" << queue;
    return o.str();
  }
};

class RmapFamily : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {
 protected:
  void SetUp() override {
    order = std::get<0>(GetParam());
    npm = std::get<1>(GetParam());
    nr = 1u << order;
    stats = std::make_unique<StatGroup>("");
    vmstat = std::make_unique<VmStat>(stats.get());
    deferred = std::make_unique<DeferredSplit>(pm, *vmstat);
    rmap = std::make_unique<Rmap>(pm, RmapConfig{.mm_id = true, .no_page_mapcount = npm},
                                  *vmstat, deferred.get());
    P = proc(1);
    C = proc(2);
  }
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
  Folio new_folio() {
    auto pfn = pm.alloc_folio(order);
    EXPECT_TRUE(pfn);
    return Folio(pm, *pfn);
  }
  Folio file_folio() {
    Folio f = new_folio();
    f.head().set(kPgFile);
    f.head().mapping = 7;
    f.head().index = 0;
    return f;
  }
  State snap(Folio f) const {
    State s;
    for (uint64_t i = 0; i < f.nr_pages(); ++i) {
      s.mapcount.push_back(f.page(i).mapcount);
      s.exclusive.push_back(f.page(i).test(kPgAnonExclusive));
    }
    if (f.test_large()) {
      const LargeFolio& lf = f.lf();
      s.large = lf.large_mapcount;
      s.entire = lf.entire_mapcount;
      s.nr_pages_mapped = lf.nr_pages_mapped;
      for (int i = 0; i < 2; ++i) {
        s.id[i] = lf.mm_id[i];
        s.id_count[i] = lf.mm_id_mapcount[i];
      }
      s.shared = lf.maybe_mapped_shared;
      s.partially_mapped = lf.partially_mapped;
    }
    s.anon_mapped = vmstat->nr_anon_mapped.value();
    s.anon_thps = vmstat->nr_anon_thps.value();
    s.file_mapped = vmstat->nr_file_mapped.value();
    s.file_pmdmapped = vmstat->nr_file_pmdmapped.value();
    if (order >= kMinAnonThpOrder && order <= kPmdOrder) {
      s.nr_anon = vmstat->mthp[order]->nr_anon.value();
      s.nr_anon_partially_mapped = vmstat->mthp[order]->nr_anon_partially_mapped.value();
      s.split_deferred = vmstat->mthp[order]->split_deferred.value();
    }
    s.thp_deferred_split_page = vmstat->thp_deferred_split_page.value();
    s.queue = deferred->length();
    return s;
  }
  /// folio_add_new_anon_rmap by P, as a fault maps a fresh folio.
  Folio mapped_by_p() {
    Folio f = new_folio();
    rmap->folio_add_new_anon_rmap(ctx, f, *P.vma, kBase, kRmapExclusive);
    return f;
  }
  /// A PMD-sized anon folio mapped by P's PMD *and* all 512 PTEs (the middle of a
  /// PMD split: folio_add_anon_rmap_ptes(512) before folio_remove_rmap_pmd).
  Folio pmd_and_ptes() {
    Folio f = mapped_by_p();
    rmap->folio_add_anon_rmap_ptes(ctx, f, f.pfn(), 512, *P.vma, kBase, kRmapExclusive);
    return f;
  }
  bool pmd_sized() const { return order == kPmdOrder; }
  int32_t pc(int32_t v) const { return npm ? 0 : v; }  // a per-page count, if kept

  unsigned order = 0;
  bool npm = false;
  uint32_t nr = 1;
  PhysMem pm{64ull << 20, 18};
  AnonVma anon{nullptr};
  ExecContext ctx;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<VmStat> vmstat;
  std::unique_ptr<DeferredSplit> deferred;
  std::unique_ptr<Rmap> rmap;
  Proc P, C;
};

#define EXPECT_STATE(got, want) EXPECT_EQ((got).str(), (want).str())

// folio_add_new_anon_rmap(): small → mapcount 1; mTHP → every page mapped once,
// large = nr, slot0 = (mm, nr); PMD-mappable → one entire mapping, head exclusive.
TEST_P(RmapFamily, AddNewAnonRmap) {
  Folio f = new_folio();
  State want = snap(f);
  rmap->folio_add_new_anon_rmap(ctx, f, *P.vma, kBase, kRmapExclusive);
  if (order == 0) {
    want.mapcount[0] = 1;
    want.exclusive[0] = true;
    want.anon_mapped = 1;
  } else if (!pmd_sized()) {
    for (uint32_t i = 0; i < nr; ++i) {
      want.mapcount[i] = pc(1);
      want.exclusive[i] = true;
    }
    want.large = static_cast<int32_t>(nr);
    want.nr_pages_mapped = pc(static_cast<int32_t>(nr));
    want.id[0] = 1;
    want.id_count[0] = static_cast<int32_t>(nr);
    want.anon_mapped = nr;
    want.nr_anon = 1;
  } else {
    want.entire = 1;
    want.large = 1;
    want.nr_pages_mapped = npm ? 0 : kEntirelyMapped;
    want.exclusive[0] = true;
    want.id[0] = 1;
    want.id_count[0] = 1;
    want.anon_mapped = nr;
    want.anon_thps = nr;
    want.nr_anon = 1;
  }
  EXPECT_STATE(snap(f), want);
  EXPECT_TRUE(f.test_anon());
  EXPECT_EQ(f.head().mapping, reinterpret_cast<uint64_t>(&anon));
  EXPECT_EQ(f.head().index, kBase.vpn());
  EXPECT_EQ(ctx.get(KOp::kRmapCall), 1u);
  EXPECT_EQ(vmstat->rmap_calls.value(), 1u);
}

// Without RMAP_EXCLUSIVE: no PageAnonExclusive, folio->mapping = the root anon_vma.
TEST_P(RmapFamily, AddNewAnonRmapNotExclusive) {
  AnonVma child(&anon);
  Vma v(P.mm.get(), kBase, kBase + (4ull << 20), kVmRead | kVmWrite, kBase.vpn());
  v.set_anon_vma(&child);
  Folio f = new_folio();
  rmap->folio_add_new_anon_rmap(ctx, f, v, kBase, kRmapNone);
  for (uint32_t i = 0; i < nr; ++i) EXPECT_FALSE(f.page(i).test(kPgAnonExclusive)) << i;
  EXPECT_EQ(f.head().mapping, reinterpret_cast<uint64_t>(&anon)) << "the root";
}

// folio_add_anon_rmap_ptes(): another mm maps every page by PTEs — counts only,
// NR_ANON_MAPPED unchanged; the second mm claims MM-ID slot 1 and sets the shared
// bit. (PMD-sized: the PTEs of a PMD split next to the entire mapping.)
TEST_P(RmapFamily, AddAnonRmapPtesOfAMappedFolio) {
  Folio f = mapped_by_p();
  State want = snap(f);
  rmap->folio_add_anon_rmap_ptes(ctx, f, f.pfn(), nr, *C.vma, kBase, kRmapNone);
  if (order == 0) {
    want.mapcount[0] = 2;
  } else {
    for (uint32_t i = 0; i < nr; ++i) want.mapcount[i] += pc(1);
    want.large += static_cast<int32_t>(nr);
    // Pages newly PTE-mapped: all of a PMD-mapped folio, none of a PTE-mapped one.
    if (pmd_sized()) want.nr_pages_mapped += pc(static_cast<int32_t>(nr));
    want.id[1] = 2;
    want.id_count[1] = static_cast<int32_t>(nr);
    want.shared = true;
  }
  EXPECT_STATE(snap(f), want);
  EXPECT_EQ(ctx.get(KOp::kRmapCall), 2u);
}

// folio_add_anon_rmap_ptes() on an unmapped anon folio (swap-in style), half of it,
// exclusive: per-page counting maps exactly those pages; NO_PAGE_MAPCOUNT counts the
// whole folio as newly mapped.
TEST_P(RmapFamily, AddAnonRmapPtesOfAnUnmappedFolio) {
  Folio f = mapped_by_p();
  if (pmd_sized()) rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  else rmap->folio_remove_rmap_ptes(ctx, f, f.pfn(), nr, *P.vma);
  for (uint32_t i = 0; i < nr; ++i) f.page(i).clear(kPgAnonExclusive);
  State want = snap(f);
  ASSERT_EQ(want.anon_mapped, 0);
  const uint32_t half = std::max(1u, nr / 2);
  rmap->folio_add_anon_rmap_ptes(ctx, f, f.pfn(), half, *P.vma, kBase, kRmapExclusive);
  for (uint32_t i = 0; i < half; ++i) {
    want.mapcount[i] = order == 0 ? 1 : pc(1);
    want.exclusive[i] = true;
  }
  if (order > 0) {
    want.large = static_cast<int32_t>(half);
    want.nr_pages_mapped = pc(static_cast<int32_t>(half));
    want.id[0] = 1;
    want.id_count[0] = static_cast<int32_t>(half);
  }
  want.anon_mapped = (order > 0 && npm) ? nr : half;
  EXPECT_STATE(snap(f), want);
}

// folio_add_anon_rmap_pmd(): a second PMD mapping (entire 2, large 2, NR_* unchanged);
// and a first PMD mapping of a folio already mapped by all its PTEs (NR_ANON_THPS
// +512, NR_ANON_MAPPED +0). Only PMD-sized folios may be PMD-mapped.
TEST_P(RmapFamily, AddAnonRmapPmd) {
  Folio f = mapped_by_p();
  if (!pmd_sized()) {
    EXPECT_THROW(rmap->folio_add_anon_rmap_pmd(ctx, f, f.pfn(), *C.vma, kBase, kRmapNone),
                 std::logic_error);
    return;
  }
  State want = snap(f);
  rmap->folio_add_anon_rmap_pmd(ctx, f, f.pfn(), *C.vma, kBase, kRmapNone);
  want.entire = 2;
  want.large = 2;
  want.id[1] = 2;
  want.id_count[1] = 1;
  want.shared = true;
  EXPECT_STATE(snap(f), want);

  Folio g = pmd_and_ptes();
  rmap->folio_remove_rmap_pmd(ctx, g, g.pfn(), *P.vma);
  want = snap(g);
  rmap->folio_add_anon_rmap_pmd(ctx, g, g.pfn(), *P.vma, kBase, kRmapExclusive);
  want.entire = 1;
  want.large = 513;
  want.id_count[0] = 513;
  want.nr_pages_mapped = npm ? 0 : kEntirelyMapped + 512;
  want.anon_thps += 512;
  EXPECT_STATE(snap(g), want);
}

// folio_add_file_rmap_ptes(): pages 3..7 (or the one page), then the whole folio:
// NR_FILE_MAPPED counts newly mapped pages (NO_PAGE_MAPCOUNT: the whole folio on
// its first mapping).
TEST_P(RmapFamily, AddFileRmapPtes) {
  Folio f = file_folio();
  State want = snap(f);
  const uint32_t first = order == 0 ? 0 : 3, n = order == 0 ? 1 : 5;
  rmap->folio_add_file_rmap_ptes(ctx, f, f.pfn() + first, n, *P.vma);
  for (uint32_t i = first; i < first + n; ++i) want.mapcount[i] = order == 0 ? 1 : pc(1);
  if (order > 0) {
    want.large = static_cast<int32_t>(n);
    want.nr_pages_mapped = pc(static_cast<int32_t>(n));
    want.id[0] = 1;
    want.id_count[0] = static_cast<int32_t>(n);
  }
  want.file_mapped = (order > 0 && npm) ? nr : n;
  EXPECT_STATE(snap(f), want);
  if (order == 0) return;
  rmap->folio_add_file_rmap_ptes(ctx, f, f.pfn(), nr, *P.vma);
  for (uint32_t i = 0; i < nr; ++i) want.mapcount[i] += pc(1);
  want.large += static_cast<int32_t>(nr);
  want.nr_pages_mapped = pc(static_cast<int32_t>(nr));
  want.id_count[0] += static_cast<int32_t>(nr);
  want.file_mapped = nr;
  EXPECT_STATE(snap(f), want);
  EXPECT_THROW(rmap->folio_add_file_rmap_ptes(ctx, mapped_by_p(), f.pfn(), 1, *P.vma),
               std::logic_error);
}

// folio_add_file_rmap_pmd(): NR_FILE_MAPPED and NR_FILE_PMDMAPPED +512.
TEST_P(RmapFamily, AddFileRmapPmd) {
  Folio f = file_folio();
  if (!pmd_sized()) {
    EXPECT_THROW(rmap->folio_add_file_rmap_pmd(ctx, f, f.pfn(), *P.vma), std::logic_error);
    return;
  }
  State want = snap(f);
  rmap->folio_add_file_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  want.entire = 1;
  want.large = 1;
  want.nr_pages_mapped = npm ? 0 : kEntirelyMapped;
  want.id[0] = 1;
  want.id_count[0] = 1;
  want.file_mapped = 512;
  want.file_pmdmapped = 512;
  EXPECT_STATE(snap(f), want);
}

// folio_remove_rmap_ptes(): one page of a fully PTE-mapped anon folio → partially
// mapped, queued once for deferred split (PMD-sized: thp_deferred_split_page too);
// then the rest → unmapped, slot freed, NR_ANON_MAPPED back to 0 (nr_anon stays
// until the folio is freed).
TEST_P(RmapFamily, RemoveRmapPtes) {
  Folio f = pmd_sized() ? pmd_and_ptes() : mapped_by_p();
  if (pmd_sized()) rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  State want = snap(f);
  const uint32_t page = order == 0 ? 0 : 5;
  rmap->folio_remove_rmap_pte(ctx, f, f.pfn() + page, *P.vma);
  want.mapcount[page] = 0;
  if (order == 0) {
    want.anon_mapped = 0;
    EXPECT_STATE(snap(f), want);
    return;
  }
  want.large -= 1;
  want.id_count[0] -= 1;
  want.nr_pages_mapped = pc(static_cast<int32_t>(nr) - 1);
  want.anon_mapped -= npm ? 0 : 1;
  want.partially_mapped = true;
  want.nr_anon_partially_mapped = 1;
  want.split_deferred = 1;
  want.queue = 1;
  want.thp_deferred_split_page = pmd_sized() ? 1 : 0;
  EXPECT_STATE(snap(f), want);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn(), page, *P.vma);
  rmap->folio_remove_rmap_ptes(ctx, f, f.pfn() + page + 1, nr - page - 1, *P.vma);
  for (uint32_t i = 0; i < nr; ++i) want.mapcount[i] = 0;
  want.large = 0;
  want.id[0] = 0;
  want.id_count[0] = 0;
  want.nr_pages_mapped = 0;
  want.anon_mapped = 0;
  EXPECT_STATE(snap(f), want) << "still queued: unqueued when freed";
  EXPECT_THROW(rmap->folio_remove_rmap_pte(ctx, f, f.pfn(), *P.vma), std::logic_error);
}

// folio_remove_rmap_ptes() of a file folio: NR_FILE_MAPPED only; file folios are
// never queued for deferred split.
TEST_P(RmapFamily, RemoveFileRmapPtes) {
  Folio f = file_folio();
  rmap->folio_add_file_rmap_ptes(ctx, f, f.pfn(), nr, *P.vma);
  State want = snap(f);
  rmap->folio_remove_rmap_pte(ctx, f, f.pfn(), *P.vma);
  want.mapcount[0] = 0;
  if (order > 0) {
    want.large -= 1;
    want.id_count[0] -= 1;
    want.nr_pages_mapped = pc(static_cast<int32_t>(nr) - 1);
  }
  want.file_mapped -= (order > 0 && npm) ? 0 : 1;
  EXPECT_STATE(snap(f), want);
}

// folio_remove_rmap_pmd(): the only mapping (everything back to 0); with all PTEs
// still mapped (end of a PMD split: NR_ANON_THPS −512, NR_ANON_MAPPED unchanged);
// with half the PTEs mapped (256 pages newly unmapped, partially mapped).
TEST_P(RmapFamily, RemoveRmapPmd) {
  if (!pmd_sized()) {
    Folio f = mapped_by_p();
    EXPECT_THROW(rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *P.vma), std::logic_error);
    return;
  }
  Folio f = mapped_by_p();
  State want = snap(f);
  rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  want.entire = 0;
  want.large = 0;
  want.nr_pages_mapped = 0;
  want.id[0] = 0;
  want.id_count[0] = 0;
  want.anon_mapped -= 512;
  want.anon_thps -= 512;
  EXPECT_STATE(snap(f), want);

  Folio g = pmd_and_ptes();
  want = snap(g);
  rmap->folio_remove_rmap_pmd(ctx, g, g.pfn(), *P.vma);
  want.entire = 0;
  want.large = 512;
  want.id_count[0] = 512;
  want.nr_pages_mapped = npm ? 0 : 512;
  want.anon_thps -= 512;
  EXPECT_STATE(snap(g), want);

  Folio h = mapped_by_p();
  rmap->folio_add_anon_rmap_ptes(ctx, h, h.pfn(), 256, *P.vma, kBase, kRmapExclusive);
  want = snap(h);
  rmap->folio_remove_rmap_pmd(ctx, h, h.pfn(), *P.vma);
  want.entire = 0;
  want.large = 256;
  want.id_count[0] = 256;
  want.nr_pages_mapped = npm ? 0 : 256;
  want.anon_thps -= 512;
  want.anon_mapped -= npm ? 0 : 256;
  want.partially_mapped = true;
  want.nr_anon_partially_mapped = 1;
  want.split_deferred = 1;
  want.thp_deferred_split_page = 1;
  want.queue = 1;
  EXPECT_STATE(snap(h), want);
}

// folio_remove_rmap_pmd() of a file THP: NR_FILE_MAPPED and NR_FILE_PMDMAPPED −512.
TEST_P(RmapFamily, RemoveFileRmapPmd) {
  if (!pmd_sized()) GTEST_SKIP() << "only PMD-sized folios have PMD mappings";
  Folio f = file_folio();
  const State unmapped = snap(f);
  rmap->folio_add_file_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  rmap->folio_remove_rmap_pmd(ctx, f, f.pfn(), *P.vma);
  EXPECT_STATE(snap(f), unmapped) << "NR_FILE_MAPPED and NR_FILE_PMDMAPPED back to 0";
}

// folio_move_anon_rmap(): folio->mapping := the VMA's own anon_vma; nothing else.
TEST_P(RmapFamily, MoveAnonRmap) {
  Folio f = mapped_by_p();
  AnonVma child(&anon);
  Vma v(C.mm.get(), kBase, kBase + (4ull << 20), kVmRead | kVmWrite, kBase.vpn());
  v.set_anon_vma(&child);
  const State want = snap(f);
  const uint64_t index = f.head().index;
  rmap->folio_move_anon_rmap(ctx, f, v);
  EXPECT_EQ(f.head().mapping, reinterpret_cast<uint64_t>(&child));
  EXPECT_EQ(f.head().index, index);
  EXPECT_STATE(snap(f), want);
  EXPECT_THROW(rmap->folio_move_anon_rmap(ctx, file_folio(), v), std::logic_error);
}

std::string param_name(const ::testing::TestParamInfo<std::tuple<unsigned, bool>>& info) {
  const unsigned o = std::get<0>(info.param);
  return std::to_string(4u << o) + "kB" + (std::get<1>(info.param) ? "_NoPageMapcount" : "");
}

INSTANTIATE_TEST_SUITE_P(Sizes, RmapFamily,
                         ::testing::Combine(::testing::Values(0u, 4u, kPmdOrder),
                                            ::testing::Bool()),
                         param_name);

// --- hugetlb (§2.10): entire and large mapcount only, together, by 1 per mapping ----

class HugetlbRmap : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    stats = std::make_unique<StatGroup>("");
    vmstat = std::make_unique<VmStat>(stats.get());
    rmap = std::make_unique<Rmap>(pm, RmapConfig{}, *vmstat, nullptr);
    mm = std::make_unique<Mm>(1, 1, 2);
    vma = std::make_unique<Vma>(mm.get(), kBase, kBase + (4ull << 20), kVmRead | kVmWrite,
                                kBase.vpn());
    vma->set_anon_vma(&anon);
  }
  Folio hugetlb_folio() {
    auto pfn = pm.alloc_folio(GetParam());
    EXPECT_TRUE(pfn);
    Folio f(pm, *pfn);
    f.head().set(kPgHugetlb);
    return f;
  }
  void expect_counts(Folio f, int32_t n) {
    EXPECT_EQ(f.lf().entire_mapcount, n);
    EXPECT_EQ(f.lf().large_mapcount, n);
    EXPECT_EQ(f.lf().nr_pages_mapped, 0);
    EXPECT_EQ(f.lf().mm_id[0], 0u) << "no MM-ID tracking for hugetlb";
    for (uint64_t i = 0; i < f.nr_pages(); ++i) EXPECT_EQ(f.page(i).mapcount, 0);
    EXPECT_EQ(vmstat->nr_anon_mapped.value(), 0);
    EXPECT_EQ(vmstat->nr_anon_thps.value(), 0);
    EXPECT_EQ(vmstat->nr_file_mapped.value(), 0);
  }

  PhysMem pm{64ull << 20, 18};
  AnonVma anon{nullptr};
  ExecContext ctx;
  std::unique_ptr<StatGroup> stats;
  std::unique_ptr<VmStat> vmstat;
  std::unique_ptr<Rmap> rmap;
  std::unique_ptr<Mm> mm;
  std::unique_ptr<Vma> vma;
};

// hugetlb_add_new_anon_rmap(), hugetlb_add_anon_rmap(), hugetlb_remove_rmap().
TEST_P(HugetlbRmap, AnonAddAndRemoveCountEntireAndLargeTogether) {
  Folio f = hugetlb_folio();
  rmap->hugetlb_add_new_anon_rmap(ctx, f, *vma, kBase);
  expect_counts(f, 1);
  EXPECT_TRUE(f.test_anon());
  EXPECT_EQ(f.head().mapping, reinterpret_cast<uint64_t>(&anon));
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  EXPECT_FALSE(f.page(1).test(kPgAnonExclusive));
  // A second mapping may not be exclusive while the first is.
  EXPECT_THROW(rmap->hugetlb_add_anon_rmap(ctx, f, *vma, kBase, kRmapExclusive),
               std::logic_error);
  EXPECT_THROW(rmap->hugetlb_add_anon_rmap(ctx, f, *vma, kBase, kRmapNone), std::logic_error)
      << "nor a second mapping added while the head is exclusive";
  expect_counts(f, 1);
  f.head().clear(kPgAnonExclusive);
  rmap->hugetlb_add_anon_rmap(ctx, f, *vma, kBase, kRmapNone);
  expect_counts(f, 2);
  rmap->hugetlb_remove_rmap(ctx, f);
  rmap->hugetlb_remove_rmap(ctx, f);
  expect_counts(f, 0);
  EXPECT_THROW(rmap->hugetlb_remove_rmap(ctx, f), std::logic_error);
  EXPECT_THROW(rmap->hugetlb_add_new_anon_rmap(ctx, f, *vma, kBase + (4ull << 20)),
               std::logic_error)
      << "address outside the VMA";
  EXPECT_EQ(vmstat->rmap_calls.value(), 4u);
}

// hugetlb_try_dup_anon_rmap(): clears PageAnonExclusive and adds a mapping unless
// the folio may be DMA-pinned in an mm with MMF_HAS_PINNED (−EBUSY, unchanged).
TEST_P(HugetlbRmap, TryDupFailsOnlyForPinnedExclusiveFolios) {
  Folio f = hugetlb_folio();
  rmap->hugetlb_add_new_anon_rmap(ctx, f, *vma, kBase);
  mm->has_pinned = true;
  f.lf().pincount = 1;
  EXPECT_EQ(rmap->hugetlb_try_dup_anon_rmap(ctx, f, *vma), -EBUSY);
  expect_counts(f, 1);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  f.lf().pincount = 0;
  EXPECT_EQ(rmap->hugetlb_try_dup_anon_rmap(ctx, f, *vma), 0);
  expect_counts(f, 2);
  EXPECT_FALSE(f.head().test(kPgAnonExclusive));
  f.lf().pincount = 1;
  EXPECT_EQ(rmap->hugetlb_try_dup_anon_rmap(ctx, f, *vma), 0) << "shared: may be duplicated";
  expect_counts(f, 3);
}

// hugetlb_try_share_anon_rmap(): clears PageAnonExclusive unless maybe pinned.
TEST_P(HugetlbRmap, TryShareClearsExclusiveUnlessPinned) {
  Folio f = hugetlb_folio();
  rmap->hugetlb_add_new_anon_rmap(ctx, f, *vma, kBase);
  f.lf().pincount = 1;
  EXPECT_EQ(rmap->hugetlb_try_share_anon_rmap(ctx, f), -EBUSY);
  EXPECT_TRUE(f.head().test(kPgAnonExclusive));
  f.lf().pincount = 0;
  EXPECT_EQ(rmap->hugetlb_try_share_anon_rmap(ctx, f), 0);
  EXPECT_FALSE(f.head().test(kPgAnonExclusive));
  expect_counts(f, 1);
  EXPECT_THROW(rmap->hugetlb_try_share_anon_rmap(ctx, f), std::logic_error) << "not exclusive";
}

// hugetlb_add_file_rmap(): hugetlbfs pages; anon folios are refused.
TEST_P(HugetlbRmap, FileAddCountsLikeAnon) {
  Folio f = hugetlb_folio();
  rmap->hugetlb_add_file_rmap(ctx, f);
  rmap->hugetlb_add_file_rmap(ctx, f);
  expect_counts(f, 2);
  Folio g = hugetlb_folio();
  rmap->hugetlb_add_new_anon_rmap(ctx, g, *vma, kBase);
  EXPECT_THROW(rmap->hugetlb_add_file_rmap(ctx, g), std::logic_error);
}

// The families do not mix: the folio rmap functions refuse hugetlb folios
// (__folio_rmap_sanity_checks) and the hugetlb ones refuse other folios.
TEST_P(HugetlbRmap, FamiliesDoNotMix) {
  Folio f = hugetlb_folio();
  EXPECT_THROW(rmap->folio_add_new_anon_rmap(ctx, f, *vma, kBase, kRmapExclusive),
               std::logic_error);
  EXPECT_THROW(rmap->folio_add_file_rmap_ptes(ctx, f, f.pfn(), 1, *vma), std::logic_error);
  auto pfn = pm.alloc_folio(GetParam());
  Folio g(pm, *pfn);
  EXPECT_THROW(rmap->hugetlb_add_new_anon_rmap(ctx, g, *vma, kBase), std::logic_error);
  EXPECT_THROW(rmap->hugetlb_add_file_rmap(ctx, g), std::logic_error);
  EXPECT_THROW(rmap->hugetlb_remove_rmap(ctx, g), std::logic_error);
}

// arm64 contiguous-PTE hugetlb (64 KiB) and PMD hugetlb (2 MiB).
INSTANTIATE_TEST_SUITE_P(Sizes, HugetlbRmap, ::testing::Values(4u, kPmdOrder),
                         [](const ::testing::TestParamInfo<unsigned>& info) {
                           return std::to_string(4u << info.param) + "kB";
                         });

}  // namespace
}  // namespace tlbsim::mm

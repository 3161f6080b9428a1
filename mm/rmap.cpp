// Lock order and exclusion are implied: the simulator is single-threaded kernel
// code; the PTL/folio-lock rules of mm/rmap.c are represented by KOp::kLock counts
// at the callers, not by real locks. Each call names the struct page lines it
// touches (Rmap::touch): per-page mapcounts and PageAnonExclusive live in every
// page's own struct page, the large-folio counters in page[1].
#include "mm/rmap.h"

#include <cerrno>
#include <stdexcept>
#include <string>

#include "mm/deferred_split.h"
#include "mm/lru.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"

namespace tlbsim::mm {

namespace {
[[noreturn]] void rmap_bug(const std::string& what) {
  throw std::logic_error("rmap sanity check failed: " + what);
}
uint32_t mm_id_of(const Vma& vma) { return vma.mm()->mm_id(); }
}  // namespace

void Rmap::sanity_checks(Folio folio, Pfn page, uint64_t nr, RmapLevel level) const {
  // Mirrors include/linux/rmap.h:__folio_rmap_sanity_checks().
  if (folio.test_zero()) rmap_bug("the shared zero folio is never mapcounted");
  if (folio_test_hugetlb(folio)) rmap_bug("hugetlb folios use the hugetlb_* rmap functions");
  if (nr == 0) rmap_bug("nr_pages == 0");
  if (page < folio.pfn() || page + (nr - 1) >= folio.pfn() + folio.nr_pages())
    rmap_bug("pages [" + std::to_string(page.value()) + ", +" + std::to_string(nr) +
             ") outside folio " + std::to_string(folio.pfn().value()));
  if (level == RmapLevel::kPmd && (folio.nr_pages() != 512 || nr != 512))
    rmap_bug("PMD mapping of a folio that is not PMD-sized");
}

void Rmap::check_anon_rmap(Folio folio, Pfn page, const Vma& vma, VirtAddr address) const {
  // Mirrors mm/rmap.c:__page_check_anon_rmap().
  auto* av = reinterpret_cast<AnonVma*>(folio.head().mapping);
  if (!av || !vma.anon_vma() || av->root() != vma.anon_vma()->root())
    rmap_bug("folio anon_vma root differs from the VMA's");
  const uint64_t expect = folio.head().index + (page - folio.pfn());
  if (vma.linear_page_index(address) != expect)
    rmap_bug("page index " + std::to_string(expect) + " != linear_page_index " +
             std::to_string(vma.linear_page_index(address)));
}

// --- large mapcount and MM-ID -------------------------------------------------------

void Rmap::folio_set_large_mapcount(Folio folio, int32_t mapcount, const Vma& vma) {
  LargeFolio& lf = folio.lf();
  lf.large_mapcount = mapcount;
  if (!m_cfg.mm_id) return;
  if (lf.mm_id[0] || lf.mm_id[1]) rmap_bug("folio_set_large_mapcount on a mapped folio");
  lf.mm_id[0] = mm_id_of(vma);
  lf.mm_id_mapcount[0] = mapcount;
}

int32_t Rmap::folio_add_return_large_mapcount(Folio folio, int32_t diff, const Vma& vma) {
  // Mirrors include/linux/rmap.h:folio_add_return_large_mapcount() (CONFIG_MM_ID).
  LargeFolio& lf = folio.lf();
  const int32_t total = lf.large_mapcount += diff;
  if (!m_cfg.mm_id) return total;
  const uint32_t id = mm_id_of(vma);
  if (lf.mm_id[0] == id) {
    lf.mm_id_mapcount[0] += diff;
  } else if (lf.mm_id[1] == id) {
    lf.mm_id_mapcount[1] += diff;
  } else if (lf.mm_id[0] == 0) {
    lf.mm_id[0] = id;
    lf.mm_id_mapcount[0] = diff;
    if (total != diff) lf.maybe_mapped_shared = true;
  } else if (lf.mm_id[1] == 0) {
    lf.mm_id[1] = id;
    lf.mm_id_mapcount[1] = diff;
    lf.maybe_mapped_shared = true;
  }
  return total;
}

int32_t Rmap::folio_sub_return_large_mapcount(Folio folio, int32_t diff, const Vma& vma) {
  // Mirrors include/linux/rmap.h:folio_sub_return_large_mapcount() (CONFIG_MM_ID).
  LargeFolio& lf = folio.lf();
  const int32_t total = lf.large_mapcount -= diff;
  if (!m_cfg.mm_id) return total;
  const uint32_t id = mm_id_of(vma);
  for (int s = 0; s < 2; ++s) {
    if (lf.mm_id[s] != id) continue;
    lf.mm_id_mapcount[s] -= diff;
    if (lf.mm_id_mapcount[s] > 0) return total;  // still mapped by this mm
    // Underflow is tolerated: mappings added while no slot was free.
    lf.mm_id_mapcount[s] = 0;
    lf.mm_id[s] = 0;
    break;
  }
  if (lf.mm_id_mapcount[0] == total || lf.mm_id_mapcount[1] == total)
    lf.maybe_mapped_shared = false;
  return total;
}

// --- adding ----------------------------------------------------------------------

std::pair<int64_t, int64_t> Rmap::folio_add_rmap(Folio folio, Pfn page, uint64_t nr_pages,
                                                 const Vma& vma, RmapLevel level) {
  // Mirrors mm/rmap.c:__folio_add_rmap().
  int64_t nr = 0, nr_pmdmapped = 0;
  if (level == RmapLevel::kPte) {
    if (!folio.test_large()) {
      nr = (++folio.head().mapcount == 1) ? 1 : 0;
    } else if (m_cfg.no_page_mapcount) {
      const int32_t total =
          folio_add_return_large_mapcount(folio, static_cast<int32_t>(nr_pages), vma);
      nr = (total == static_cast<int32_t>(nr_pages)) ? static_cast<int64_t>(folio.nr_pages()) : 0;
    } else {
      int64_t first = 0;
      Page* p = &folio.page_of(page);
      for (uint64_t i = 0; i < nr_pages; ++i)
        if (++p[i].mapcount == 1) ++first;
      LargeFolio& lf = folio.lf();
      if (first > 0) {
        const int32_t v = lf.nr_pages_mapped += static_cast<int32_t>(first);
        if (v < kEntirelyMapped) nr = first;
      }
      folio_add_return_large_mapcount(folio, static_cast<int32_t>(nr_pages), vma);
    }
  } else {
    LargeFolio& lf = folio.lf();
    const bool first = (++lf.entire_mapcount == 1);
    if (m_cfg.no_page_mapcount) {
      if (level == RmapLevel::kPmd && first) nr_pmdmapped = static_cast<int64_t>(folio.nr_pages());
      const int32_t total = folio_add_return_large_mapcount(folio, 1, vma);
      nr = (total == 1) ? static_cast<int64_t>(folio.nr_pages()) : 0;
    } else {
      if (first) {
        const int32_t v = lf.nr_pages_mapped += kEntirelyMapped;
        if (v < 2 * kEntirelyMapped) {
          nr = static_cast<int64_t>(folio.nr_pages()) - (v & kFolioPagesMapped);
          if (nr < 0) nr = 0;
        }
        if (level == RmapLevel::kPmd) nr_pmdmapped = static_cast<int64_t>(folio.nr_pages());
      }
      folio_add_return_large_mapcount(folio, 1, vma);
    }
  }
  return {nr, nr_pmdmapped};
}

void Rmap::folio_set_anon(Folio folio, const Vma& vma, VirtAddr address, bool exclusive) {
  // Mirrors mm/rmap.c:__folio_set_anon(): exclusive folios point at the VMA's own
  // anon_vma, others at the root ("oldest possible").
  AnonVma* av = vma.anon_vma();
  if (!av) rmap_bug("anonymous VMA without anon_vma");
  if (!exclusive) av = av->root();
  folio.head().mapping = reinterpret_cast<uint64_t>(av);
  folio.head().set(kPgAnon);
  folio.head().index = vma.linear_page_index(address);
}

void Rmap::folio_add_new_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma,
                                   VirtAddr address, uint32_t flags) {
  // Mirrors mm/rmap.c:folio_add_new_anon_rmap().
  if (folio_test_hugetlb(folio)) rmap_bug("folio_add_new_anon_rmap of a hugetlb folio");
  ctx.count(KOp::kRmapCall);
  ++m_vmstat.rmap_calls;
  const bool exclusive = flags & kRmapExclusive;
  const uint64_t nr_pages = folio.nr_pages();
  // PTE-mapped large folios set every page's mapcount / PageAnonExclusive.
  touch(ctx, folio, folio.pfn(), nr_pages,
        !folio.test_pmd_mappable() && (exclusive || !m_cfg.no_page_mapcount));
  folio.head().set(kPgSwapBacked);
  folio_set_anon(folio, vma, address, exclusive);
  int64_t nr, nr_pmdmapped = 0;
  if (!folio.test_large()) {
    folio.head().mapcount = 1;
    if (exclusive) folio.head().set(kPgAnonExclusive);
    nr = 1;
  } else if (!folio.test_pmd_mappable()) {
    nr = static_cast<int64_t>(nr_pages);
    for (uint64_t i = 0; i < nr_pages; ++i) {
      Page& p = folio.page(i);
      if (!m_cfg.no_page_mapcount) p.mapcount = 1;
      if (exclusive) p.set(kPgAnonExclusive);
    }
    folio_set_large_mapcount(folio, static_cast<int32_t>(nr_pages), vma);
    if (!m_cfg.no_page_mapcount) folio.lf().nr_pages_mapped = static_cast<int32_t>(nr_pages);
    ctx.count(KOp::kAtomic, 1);
  } else {
    nr = static_cast<int64_t>(nr_pages);
    folio.lf().entire_mapcount = 1;
    folio_set_large_mapcount(folio, 1, vma);
    if (!m_cfg.no_page_mapcount) folio.lf().nr_pages_mapped = kEntirelyMapped;
    if (exclusive) folio.head().set(kPgAnonExclusive);
    nr_pmdmapped = nr;
  }
  if (address < vma.start() || address + nr_pages * kPageSize > vma.end())
    rmap_bug("new anon folio extends outside its VMA");
  m_vmstat.nr_anon_mapped += nr;
  m_vmstat.nr_anon_thps += nr_pmdmapped;
  if (folio.order() >= kMinAnonThpOrder && folio.order() <= kPmdOrder)
    ++m_vmstat.mthp[folio.order()]->nr_anon;
  // Every caller follows with folio_add_lru_vma(): the folio becomes reclaimable
  // (and was charged to the memcg at allocation).
  ctx.count(KOp::kLruAdd);
  if (m_lru) m_lru->add(ctx, folio.pfn(), folio.test_large());
}

void Rmap::folio_add_anon_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                    const Vma& vma, VirtAddr address, uint32_t flags) {
  // Mirrors mm/rmap.c:folio_add_anon_rmap_ptes() → __folio_add_anon_rmap().
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, nr, !m_cfg.no_page_mapcount || (flags & kRmapExclusive));
  ctx.count(KOp::kAtomic, folio.test_large() && !m_cfg.no_page_mapcount ? nr + 1 : 1);
  ++m_vmstat.rmap_calls;
  sanity_checks(folio, page, nr, RmapLevel::kPte);
  auto [nr_mapped, nr_pmd] = folio_add_rmap(folio, page, nr, vma, RmapLevel::kPte);
  check_anon_rmap(folio, page, vma, address);
  if (flags & kRmapExclusive) {
    Page* p = &folio.page_of(page);
    for (uint64_t i = 0; i < nr; ++i) p[i].set(kPgAnonExclusive);
  }
  m_vmstat.nr_anon_mapped += nr_mapped;
  m_vmstat.nr_anon_thps += nr_pmd;
}

void Rmap::folio_add_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma,
                                   VirtAddr address, uint32_t flags) {
  ctx.count(KOp::kRmapCall);
  ctx.count(KOp::kAtomic, 2);
  touch(ctx, folio, page, 1, false);
  ++m_vmstat.rmap_calls;
  sanity_checks(folio, page, 512, RmapLevel::kPmd);
  auto [nr_mapped, nr_pmd] = folio_add_rmap(folio, page, 512, vma, RmapLevel::kPmd);
  check_anon_rmap(folio, page, vma, address);
  if (flags & kRmapExclusive) folio.head().set(kPgAnonExclusive);
  m_vmstat.nr_anon_mapped += nr_mapped;
  m_vmstat.nr_anon_thps += nr_pmd;
}

void Rmap::folio_add_file_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                    const Vma& vma) {
  // Mirrors mm/rmap.c:folio_add_file_rmap_ptes().
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, nr, !m_cfg.no_page_mapcount);
  ctx.count(KOp::kAtomic, folio.test_large() && !m_cfg.no_page_mapcount ? nr + 1 : 1);
  ++m_vmstat.rmap_calls;
  if (folio.test_anon()) rmap_bug("file rmap on an anon folio");
  sanity_checks(folio, page, nr, RmapLevel::kPte);
  auto [nr_mapped, nr_pmd] = folio_add_rmap(folio, page, nr, vma, RmapLevel::kPte);
  m_vmstat.nr_file_mapped += nr_mapped;
  m_vmstat.nr_file_pmdmapped += nr_pmd;
}

void Rmap::folio_add_file_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma) {
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, 1, false);
  ctx.count(KOp::kAtomic, 2);
  ++m_vmstat.rmap_calls;
  if (folio.test_anon()) rmap_bug("file rmap on an anon folio");
  sanity_checks(folio, page, 512, RmapLevel::kPmd);
  auto [nr_mapped, nr_pmd] = folio_add_rmap(folio, page, 512, vma, RmapLevel::kPmd);
  m_vmstat.nr_file_mapped += nr_mapped;
  m_vmstat.nr_file_pmdmapped += nr_pmd;
}

// --- removing --------------------------------------------------------------------

void Rmap::folio_remove_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr_pages,
                             const Vma& vma, RmapLevel level) {
  // Mirrors mm/rmap.c:__folio_remove_rmap().
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, nr_pages, level == RmapLevel::kPte && !m_cfg.no_page_mapcount);
  ++m_vmstat.rmap_calls;
  sanity_checks(folio, page, nr_pages, level);
  int64_t nr = 0, nr_pmdmapped = 0;
  bool partially_mapped = false;
  const int64_t folio_pages = static_cast<int64_t>(folio.nr_pages());
  if (level == RmapLevel::kPte) {
    if (!folio.test_large()) {
      ctx.count(KOp::kAtomic);
      nr = (--folio.head().mapcount == 0) ? 1 : 0;
    } else if (m_cfg.no_page_mapcount) {
      ctx.count(KOp::kAtomic);
      const int32_t total =
          folio_sub_return_large_mapcount(folio, static_cast<int32_t>(nr_pages), vma);
      if (total == 0) nr = folio_pages;
      else partially_mapped = total < folio_pages && folio.entire_mapcount() == 0;
    } else {
      ctx.count(KOp::kAtomic, nr_pages + 1);
      folio_sub_return_large_mapcount(folio, static_cast<int32_t>(nr_pages), vma);
      int64_t last = 0;
      Page* p = &folio.page_of(page);
      for (uint64_t i = 0; i < nr_pages; ++i) {
        if (p[i].mapcount <= 0) rmap_bug("per-page mapcount underflow");
        if (--p[i].mapcount == 0) ++last;
      }
      LargeFolio& lf = folio.lf();
      if (last > 0) {
        const int32_t v = lf.nr_pages_mapped -= static_cast<int32_t>(last);
        if (v < kEntirelyMapped) nr = last;
      }
      // 6.10+: queue only while some page stays mapped (partially_mapped = nr &&
      // atomic_read(mapped)). 6.7-6.9 (page_remove_rmap() / the 6.8 __folio_remove_rmap()):
      // any PTE-level removal that unmapped a page queues the folio, also the one
      // that unmaps it entirely ("if (!compound || nr < nr_pmdmapped)").
      partially_mapped = nr > 0 && (lf.nr_pages_mapped != 0 || !m_cfg.deferred_split_partial_only);
    }
  } else {
    ctx.count(KOp::kAtomic, 2);
    LargeFolio& lf = folio.lf();
    const bool last = (--lf.entire_mapcount == 0);
    if (m_cfg.no_page_mapcount) {
      if (level == RmapLevel::kPmd && last) nr_pmdmapped = folio_pages;
      const int32_t total = folio_sub_return_large_mapcount(folio, 1, vma);
      if (total == 0) nr = folio_pages;
      else partially_mapped = last && total < folio_pages;
    } else {
      folio_sub_return_large_mapcount(folio, 1, vma);
      if (last) {
        const int32_t v = lf.nr_pages_mapped -= kEntirelyMapped;
        if (v < kEntirelyMapped) {
          if (level == RmapLevel::kPmd) nr_pmdmapped = folio_pages;
          nr = folio_pages - v;
          if (nr < 0) nr = 0;
        }
      }
      partially_mapped = nr > 0 && nr < nr_pmdmapped;
    }
  }
  if (folio.mapcount() < 0) rmap_bug("folio mapcount underflow");
  if (partially_mapped && folio.test_anon() && m_deferred && !folio.lf().partially_mapped)
    m_deferred->deferred_split_folio(ctx, folio, true);
  if (folio.test_anon()) {
    m_vmstat.nr_anon_mapped -= nr;
    m_vmstat.nr_anon_thps -= nr_pmdmapped;
  } else {
    m_vmstat.nr_file_mapped -= nr;
    m_vmstat.nr_file_pmdmapped -= nr_pmdmapped;
  }
}

void Rmap::folio_remove_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                  const Vma& vma) {
  folio_remove_rmap(ctx, folio, page, nr, vma, RmapLevel::kPte);
}

void Rmap::folio_remove_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma) {
  folio_remove_rmap(ctx, folio, page, 512, vma, RmapLevel::kPmd);
}

// --- fork: duplicating and sharing mappings ----------------------------------------

bool Rmap::folio_needs_cow_for_dma(const Vma& vma, Folio folio) {
  // Mirrors include/linux/mm.h:folio_needs_cow_for_dma().
  return vma.mm()->has_pinned && folio.maybe_dma_pinned();
}

int Rmap::folio_try_dup_anon_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                  const Vma& dst_vma, const Vma& src_vma, RmapLevel level) {
  // Mirrors include/linux/rmap.h:__folio_try_dup_anon_rmap(). Device-private folios
  // (which can never fail) are not modelled.
  ctx.count(KOp::kRmapCall);
  // Every page's PageAnonExclusive is tested (and its mapcount raised) at PTE level.
  touch(ctx, folio, page, nr, level == RmapLevel::kPte);
  ++m_vmstat.rmap_calls;
  sanity_checks(folio, page, nr, level);
  if (!folio.test_anon()) rmap_bug("anon dup of a file folio");
  const bool maybe_pinned = folio_needs_cow_for_dma(src_vma, folio);
  Page* p = &folio.page_of(page);
  uint64_t cleared = 0;
  if (level == RmapLevel::kPte) {
    // A pinned folio may still have its shared (non-exclusive) pages duplicated;
    // any exclusive page might be the pinned one.
    if (maybe_pinned) {
      for (uint64_t i = 0; i < nr; ++i)
        if (p[i].test(kPgAnonExclusive)) return -EBUSY;
    }
    if (!folio.test_large()) {
      if (p->test(kPgAnonExclusive)) {
        p->clear(kPgAnonExclusive);
        ++cleared;
      }
      ++p->mapcount;
      ctx.count(KOp::kAtomic, 1 + cleared);
      return 0;
    }
    for (uint64_t i = 0; i < nr; ++i) {
      if (p[i].test(kPgAnonExclusive)) {
        p[i].clear(kPgAnonExclusive);
        ++cleared;
      }
      if (!m_cfg.no_page_mapcount) ++p[i].mapcount;
    }
    folio_add_return_large_mapcount(folio, static_cast<int32_t>(nr), dst_vma);
    ctx.count(KOp::kAtomic, (m_cfg.no_page_mapcount ? 0 : nr) + cleared + 1);
    return 0;
  }
  // PMD/PUD: only the head page's PageAnonExclusive is used.
  if (p->test(kPgAnonExclusive)) {
    if (maybe_pinned) return -EBUSY;
    p->clear(kPgAnonExclusive);
    ++cleared;
  }
  ++folio.lf().entire_mapcount;
  folio_add_return_large_mapcount(folio, 1, dst_vma);
  ctx.count(KOp::kAtomic, 2 + cleared);
  return 0;
}

int Rmap::folio_try_dup_anon_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                       const Vma& dst_vma, const Vma& src_vma) {
  return folio_try_dup_anon_rmap(ctx, folio, page, nr, dst_vma, src_vma, RmapLevel::kPte);
}

int Rmap::folio_try_dup_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page,
                                      const Vma& dst_vma, const Vma& src_vma) {
  return folio_try_dup_anon_rmap(ctx, folio, page, 512, dst_vma, src_vma, RmapLevel::kPmd);
}

int Rmap::folio_try_share_anon_rmap_pte(ExecContext& ctx, Folio folio, Pfn page) {
  // Mirrors include/linux/rmap.h:__folio_try_share_anon_rmap() at PTE level.
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, 1, true);
  sanity_checks(folio, page, 1, RmapLevel::kPte);
  Page& p = folio.page_of(page);
  if (!folio.test_anon() || !p.test(kPgAnonExclusive))
    rmap_bug("try_share of a page that is not an exclusive anon page");
  // The smp_mb() pairs with GUP-fast; a pin taken since the PTE was cleared is seen.
  if (folio.maybe_dma_pinned()) return -EBUSY;
  p.clear(kPgAnonExclusive);
  ctx.count(KOp::kAtomic);
  return 0;
}

int Rmap::folio_try_share_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page) {
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, 1, false);
  sanity_checks(folio, page, 512, RmapLevel::kPmd);
  Page& p = folio.page_of(page);
  if (!folio.test_anon() || !p.test(kPgAnonExclusive))
    rmap_bug("try_share of a PMD that is not an exclusive anon mapping");
  if (folio.maybe_dma_pinned()) return -EBUSY;
  p.clear(kPgAnonExclusive);
  ctx.count(KOp::kAtomic);
  return 0;
}

void Rmap::folio_dup_file_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                               const Vma& dst_vma, RmapLevel level) {
  // Mirrors include/linux/rmap.h:__folio_dup_file_rmap().
  ctx.count(KOp::kRmapCall);
  touch(ctx, folio, page, nr, level == RmapLevel::kPte && !m_cfg.no_page_mapcount);
  ++m_vmstat.rmap_calls;
  sanity_checks(folio, page, nr, level);
  if (folio.test_anon()) rmap_bug("file dup of an anon folio");
  if (level == RmapLevel::kPte) {
    if (!folio.test_large()) {
      ++folio.head().mapcount;
      ctx.count(KOp::kAtomic);
      return;
    }
    if (!m_cfg.no_page_mapcount) {
      Page* p = &folio.page_of(page);
      for (uint64_t i = 0; i < nr; ++i) ++p[i].mapcount;
    }
    folio_add_return_large_mapcount(folio, static_cast<int32_t>(nr), dst_vma);
    ctx.count(KOp::kAtomic, (m_cfg.no_page_mapcount ? 0 : nr) + 1);
    return;
  }
  ++folio.lf().entire_mapcount;
  folio_add_return_large_mapcount(folio, 1, dst_vma);
  ctx.count(KOp::kAtomic, 2);
}

void Rmap::folio_dup_file_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                    const Vma& dst_vma) {
  folio_dup_file_rmap(ctx, folio, page, nr, dst_vma, RmapLevel::kPte);
}

void Rmap::folio_dup_file_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page,
                                   const Vma& dst_vma) {
  // Linux's folio_dup_file_rmap_pmd() passes RMAP_LEVEL_PTE with HPAGE_PMD_NR pages
  // (per-page +1, large +512), which would contradict the single PMD entry it
  // describes; fork never reaches it (copy_huge_pmd skips file VMAs). The PMD-level
  // branch of __folio_dup_file_rmap() is what a PMD duplicate means, so use it.
  folio_dup_file_rmap(ctx, folio, page, 512, dst_vma, RmapLevel::kPmd);
}

// --- anon_vma moves and hugetlb ------------------------------------------------------

void Rmap::folio_move_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma) {
  // Mirrors mm/rmap.c:folio_move_anon_rmap(): one store of vma->anon_vma | ANON.
  if (!folio.test_anon()) rmap_bug("folio_move_anon_rmap of a file folio");
  if (!vma.anon_vma()) rmap_bug("folio_move_anon_rmap to a VMA without anon_vma");
  folio.head().mapping = reinterpret_cast<uint64_t>(vma.anon_vma());
  ctx.count(KOp::kAtomic);  // WRITE_ONCE(folio->mapping)
}

namespace {
void hugetlb_checks(Folio folio, bool want_anon, const char* fn) {
  if (!folio_test_hugetlb(folio)) rmap_bug(std::string(fn) + " of a folio that is not hugetlb");
  if (want_anon && !folio.test_anon()) rmap_bug(std::string(fn) + " of a file folio");
  if (!want_anon && folio.test_anon()) rmap_bug(std::string(fn) + " of an anon folio");
}
}  // namespace

void Rmap::hugetlb_add_new_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma,
                                     VirtAddr address) {
  // Mirrors mm/rmap.c:hugetlb_add_new_anon_rmap(). (The restore-reserve flag is not
  // modelled.)
  if (!folio_test_hugetlb(folio)) rmap_bug("hugetlb_add_new_anon_rmap of a non-hugetlb folio");
  if (address < vma.start() || address >= vma.end())
    rmap_bug("hugetlb_add_new_anon_rmap outside the VMA");
  ctx.count(KOp::kRmapCall);
  ctx.count(KOp::kAtomic, 2);
  ++m_vmstat.rmap_calls;
  LargeFolio& lf = folio.lf();
  lf.entire_mapcount = 1;
  lf.large_mapcount = 1;
  folio_set_anon(folio, vma, address, /*exclusive=*/true);
  folio.head().set(kPgAnonExclusive);
}

void Rmap::hugetlb_add_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma,
                                 VirtAddr address, uint32_t flags) {
  // Mirrors mm/rmap.c:hugetlb_add_anon_rmap().
  (void)vma, (void)address;
  hugetlb_checks(folio, true, "hugetlb_add_anon_rmap");
  LargeFolio& lf = folio.lf();
  // The VM_WARN after the increment (entire mapcount > 1 with PageAnonExclusive),
  // checked before anything changes.
  if (lf.entire_mapcount >= 1 &&
      ((flags & kRmapExclusive) || folio.head().test(kPgAnonExclusive)))
    rmap_bug("exclusive hugetlb folio mapped more than once");
  ctx.count(KOp::kRmapCall);
  ctx.count(KOp::kAtomic, 2);
  ++m_vmstat.rmap_calls;
  ++lf.entire_mapcount;
  ++lf.large_mapcount;
  if (flags & kRmapExclusive) folio.head().set(kPgAnonExclusive);
}

int Rmap::hugetlb_try_dup_anon_rmap(ExecContext& ctx, Folio folio, const Vma& src_vma) {
  // Mirrors include/linux/rmap.h:hugetlb_try_dup_anon_rmap().
  hugetlb_checks(folio, true, "hugetlb_try_dup_anon_rmap");
  ctx.count(KOp::kRmapCall);
  ++m_vmstat.rmap_calls;
  Page& head = folio.head();
  if (head.test(kPgAnonExclusive)) {
    if (folio_needs_cow_for_dma(src_vma, folio)) return -EBUSY;
    head.clear(kPgAnonExclusive);
    ctx.count(KOp::kAtomic);
  }
  LargeFolio& lf = folio.lf();
  ++lf.entire_mapcount;
  ++lf.large_mapcount;
  ctx.count(KOp::kAtomic, 2);
  return 0;
}

int Rmap::hugetlb_try_share_anon_rmap(ExecContext& ctx, Folio folio) {
  // Mirrors include/linux/rmap.h:hugetlb_try_share_anon_rmap().
  hugetlb_checks(folio, true, "hugetlb_try_share_anon_rmap");
  if (!folio.head().test(kPgAnonExclusive))
    rmap_bug("hugetlb_try_share_anon_rmap of a folio that is not exclusive");
  ctx.count(KOp::kRmapCall);
  if (folio.maybe_dma_pinned()) return -EBUSY;
  folio.head().clear(kPgAnonExclusive);
  ctx.count(KOp::kAtomic);
  return 0;
}

void Rmap::hugetlb_add_file_rmap(ExecContext& ctx, Folio folio) {
  // Mirrors include/linux/rmap.h:hugetlb_add_file_rmap().
  hugetlb_checks(folio, false, "hugetlb_add_file_rmap");
  ctx.count(KOp::kRmapCall);
  ctx.count(KOp::kAtomic, 2);
  ++m_vmstat.rmap_calls;
  ++folio.lf().entire_mapcount;
  ++folio.lf().large_mapcount;
}

void Rmap::hugetlb_remove_rmap(ExecContext& ctx, Folio folio) {
  // Mirrors include/linux/rmap.h:hugetlb_remove_rmap().
  if (!folio_test_hugetlb(folio)) rmap_bug("hugetlb_remove_rmap of a non-hugetlb folio");
  LargeFolio& lf = folio.lf();
  if (lf.entire_mapcount <= 0 || lf.large_mapcount <= 0) rmap_bug("hugetlb mapcount underflow");
  ctx.count(KOp::kRmapCall);
  ctx.count(KOp::kAtomic, 2);
  ++m_vmstat.rmap_calls;
  --lf.entire_mapcount;
  --lf.large_mapcount;
}

}  // namespace tlbsim::mm

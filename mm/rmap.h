// The folio rmap families (include/linux/rmap.h, mm/rmap.c): how mappings of a
// folio are counted. One worker per direction takes the page-table level; the
// named entry points are thin, as in Linux (__folio_add_rmap/__folio_remove_rmap).
//
// Counts are natural (unmapped = 0). Mapping order rule (callers): take the folio
// reference before adding the mapcount; drop the mapcount before the reference.
// The sanity checks of __folio_rmap_sanity_checks are assertions (std::logic_error).
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "mm/exec_context.h"
#include "mm/folio.h"
#include "mm/kernel_profile.h"
#include "mm/vmstat.h"

namespace tlbsim::mm {

class Vma;
class DeferredSplit;
class Lru;

enum class RmapLevel : uint8_t { kPte, kPmd, kPud };

/// rmap_t flags.
enum RmapFlags : uint32_t { kRmapNone = 0, kRmapExclusive = 1u << 0 };

/// folio_test_hugetlb(): hugetlb folios carry this page-type bit on their head page
/// (Linux keeps it in page_type). Bit 23 is unused by PageFlag (orders live in
/// bits 24..31); it belongs in page.h's PageFlag once hugetlb lands there.
inline constexpr PageFlag kPgHugetlb = static_cast<PageFlag>(1u << 23);
inline bool folio_test_hugetlb(Folio folio) { return folio.head().test(kPgHugetlb); }

/// Profile switches the rmap code consults, copied once (no string lookups).
struct RmapConfig {
  bool mm_id = true;
  bool no_page_mapcount = false;
  bool deferred_split_partial_only = true;
  static RmapConfig from(const KernelProfile& p) {
    return RmapConfig{p.mm_id(), p.no_page_mapcount(), p.deferred_split_partial_only()};
  }
};

class Rmap {
 public:
  Rmap(PhysMem& pm, const RmapConfig& cfg, VmStat& vmstat, DeferredSplit* deferred)
      : m_pm(pm), m_cfg(cfg), m_vmstat(vmstat), m_deferred(deferred) {}

  const RmapConfig& config() const { return m_cfg; }
  /// The LRU that new anon folios join (folio_add_lru_vma after
  /// folio_add_new_anon_rmap); none in rmap-only tests.
  void set_lru(Lru* lru) { m_lru = lru; }

  /// folio_add_new_anon_rmap(): first mapping of a fresh anon folio that nobody
  /// else can see; the caller maps all of its pages (PTEs) or its PMD now.
  void folio_add_new_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma, VirtAddr address,
                               uint32_t flags);

  /// folio_add_anon_rmap_ptes(): map `nr` pages starting at `page` of an existing
  /// anon folio (swap-in, PMD split, remove_migration_ptes).
  void folio_add_anon_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                const Vma& vma, VirtAddr address, uint32_t flags);
  void folio_add_anon_rmap_pte(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma,
                               VirtAddr address, uint32_t flags) {
    folio_add_anon_rmap_ptes(ctx, folio, page, 1, vma, address, flags);
  }
  void folio_add_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma,
                               VirtAddr address, uint32_t flags);

  /// folio_add_file_rmap_ptes()/_pte()/_pmd().
  void folio_add_file_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                const Vma& vma);
  void folio_add_file_rmap_pte(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma) {
    folio_add_file_rmap_ptes(ctx, folio, page, 1, vma);
  }
  void folio_add_file_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma);

  /// folio_remove_rmap_ptes()/_pte()/_pmd(): may queue the folio for deferred split.
  void folio_remove_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                              const Vma& vma);
  void folio_remove_rmap_pte(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma) {
    folio_remove_rmap_ptes(ctx, folio, page, 1, vma);
  }
  void folio_remove_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& vma);

  // --- fork: duplicating and sharing mappings (include/linux/rmap.h, §2.6–2.8) -------
  /// folio_try_dup_anon_rmap_ptes(): fork duplicates `nr` PTE mappings of pages
  /// [page, page + nr) of an anon folio from `src_vma` into `dst_vma` (the child).
  /// Clears PageAnonExclusive of every page and adds the child's mappings (per-page
  /// mapcounts, large mapcount with an MM-ID slot for the child). No statistics
  /// change. The caller holds the PT locks and took the folio references first.
  /// Return: 0, or −EBUSY with nothing modified when the folio may be DMA-pinned
  /// (folio_needs_cow_for_dma) and any of the pages is PageAnonExclusive: the
  /// caller must copy those pages for the child instead.
  int folio_try_dup_anon_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                   const Vma& dst_vma, const Vma& src_vma);
  int folio_try_dup_anon_rmap_pte(ExecContext& ctx, Folio folio, Pfn page, const Vma& dst_vma,
                                  const Vma& src_vma) {
    return folio_try_dup_anon_rmap_ptes(ctx, folio, page, 1, dst_vma, src_vma);
  }
  /// folio_try_dup_anon_rmap_pmd(): the same for a PMD-mapped THP (head page's
  /// PageAnonExclusive; entire and large mapcount +1). −EBUSY: split and copy PTEs.
  int folio_try_dup_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& dst_vma,
                                  const Vma& src_vma);
  /// folio_try_share_anon_rmap_pte(): before an exclusive anon page's (already
  /// cleared) PTE becomes a swap/migration entry: −EBUSY if the folio may be
  /// DMA-pinned, else clear PageAnonExclusive. No mapcount change.
  int folio_try_share_anon_rmap_pte(ExecContext& ctx, Folio folio, Pfn page);
  /// folio_try_share_anon_rmap_pmd(): the same for the head page of a PMD mapping.
  int folio_try_share_anon_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page);
  /// folio_dup_file_rmap_ptes(): fork duplicates `nr` PTE mappings of a file folio
  /// into `dst_vma`. Mapcounts only; no statistics (the pages are mapped already).
  void folio_dup_file_rmap_ptes(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                                const Vma& dst_vma);
  void folio_dup_file_rmap_pte(ExecContext& ctx, Folio folio, Pfn page, const Vma& dst_vma) {
    folio_dup_file_rmap_ptes(ctx, folio, page, 1, dst_vma);
  }
  /// folio_dup_file_rmap_pmd(): entire and large mapcount +1 for `dst_vma`.
  void folio_dup_file_rmap_pmd(ExecContext& ctx, Folio folio, Pfn page, const Vma& dst_vma);
  /// folio_needs_cow_for_dma(): MMF_HAS_PINNED on the VMA's mm and the folio may be
  /// DMA-pinned (include/linux/mm.h). Only meaningful during fork.
  static bool folio_needs_cow_for_dma(const Vma& vma, Folio folio);

  // --- anon_vma moves and hugetlb (mm/rmap.c, include/linux/rmap.h, §2.10–2.11) -----
  /// folio_move_anon_rmap(): point an anon folio at `vma`'s own anon_vma, so later
  /// rmap walks only search this process (COW reuse of a small folio, reuse of a
  /// PMD THP, UFFDIO_MOVE). The index is unchanged; no counter changes. The caller
  /// holds the folio lock.
  void folio_move_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma);
  /// hugetlb_add_new_anon_rmap(): first mapping of a new anon hugetlb folio by one
  /// hugetlb PTE/PMD at `address` (inside `vma`): entire and large mapcount 1,
  /// exclusive anon mapping, PageAnonExclusive on the head. No MM-ID, no stats.
  void hugetlb_add_new_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma,
                                 VirtAddr address);
  /// hugetlb_add_anon_rmap(): one more mapping of an anon hugetlb folio (entire and
  /// large mapcount +1); kRmapExclusive sets PageAnonExclusive on the head.
  void hugetlb_add_anon_rmap(ExecContext& ctx, Folio folio, const Vma& vma, VirtAddr address,
                             uint32_t flags);
  /// hugetlb_try_dup_anon_rmap(): fork duplicates a mapping from `src_vma`: −EBUSY
  /// (nothing changed) when the head is PageAnonExclusive and the folio may be
  /// DMA-pinned (the caller copies it); else clear PageAnonExclusive, entire and
  /// large mapcount +1.
  int hugetlb_try_dup_anon_rmap(ExecContext& ctx, Folio folio, const Vma& src_vma);
  /// hugetlb_try_share_anon_rmap(): before an exclusive anon hugetlb mapping becomes
  /// a migration entry: −EBUSY if maybe DMA-pinned, else clear PageAnonExclusive.
  int hugetlb_try_share_anon_rmap(ExecContext& ctx, Folio folio);
  /// hugetlb_add_file_rmap(): one more mapping of a hugetlbfs (file) folio.
  void hugetlb_add_file_rmap(ExecContext& ctx, Folio folio);
  /// hugetlb_remove_rmap(): one mapping gone (entire and large mapcount −1).
  void hugetlb_remove_rmap(ExecContext& ctx, Folio folio);

  // --- large mapcount with MM-ID owner tracking (include/linux/rmap.h) -------------
  /// folio_set_large_mapcount(): brand-new folio, both slots free.
  void folio_set_large_mapcount(Folio folio, int32_t mapcount, const Vma& vma);
  /// folio_add_return_large_mapcount(): returns the new large mapcount.
  int32_t folio_add_return_large_mapcount(Folio folio, int32_t diff, const Vma& vma);
  /// folio_sub_return_large_mapcount(): returns the new large mapcount.
  int32_t folio_sub_return_large_mapcount(Folio folio, int32_t diff, const Vma& vma);

 private:
  /// __folio_add_rmap(): returns {nr newly mapped pages, nr newly PMD-mapped pages}.
  std::pair<int64_t, int64_t> folio_add_rmap(Folio folio, Pfn page, uint64_t nr,
                                             const Vma& vma, RmapLevel level);
  void folio_remove_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                         const Vma& vma, RmapLevel level);
  void sanity_checks(Folio folio, Pfn page, uint64_t nr, RmapLevel level) const;
  /// The struct page lines an rmap call touches: the head (flags, mapping, small
  /// mapcount), page[1] of a large folio (large/entire mapcounts, MM-ID slots) and,
  /// when `per_page`, the line of each of the `nr` pages (per-page _mapcount,
  /// PageAnonExclusive).
  static void touch(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr, bool per_page) {
    ctx.struct_pages(folio.pfn(), folio.test_large() ? 2 : 1);
    if (per_page && folio.test_large()) ctx.struct_pages(page, nr);
  }
  void check_anon_rmap(Folio folio, Pfn page, const Vma& vma, VirtAddr address) const;
  void folio_set_anon(Folio folio, const Vma& vma, VirtAddr address, bool exclusive);
  // fork: __folio_try_dup_anon_rmap() and __folio_dup_file_rmap().
  int folio_try_dup_anon_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                              const Vma& dst_vma, const Vma& src_vma, RmapLevel level);
  void folio_dup_file_rmap(ExecContext& ctx, Folio folio, Pfn page, uint64_t nr,
                           const Vma& dst_vma, RmapLevel level);

  PhysMem& m_pm;
  RmapConfig m_cfg;
  VmStat& m_vmstat;
  DeferredSplit* m_deferred;
  Lru* m_lru = nullptr;
};

}  // namespace tlbsim::mm

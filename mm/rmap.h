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

enum class RmapLevel : uint8_t { kPte, kPmd, kPud };

/// rmap_t flags.
enum RmapFlags : uint32_t { kRmapNone = 0, kRmapExclusive = 1u << 0 };

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
  void check_anon_rmap(Folio folio, Pfn page, const Vma& vma, VirtAddr address) const;
  void folio_set_anon(Folio folio, const Vma& vma, VirtAddr address, bool exclusive);

  PhysMem& m_pm;
  RmapConfig m_cfg;
  VmStat& m_vmstat;
  DeferredSplit* m_deferred;
};

}  // namespace tlbsim::mm

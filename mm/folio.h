// struct folio as a view: the head Page plus, for large folios, the LargeFolio
// record with the mapcount fields. Cheap to copy; valid while the folio lives.
// Derived queries mirror include/linux/mm.h.
#pragma once

#include <cstdint>

#include "mm/phys_mem.h"

namespace tlbsim::mm {

/// GUP_PIN_COUNTING_BIAS (include/linux/mm.h): the references one FOLL_PIN of a
/// small folio takes (a large folio counts pins in _pincount instead).
constexpr int32_t kGupPinCountingBias = 1024;

class Folio {
 public:
  Folio() = default;
  Folio(PhysMem& pm, Pfn head) : m_pm(&pm), m_pfn(head), m_head(&pm.page(head)) {}
  /// page_folio(pfn_to_page(pfn)).
  static Folio of(PhysMem& pm, Pfn pfn) { return Folio(pm, pm.folio_head(pfn)); }

  explicit operator bool() const { return m_head != nullptr; }
  bool operator==(const Folio& o) const { return m_head == o.m_head; }

  Pfn pfn() const { return m_pfn; }
  Page& head() const { return *m_head; }
  /// The i-th page of the folio.
  Page& page(uint64_t i) const { return m_head[i]; }
  Page& page_of(Pfn pfn) const { return m_head[pfn - m_pfn]; }
  uint64_t page_index(Pfn pfn) const { return pfn - m_pfn; }
  PhysMem& phys() const { return *m_pm; }

  unsigned order() const { return m_head->order(); }
  uint64_t nr_pages() const { return uint64_t{1} << order(); }
  bool test_large() const { return order() > 0; }
  bool test_pmd_mappable() const { return order() >= 9; }
  bool test_anon() const { return m_head->test(kPgAnon); }
  bool test_zero() const { return m_head->test(kPgZero); }
  LargeFolio& lf() const { return m_pm->large(*m_head); }

  int32_t ref_count() const { return m_head->refcount; }
  void ref_add(int32_t n) const { m_head->refcount += n; }
  /// folio_put_refs(): returns true when the last reference went.
  bool put_refs(int32_t n) const { return (m_head->refcount -= n) == 0; }

  /// folio_entire_mapcount().
  int32_t entire_mapcount() const { return test_large() ? lf().entire_mapcount : 0; }
  /// folio_large_mapcount().
  int32_t large_mapcount() const { return lf().large_mapcount; }
  /// folio_mapcount(): small folio mapcount, or the large mapcount.
  int32_t mapcount() const { return test_large() ? lf().large_mapcount : m_head->mapcount; }
  /// folio_mapped().
  bool mapped() const { return mapcount() >= 1; }
  /// folio_nr_pages_mapped() (PAGE_MAPCOUNT only).
  int32_t nr_pages_mapped() const { return lf().nr_pages_mapped & kFolioPagesMapped; }
  /// folio_maybe_dma_pinned().
  bool maybe_dma_pinned() const {
    return test_large() ? lf().pincount > 0 : m_head->refcount >= kGupPinCountingBias;
  }
  /// folio_maybe_mapped_shared() (include/linux/mm.h), with CONFIG_MM_ID.
  bool maybe_mapped_shared(bool mm_id_enabled) const {
    const int32_t mc = mapcount();
    if (!test_large()) return mc > 1;
    if (!mm_id_enabled) return true;
    if (mc <= 1) return false;
    return lf().maybe_mapped_shared;
  }
  /// folio_estimated_sharers() (v6.7..v6.9): page_mapcount() of the first page, which
  /// for a large folio adds the entire (PMD) mapcount. Callers treat != 1 as shared.
  int32_t estimated_sharers() const {
    if (!test_large()) return m_head->mapcount;
    return m_head->mapcount + lf().entire_mapcount;
  }
  /// folio_likely_mapped_shared() (v6.10..v6.14): large folios guessed from the first page.
  bool likely_mapped_shared() const {
    const int32_t mc = mapcount();
    if (!test_large()) return mc > 1;
    if (mc <= 1) return false;
    if (entire_mapcount() > 0 || mc > static_cast<int32_t>(nr_pages())) return true;
    return m_head->mapcount > 1;
  }

 private:
  PhysMem* m_pm = nullptr;
  Pfn m_pfn;
  Page* m_head = nullptr;
};

}  // namespace tlbsim::mm

// Physical memory: the frame table, the buddy allocator, folio allocation and the
// storage of page-table pages (which are frames like any other: the hardware
// walker reads their entries by physical address).
#pragma once

#include <array>
#include <deque>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/addr.h"
#include "mm/buddy_allocator.h"
#include "mm/exec_context.h"
#include "mm/lock.h"
#include "mm/page.h"

namespace tlbsim::mm {

inline constexpr unsigned kPtrsPerTable = 512;

/// pcp_allowed_order() (mm/page_alloc.c, Linux 6.x with THP): orders up to
/// PAGE_ALLOC_COSTLY_ORDER (3) and pageblock_order (9) go through the per-CPU page
/// lists; every other order takes the zone lock and the buddy lists directly.
constexpr bool pcp_allowed_order(unsigned order) { return order <= 3 || order == 9; }
using PageTablePage = std::array<uint64_t, kPtrsPerTable>;

/// Told when frames return to the allocator (the TLB coherence checker listens).
class FrameObserver {
 public:
  virtual ~FrameObserver() = default;
  /// Frames [pfn, pfn + nr) were freed; `what` says which kernel path freed them.
  virtual void on_frames_freed(Pfn pfn, uint64_t nr, const char* what) = 0;
  /// Frames [pfn, pfn + nr) were handed out again.
  virtual void on_frames_allocated(Pfn pfn, uint64_t nr) = 0;
};

/// MAX_PAGE_ORDER (include/linux/mmzone.h; MAX_ORDER before 6.8): the largest buddy
/// order, CONFIG_ARCH_FORCE_MAX_ORDER's default of 10 (4 MiB) on x86-64 and on arm64
/// with 4 KiB pages.
inline constexpr unsigned kMaxPageOrder = 10;

class PhysMem {
 public:
  /// `bytes` of memory (rounded down to frames).
  PhysMem(uint64_t bytes, unsigned max_order = kMaxPageOrder);
  /// Sizes the per-CPU page lists (before any task runs).
  void set_nr_cpus(unsigned n) {
    if (m_pcp.size() < n) m_pcp.resize(n, {});
  }

  uint64_t nr_frames() const { return m_pages.size(); }
  Page& page(Pfn pfn) { return m_pages[pfn.value()]; }
  const Page& page(Pfn pfn) const { return m_pages[pfn.value()]; }
  Pfn pfn_of(const Page& p) const { return Pfn(static_cast<uint64_t>(&p - m_pages.data())); }
  bool valid(Pfn pfn) const { return pfn.value() < m_pages.size(); }

  // --- folios -----------------------------------------------------------------
  /// Allocates a folio of `order` with refcount 1 (mapcounts 0). nullopt when no
  /// block of that order is free (callers fall back to smaller orders).
  std::optional<Pfn> alloc_folio(unsigned order);
  /// Returns a folio whose refcount reached 0 to the allocator.
  void free_folio(Pfn head, const char* what);
  /// The same, as kernel code running on `ctx` pays for it: the buddy's fixed work
  /// and its split/merge steps (each touching the buddy's struct page), and
  /// prep_new_page()/prep_compound_page() or free_pages_prepare() with its
  /// free_tail_page_prepare() loop, which touch every struct page of the folio.
  std::optional<Pfn> alloc_folio(ExecContext& ctx, unsigned order);
  void free_folio(ExecContext& ctx, Pfn head, const char* what);
  /// The metadata side of __split_folio_to_order(): turn the folio at `head` into
  /// folios of `new_order`. Folio-wide flags (anon, swap-backed, dirty, file...),
  /// mapping and index (advanced per piece) are copied to every new head; per-page
  /// flags (PageAnonExclusive) and mapcounts stay with their pages. The first piece
  /// keeps the refcount; the others start at 0 (the caller sets them). The old
  /// LargeFolio record is released (the caller unqueued it first).
  void split_folio(Pfn head, unsigned new_order);
  /// The head frame of the folio containing `pfn` (page_folio).
  Pfn folio_head(Pfn pfn) const {
    const Page& p = m_pages[pfn.value()];
    return p.test(kPgTail) ? Pfn(p.index) : pfn;
  }
  LargeFolio& large(const Page& head) { return m_large[head.large]; }
  const LargeFolio& large(const Page& head) const { return m_large[head.large]; }
  LargeFolio& large_at(uint32_t index) { return m_large[index]; }

  // --- page tables ------------------------------------------------------------
  /// Allocates a zeroed page-table page (order-0 frame marked PageTable).
  std::optional<Pfn> alloc_page_table();
  void free_page_table(Pfn pfn, const char* what);
  /// The same, paid by kernel code on `ctx` (pte_alloc_one: allocation, the
  /// struct page (ptdesc) and zeroing the table's 64 lines; pte_free).
  std::optional<Pfn> alloc_page_table(ExecContext& ctx);
  void free_page_table(ExecContext& ctx, Pfn pfn, const char* what);
  PageTablePage& table(Pfn pfn) { return m_tables[m_pages[pfn.value()].mapping]; }
  /// The page-table page's lock (ptdesc->ptl): the split PTE lock of a PTE table,
  /// pmd_lock() of a PMD table (the installer sets the class).
  KernelLock& ptl(Pfn table) { return m_table_locks[m_pages[table.value()].mapping]; }
  const PageTablePage& table(Pfn pfn) const { return m_tables[m_pages[pfn.value()].mapping]; }
  /// Reads the 64-bit entry at physical address `pa` of a page-table page (walker).
  uint64_t read_entry(PhysAddr pa) const {
    return table(pa.pfn())[(pa.value() & (kPageSize - 1)) >> 3];
  }
  uint64_t* entry_ptr(PhysAddr pa) { return &table(pa.pfn())[(pa.value() & (kPageSize - 1)) >> 3]; }
  bool is_page_table(Pfn pfn) const { return m_pages[pfn.value()].test(kPgPageTable); }

  // --- the zone lock and the per-CPU lists ----------------------------------------
  /// zone->lock (one zone). The ctx allocation paths take it as Linux does: every
  /// allocation and free of an order the per-CPU lists do not hold
  /// (rmqueue_buddy, free_one_page), and for the others when a CPU's list must be
  /// refilled (rmqueue_bulk, pcp->batch pages) or has grown past pcp->high
  /// (free_pcppages_bulk). The per-CPU lists are counted, not kept: the frames
  /// still come from and go to the buddy lists directly.
  KernelLock zone_lock{LockClass::kZone};
  /// pcp->batch and pcp->high in pages (zone_batchsize() of a zone of ≥ 1 GiB; the
  /// lower end of the 6.7+ auto-tuned high for a few GiB on a few CPUs).
  static constexpr uint64_t kPcpBatch = 63;
  static constexpr uint64_t kPcpHigh = 512;

  // --- state ------------------------------------------------------------------
  const BuddyAllocator& buddy() const { return m_buddy; }
  uint64_t nr_free_pages() const { return m_buddy.nr_free_pages(); }
  uint64_t nr_page_tables() const { return m_nr_tables; }
  uint64_t nr_large_folios() const { return m_nr_large; }
  unsigned max_order() const { return m_max_order; }
  void set_observer(FrameObserver* o) { m_observer = o; }

 private:
  unsigned m_max_order;
  std::vector<Page> m_pages;
  BuddyAllocator m_buddy;
  // deques: references stay valid while new tables/folios are allocated mid-walk.
  std::deque<LargeFolio> m_large;       // slot 0 unused
  std::vector<uint32_t> m_large_free;   // free slots of m_large
  std::deque<PageTablePage> m_tables;   // page-table contents
  std::deque<KernelLock> m_table_locks; // their locks, by the same slot
  std::vector<uint64_t> m_tables_free;  // free slots of m_tables
  uint64_t m_nr_tables = 0;
  uint64_t m_nr_large = 0;
  FrameObserver* m_observer = nullptr;
  /// Pages on each CPU's per-CPU lists, by pcp list (order 0..3, PMD order).
  std::vector<std::array<uint64_t, 5>> m_pcp;  // per CPU (sized by set_nr_cpus)
  uint64_t& pcp_count(unsigned cpu, unsigned order) {
    if (m_pcp.size() <= cpu) m_pcp.resize(cpu + 1, {});
    return m_pcp[cpu][order <= 3 ? order : 4];
  }
};

}  // namespace tlbsim::mm

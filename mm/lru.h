// The LRU list of reclaimable folios (mm/swap.c lru_add, mm/vmscan.c): one list
// for anon and file folios alike, oldest at the tail, where reclaim scans.
//
// Linux keeps active and inactive lists per type and ages folios by their accessed
// bits; the simulator keeps one list in first-use order and reclaims from the
// tail without consulting accessed bits (reclaim_pages() / MADV_PAGEOUT behave
// that way in Linux: ignore_references). MADV_COLD moves a folio to the tail.
//
// Membership is PG_lru on the head page. The links are per frame, kept beside the
// frame table (Page has no room left at 32 bytes), so add, delete and move are
// O(1). Frame 0 is never a folio, so 0 ends a list.
#pragma once

#include <cstdint>
#include <vector>

#include "mm/exec_context.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

class Lru {
 public:
  /// Sizes the per-CPU batches (before any task runs).
  void set_nr_cpus(unsigned n) {
    if (m_add_batch.size() < n) m_add_batch.resize(n, 0);
    if (m_free_batch.size() < n) m_free_batch.resize(n, 0);
  }

  explicit Lru(PhysMem& pm)
      : m_pm(pm), m_prev(pm.nr_frames(), 0), m_next(pm.nr_frames(), 0) {}

  /// lruvec->lru_lock (one lruvec: one node, one memcg), taken with interrupts off.
  KernelLock lru_lock{LockClass::kLru};
  /// PAGEVEC_SIZE: folios per per-CPU batch (31 from Linux 6.9, 15 before).
  void set_batch_size(unsigned n) { m_batch_size = n; }

  /// folio_add_lru() with its per-CPU batch (cpu_fbatches.lru_add): the folio is
  /// listed now; lru_lock is taken when this CPU's batch fills, or at once for a
  /// large folio (folio_batch_move_lru).
  void add(ExecContext& ctx, Pfn head, bool large);
  /// folios_put_refs() freeing a listed folio: lru_lock is taken once per batch of
  /// freed folios on this CPU (__page_cache_release, relocked per batch).
  void del_freed(ExecContext& ctx, Pfn head);

  /// folio_add_lru(): a folio becomes reclaimable (new anon folio mapped, page-cache
  /// folio created); it goes to the head (youngest end). No-op if already listed.
  void add(Pfn head);
  /// Links `tail` right after `after` (lru_add_split_folio: the pieces of a split
  /// folio keep its age). Sets PG_lru on `tail`.
  void add_after(Pfn after, Pfn tail);
  /// folio_isolate_lru() / removal when freed: unlink and clear PG_lru. No-op if the
  /// folio is not listed.
  void del(Pfn head);
  /// folio_deactivate() (MADV_COLD): move to the tail, reclaimed first.
  void move_to_tail(Pfn head);

  /// The oldest folio (0 when empty) and the next younger one after `head`.
  Pfn tail() const { return Pfn(m_tail); }
  Pfn younger(Pfn head) const { return Pfn(m_prev[head.value()]); }
  uint64_t length() const { return m_len; }
  bool contains(Pfn head) const { return m_pm.page(head).test(kPgLru); }

 private:
  PhysMem& m_pm;
  // Per frame: towards the head (younger) and towards the tail (older).
  std::vector<uint32_t> m_prev, m_next;
  uint32_t m_head = 0, m_tail = 0;
  uint64_t m_len = 0;
  unsigned m_batch_size = 31;
  std::vector<unsigned> m_add_batch, m_free_batch;  // per CPU: folios in the batch
  unsigned& slot(std::vector<unsigned>& v, unsigned cpu) {
    if (v.size() <= cpu) v.resize(cpu + 1, 0);
    return v[cpu];
  }
};

}  // namespace tlbsim::mm

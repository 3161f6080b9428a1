// The deferred split queue (mm/huge_memory.c): large anon folios that may hold
// unmapped pages wait here until memory pressure splits them (issue: the
// shrinker, deferred_split_scan, comes with the reclaim work).
#pragma once

#include <cstdint>

#include "mm/exec_context.h"
#include "mm/folio.h"
#include "mm/vmstat.h"

namespace tlbsim::mm {

class DeferredSplit {
 public:
  DeferredSplit(PhysMem& pm, VmStat& vmstat) : m_pm(pm), m_vmstat(vmstat) {}

  /// split_queue_lock (one queue: one node, no memcg), taken with interrupts off.
  KernelLock split_queue_lock{LockClass::kDeferredSplit};

  /// deferred_split_folio(folio, partially_mapped): queue the folio (order ≥ 2 only;
  /// order-1 folios have no room for the list head). Marks it partially mapped when
  /// asked and counts split_deferred / nr_anon_partially_mapped once per folio.
  /// Under split_queue_lock unless there is nothing to do (the lockless early exit).
  void deferred_split_folio(ExecContext& ctx, Folio folio, bool partially_mapped);
  /// folio_unqueue_deferred_split(): called when the folio is freed or split; takes
  /// the lock only when the folio is queued or marked.
  void unqueue(ExecContext& ctx, Folio folio);
  /// The same without the lock, for a caller that holds it (deferred_split_scan).
  void unqueue_locked(Folio folio);

  uint64_t length() const { return m_len; }
  /// Oldest queued folio's LargeFolio slot (0 when empty), for the shrinker.
  uint32_t first() const { return m_head; }

 private:
  PhysMem& m_pm;
  VmStat& m_vmstat;
  uint32_t m_head = 0, m_tail = 0;  // LargeFolio slots; 0 = none
  uint64_t m_len = 0;
};

}  // namespace tlbsim::mm

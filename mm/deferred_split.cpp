#include "mm/deferred_split.h"

namespace tlbsim::mm {

void DeferredSplit::deferred_split_folio(ExecContext& ctx, Folio folio, bool partially_mapped) {
  // Mirrors mm/huge_memory.c:deferred_split_folio().
  if (folio.order() <= 1) return;
  LargeFolio& lf = folio.lf();
  if (lf.on_deferred_list && (!partially_mapped || lf.partially_mapped)) return;
  ScopedLock lock(ctx, split_queue_lock);
  if (partially_mapped) {
    if (!lf.partially_mapped) {
      lf.partially_mapped = true;
      if (folio.test_pmd_mappable()) ++m_vmstat.thp_deferred_split_page;
      ++m_vmstat.mthp[folio.order()]->split_deferred;
      ++m_vmstat.mthp[folio.order()]->nr_anon_partially_mapped;
    }
  }
  if (lf.on_deferred_list) return;
  const uint32_t slot = folio.head().large;
  lf.on_deferred_list = true;
  lf.deferred_prev = m_tail;
  lf.deferred_next = 0;
  if (m_tail) m_pm.large_at(m_tail).deferred_next = slot;
  else m_head = slot;
  m_tail = slot;
  ++m_len;
}

void DeferredSplit::unqueue(ExecContext& ctx, Folio folio) {
  if (!folio.test_large()) return;
  LargeFolio& lf = folio.lf();
  if (!lf.partially_mapped && !lf.on_deferred_list) return;
  ScopedLock lock(ctx, split_queue_lock);
  unqueue_locked(folio);
}

void DeferredSplit::unqueue_locked(Folio folio) {
  if (!folio.test_large()) return;
  LargeFolio& lf = folio.lf();
  if (lf.partially_mapped) {
    lf.partially_mapped = false;
    --m_vmstat.mthp[folio.order()]->nr_anon_partially_mapped;
  }
  if (!lf.on_deferred_list) return;
  const uint32_t slot = folio.head().large;
  if (lf.deferred_prev) m_pm.large_at(lf.deferred_prev).deferred_next = lf.deferred_next;
  else m_head = lf.deferred_next;
  if (lf.deferred_next) m_pm.large_at(lf.deferred_next).deferred_prev = lf.deferred_prev;
  else m_tail = lf.deferred_prev;
  (void)slot;
  lf.on_deferred_list = false;
  lf.deferred_prev = lf.deferred_next = 0;
  --m_len;
}

}  // namespace tlbsim::mm

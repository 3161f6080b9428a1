#include "mm/lru.h"

namespace tlbsim::mm {

void Lru::add(Pfn head) {
  Page& p = m_pm.page(head);
  if (p.test(kPgLru)) return;
  p.set(kPgLru);
  const auto f = static_cast<uint32_t>(head.value());
  m_prev[f] = 0;
  m_next[f] = m_head;
  if (m_head) m_prev[m_head] = f;
  else m_tail = f;
  m_head = f;
  ++m_len;
}

void Lru::add(ExecContext& ctx, Pfn head, bool large) {
  if (m_pm.page(head).test(kPgLru)) return;
  add(head);
  unsigned& n = slot(m_add_batch, ctx.cpu);
  if (large || ++n >= m_batch_size) {
    n = 0;
    ScopedLock lock(ctx, lru_lock);  // folio_batch_move_lru()
  }
}

void Lru::del_freed(ExecContext& ctx, Pfn head) {
  if (!m_pm.page(head).test(kPgLru)) return;
  unsigned& n = slot(m_free_batch, ctx.cpu);
  if (n++ % m_batch_size == 0) {
    ScopedLock lock(ctx, lru_lock);  // folio_lruvec_relock_irqsave()
    del(head);
    return;
  }
  del(head);
}

void Lru::add_after(Pfn after, Pfn tail) {
  const auto a = static_cast<uint32_t>(after.value());
  const auto f = static_cast<uint32_t>(tail.value());
  m_pm.page(tail).set(kPgLru);
  m_prev[f] = a;
  m_next[f] = m_next[a];
  if (m_next[a]) m_prev[m_next[a]] = f;
  else m_tail = f;
  m_next[a] = f;
  ++m_len;
}

void Lru::del(Pfn head) {
  Page& p = m_pm.page(head);
  if (!p.test(kPgLru)) return;
  p.clear(kPgLru);
  const auto f = static_cast<uint32_t>(head.value());
  if (m_prev[f]) m_next[m_prev[f]] = m_next[f];
  else m_head = m_next[f];
  if (m_next[f]) m_prev[m_next[f]] = m_prev[f];
  else m_tail = m_prev[f];
  m_prev[f] = m_next[f] = 0;
  --m_len;
}

void Lru::move_to_tail(Pfn head) {
  if (!m_pm.page(head).test(kPgLru) || m_tail == head.value()) return;
  del(head);
  Page& p = m_pm.page(head);
  p.set(kPgLru);
  const auto f = static_cast<uint32_t>(head.value());
  m_next[f] = 0;
  m_prev[f] = m_tail;
  if (m_tail) m_next[m_tail] = f;
  else m_head = f;
  m_tail = f;
  ++m_len;
}

}  // namespace tlbsim::mm

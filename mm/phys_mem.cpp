#include "mm/phys_mem.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tlbsim::mm {

PhysMem::PhysMem(uint64_t bytes, unsigned max_order)
    : m_max_order(max_order),
      m_pages(bytes >> kPageShift),
      m_buddy(bytes >> kPageShift, max_order),
      m_large(1) {}

std::optional<Pfn> PhysMem::alloc_folio(unsigned order) {
  auto pfn = m_buddy.alloc(order);
  if (!pfn) return std::nullopt;
  const uint64_t nr = uint64_t{1} << order;
  Page& head = m_pages[pfn->value()];
  head = Page{};
  head.set(kPgHead);
  head.set_order(order);
  head.refcount = 1;
  for (uint64_t i = 1; i < nr; ++i) {
    Page& t = m_pages[pfn->value() + i];
    t = Page{};
    t.set(kPgTail);
    t.index = pfn->value();
  }
  if (order > 0) {
    uint32_t slot;
    if (!m_large_free.empty()) {
      slot = m_large_free.back();
      m_large_free.pop_back();
    } else {
      slot = static_cast<uint32_t>(m_large.size());
      m_large.emplace_back();
    }
    m_large[slot] = LargeFolio{};
    m_large[slot].head_pfn = pfn->value();
    head.large = slot;
    ++m_nr_large;
  }
  if (m_observer) m_observer->on_frames_allocated(*pfn, nr);
  return pfn;
}

std::optional<Pfn> PhysMem::alloc_folio(ExecContext& ctx, unsigned order) {
  const uint64_t nr = uint64_t{1} << order;
  // The split steps of this allocation alone: the buddy call itself never waits, the
  // zone lock before it may (and other CPUs allocate meanwhile).
  uint64_t steps = 0;
  auto buddy_alloc = [&](unsigned o) {
    const uint64_t splits = m_buddy.nr_splits();
    auto r = alloc_folio(o);
    steps = m_buddy.nr_splits() - splits;
    return r;
  };
  std::optional<Pfn> pfn;
  if (pcp_allowed_order(order)) {
    // rmqueue_pcplist(): an empty list is refilled under the zone lock (m_pcp is
    // sized once, set_nr_cpus, so the reference survives the wait).
    uint64_t& pcp = pcp_count(ctx.cpu, order);
    if (pcp < nr) {
      ScopedLock zone(ctx, zone_lock);
      pcp += std::max<uint64_t>(kPcpBatch >> order, 2) << order;
    }
    pfn = buddy_alloc(order);
    if (pfn) pcp -= nr;
  } else {
    ScopedLock zone(ctx, zone_lock);  // rmqueue_buddy()
    pfn = buddy_alloc(order);
  }
  if (!pfn) return pfn;
  ctx.count(pcp_allowed_order(order) ? KOp::kPageAlloc : KOp::kPageAllocBuddy);
  ctx.count(KOp::kPageAllocTail, nr - 1);
  if (order) ctx.count(KOp::kFolioPrepLarge);
  ctx.count(KOp::kBuddyMerge, steps);
  ctx.struct_pages(*pfn, nr);
  // expand(): each split step marks the upper half's head free (its struct page).
  for (uint64_t s = 0; s < steps; ++s) ctx.struct_pages(*pfn + (nr << s));
  return pfn;
}

void PhysMem::free_folio(ExecContext& ctx, Pfn head, const char* what) {
  const unsigned order = m_pages[head.value()].order();
  const uint64_t nr = uint64_t{1} << order;
  // The merge steps of this free alone (the zone lock before it may wait while
  // other CPUs free).
  uint64_t steps = 0;
  auto buddy_free = [&](Pfn h, const char* w) {
    const uint64_t merges = m_buddy.nr_merges();
    free_folio(h, w);
    steps = m_buddy.nr_merges() - merges;
  };
  ctx.count(pcp_allowed_order(order) ? KOp::kPageFree : KOp::kPageFreeBuddy);
  ctx.count(KOp::kPageFreeTail, nr - 1);
  if (order) ctx.count(KOp::kFolioFreeLarge);
  ctx.struct_pages(head, nr);
  if (pcp_allowed_order(order)) {
    // free_frozen_page_commit(): past pcp->high, free_pcppages_bulk() under the
    // zone lock.
    uint64_t& pcp = pcp_count(ctx.cpu, order);
    pcp += nr;
    if (pcp >= kPcpHigh) {
      ScopedLock zone(ctx, zone_lock);
      pcp -= std::min(pcp, kPcpHigh - kPcpBatch);
    }
    buddy_free(head, what);
  } else {
    ScopedLock zone(ctx, zone_lock);  // free_one_page()
    buddy_free(head, what);
  }
  ctx.count(KOp::kBuddyMerge, steps);
  // __free_one_page(): each merge step reads the buddy's struct page.
  for (uint64_t s = 0; s < steps; ++s) {
    const uint64_t block = head.value() & ~((nr << s) - 1);
    ctx.struct_pages(Pfn(block ^ (nr << s)));
  }
}

std::optional<Pfn> PhysMem::alloc_page_table(ExecContext& ctx) {
  // pte_alloc_one(): an order-0 page (__GFP_ZERO) and pagetable_pte_ctor().
  uint64_t& pcp = pcp_count(ctx.cpu, 0);
  if (pcp < 1) {
    ScopedLock zone(ctx, zone_lock);
    pcp += kPcpBatch;
  }
  auto pfn = alloc_page_table();
  if (!pfn) return pfn;
  --pcp;
  ctx.count(KOp::kPageAlloc);
  ctx.count(KOp::kPtAlloc);
  ctx.struct_pages(*pfn);
  ctx.zero_pages(*pfn);
  return pfn;
}

void PhysMem::free_page_table(ExecContext& ctx, Pfn pfn, const char* what) {
  // pte_free(): pagetable_dtor() and an order-0 free.
  ctx.count(KOp::kPtFree);
  ctx.count(KOp::kPageFree);
  ctx.struct_pages(pfn);
  uint64_t& pcp = pcp_count(ctx.cpu, 0);
  if (++pcp >= kPcpHigh) {
    ScopedLock zone(ctx, zone_lock);
    pcp -= kPcpHigh - kPcpBatch;
  }
  free_page_table(pfn, what);
}

void PhysMem::free_folio(Pfn head_pfn, const char* what) {
  Page& head = m_pages[head_pfn.value()];
  if (!head.test(kPgHead) || head.refcount != 0)
    throw std::logic_error("free_folio: frame " + std::to_string(head_pfn.value()) +
                           " is not a folio head with refcount 0");
  const unsigned order = head.order();
  if (order > 0) {
    m_large_free.push_back(head.large);
    --m_nr_large;
  }
  const uint64_t nr = uint64_t{1} << order;
  for (uint64_t i = 0; i < nr; ++i) m_pages[head_pfn.value() + i] = Page{};
  m_buddy.free(head_pfn, order);
  if (m_observer) m_observer->on_frames_freed(head_pfn, nr, what);
}

void PhysMem::split_folio(Pfn head_pfn, unsigned new_order) {
  Page& head = m_pages[head_pfn.value()];
  const unsigned order = head.order();
  if (!head.test(kPgHead) || new_order >= order)
    throw std::logic_error("split_folio: frame " + std::to_string(head_pfn.value()) +
                           " is not a folio head of order > " + std::to_string(new_order));
  constexpr uint32_t kPerPage = kPgAnonExclusive;
  const uint32_t folio_flags = head.flags & ~(kPerPage | kPgHead | kPgTail) &
                               ((1u << kOrderShift) - 1);
  m_buddy.split(head_pfn, order, new_order);
  m_large_free.push_back(head.large);
  --m_nr_large;
  const uint64_t nr = uint64_t{1} << order, step = uint64_t{1} << new_order;
  const uint64_t mapping = head.mapping, index = head.index;
  for (uint64_t off = 0; off < nr; off += step) {
    for (uint64_t i = 0; i < step; ++i) {
      Page& p = m_pages[head_pfn.value() + off + i];
      const uint32_t keep = p.flags & kPerPage;
      if (i == 0) {
        p.flags = folio_flags | keep | kPgHead;
        p.set_order(new_order);
        p.mapping = mapping;
        p.index = index + off;
        p.large = 0;
        if (off != 0) p.refcount = 0;
        if (new_order > 0) {
          uint32_t slot;
          if (!m_large_free.empty()) {
            slot = m_large_free.back();
            m_large_free.pop_back();
          } else {
            slot = static_cast<uint32_t>(m_large.size());
            m_large.emplace_back();
          }
          m_large[slot] = LargeFolio{};
          m_large[slot].head_pfn = head_pfn.value() + off;
          p.large = slot;
          ++m_nr_large;
        }
      } else {
        p.flags = keep | kPgTail;
        p.index = head_pfn.value() + off;
        p.mapping = 0;
        p.refcount = 0;
      }
    }
  }
}

std::optional<Pfn> PhysMem::alloc_page_table() {
  auto pfn = m_buddy.alloc(0);
  if (!pfn) return std::nullopt;
  Page& p = m_pages[pfn->value()];
  p = Page{};
  p.set(kPgPageTable);
  p.refcount = 1;
  uint64_t slot;
  if (!m_tables_free.empty()) {
    slot = m_tables_free.back();
    m_tables_free.pop_back();
    m_tables[slot].fill(0);
    m_table_locks[slot].reset(LockClass::kPtl);
  } else {
    slot = m_tables.size();
    m_tables.emplace_back();
    m_tables[slot].fill(0);
    m_table_locks.emplace_back(LockClass::kPtl);
  }
  p.mapping = slot;
  ++m_nr_tables;
  if (m_observer) m_observer->on_frames_allocated(*pfn, 1);
  return pfn;
}

void PhysMem::free_page_table(Pfn pfn, const char* what) {
  Page& p = m_pages[pfn.value()];
  if (!p.test(kPgPageTable)) throw std::logic_error("free_page_table: not a page table");
  m_tables_free.push_back(p.mapping);
  p = Page{};
  --m_nr_tables;
  m_buddy.free(pfn, 0);
  if (m_observer) m_observer->on_frames_freed(pfn, 1, what);
}

}  // namespace tlbsim::mm

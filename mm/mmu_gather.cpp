#include "mm/mmu_gather.h"

#include <stdexcept>

#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"

namespace tlbsim::mm {

MmuGather::MmuGather(Kernel& kernel, ExecContext& ctx, Mm& mm, bool fullmm)
    : m_kernel(kernel), m_ctx(ctx), m_mm(mm), m_fullmm(fullmm) {
  // Mirrors mm/mmu_gather.c:__tlb_gather_mmu().
  m_batches.push_back(Batch{{}, kMmuGatherBundle, Pfn()});
  m_batches[0].slots.reserve(kMmuGatherBundle);
  reset_range();
  ++m_mm.tlb_flush_pending;  // inc_tlb_flush_pending
}

MmuGather::~MmuGather() noexcept(false) {
  if (!m_finished && !std::uncaught_exceptions())
    throw std::logic_error("mmu_gather destroyed without tlb_finish_mmu");
}

void MmuGather::reset_range() {
  // Mirrors include/asm-generic/tlb.h:__tlb_reset_range().
  if (m_fullmm) {
    m_start = VirtAddr(~0ull);
    m_end = VirtAddr(~0ull);
  } else {
    m_start = VirtAddr(~0ull);
    m_end = VirtAddr(0);
  }
  m_freed_tables = false;
  m_cleared_ptes = m_cleared_pmds = m_cleared_puds = m_cleared_p4ds = false;
}

void MmuGather::free_table_tlb(Pfn table, unsigned level, VirtAddr addr) {
  // pte_free_tlb → cleared_pmds; pmd_free_tlb → cleared_puds; pud_free_tlb →
  // cleared_p4ds; p4d_free_tlb → freed_tables only.
  if (!m_fullmm) adjust_range(addr, kPageSize);
  if (level == 1) m_cleared_pmds = true;
  else if (level == 2) m_cleared_puds = true;
  else if (level == 3) m_cleared_p4ds = true;
  m_freed_tables = true;
  m_tables.push_back(table);
  m_ctx.count(KOp::kGatherEntry);
}

uint64_t MmuGather::pending_items() const {
  uint64_t n = 0;
  for (const auto& b : m_batches) n += b.slots.size();
  return n;
}

bool MmuGather::next_batch() {
  // Mirrors mm/mmu_gather.c:tlb_next_batch().
  if (m_delayed_rmap && m_active != 0) return false;  // delayed rmaps live in local + 1
  if (m_active + 1 < m_batches.size()) {
    ++m_active;
    return true;
  }
  if (m_batch_count == kMaxGatherBatchCount) return false;
  // __get_free_page(GFP_NOWAIT): the batch is a real kernel page.
  auto frame = m_kernel.phys().alloc_folio(m_ctx, 0);
  if (!frame) return false;
  Batch b{{}, kMaxGatherBatch, *frame};
  b.slots.reserve(kMaxGatherBatch);
  m_batches.push_back(std::move(b));
  ++m_batch_count;
  ++m_kernel.flush_stats().gather_batches;
  m_active = m_batches.size() - 1;
  return true;
}

bool MmuGather::tlb_remove_folio_pages(Pfn page, uint64_t nr, bool delay_rmap) {
  // Mirrors mm/mmu_gather.c:__tlb_remove_folio_pages_size().
  m_ctx.count(KOp::kGatherEntry);
  Batch& b = m_batches[m_active];
  const uint64_t flags = delay_rmap ? kEncodedPageBitDelayRmap : 0;
  if (nr == 1) {
    b.slots.push_back((page.value() << 2) | flags);
  } else {
    b.slots.push_back((page.value() << 2) | flags | kEncodedPageBitNrPagesNext);
    b.slots.push_back(nr << 2);
  }
  if (delay_rmap) m_delayed_rmap = true;
  if (b.slots.size() >= b.max - 1) {
    if (!next_batch()) return true;
  }
  return false;
}

void MmuGather::tlb_flush_mmu_tlbonly() {
  // Mirrors include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly().
  if (!(m_freed_tables || m_cleared_ptes || m_cleared_pmds || m_cleared_puds || m_cleared_p4ds))
    return;
  TlbFlushRequest req;
  req.start = m_start;
  req.end = m_end;
  req.fullmm = m_fullmm;
  req.freed_tables = m_freed_tables;
  req.cleared_ptes = m_cleared_ptes;
  req.cleared_pmds = m_cleared_pmds;
  req.cleared_puds = m_cleared_puds;
  req.cleared_p4ds = m_cleared_p4ds;
  ++m_kernel.flush_stats().gather_flushes;
  m_kernel.tlb_flush(m_ctx, m_mm, req);
  reset_range();
}

void MmuGather::tlb_flush_rmaps(const Vma& vma) {
  // Mirrors mm/mmu_gather.c:tlb_flush_rmaps(): walk local and (if different) active.
  if (!m_delayed_rmap) return;
  auto walk = [&](Batch& b) {
    for (size_t i = 0; i < b.slots.size(); ++i) {
      const uint64_t e = b.slots[i];
      uint64_t nr = 1;
      if (e & kEncodedPageBitNrPagesNext) nr = b.slots[++i] >> 2;
      if (!(e & kEncodedPageBitDelayRmap)) continue;
      const Pfn page(e >> 2);
      Folio folio = Folio::of(m_kernel.phys(), page);
      m_kernel.rmap().folio_remove_rmap_ptes(m_ctx, folio, page, nr, vma);
    }
  };
  walk(m_batches[0]);
  if (m_active != 0) walk(m_batches[m_active]);
  m_delayed_rmap = false;
}

void MmuGather::batch_pages_flush() {
  // Mirrors mm/mmu_gather.c:tlb_batch_pages_flush() → free_pages_and_swap_cache():
  // one folio_put_refs(nr) per item.
  uint64_t pages = 0;
  for (size_t bi = 0; bi <= m_active; ++bi) {
    Batch& b = m_batches[bi];
    for (size_t i = 0; i < b.slots.size(); ++i) {
      const uint64_t e = b.slots[i];
      uint64_t nr = 1;
      if (e & kEncodedPageBitNrPagesNext) nr = b.slots[++i] >> 2;
      const Pfn page(e >> 2);
      Folio folio = Folio::of(m_kernel.phys(), page);
      if (folio.head().test(kPgSwapCache)) m_kernel.free_swap_cache(m_ctx, folio);
      m_kernel.folio_put_refs(m_ctx, m_kernel.phys().folio_head(page), static_cast<int32_t>(nr),
                              "tlb_batch_pages_flush");
      pages += nr;
    }
    b.slots.clear();
  }
  if (pages) m_kernel.flush_stats().gather_pages.sample(pages);
  m_active = 0;
}

void MmuGather::free_tables() {
  // x86 and arm64 select MMU_GATHER_RCU_TABLE_FREE: tables are released after the
  // flush (the RCU grace period itself is not modelled).
  for (Pfn t : m_tables) {
    m_kernel.phys().free_page_table(m_ctx, t, "tlb_remove_table");
    m_mm.add_pgtables(-1);
  }
  m_tables.clear();
}

void MmuGather::tlb_flush_mmu() {
  // Mirrors mm/mmu_gather.c:tlb_flush_mmu(): TLB first, then tables, then pages.
  if (m_kernel.debug_free_before_flush()) {
    batch_pages_flush();  // BROKEN ON PURPOSE: frees before the invalidation.
    free_tables();
    tlb_flush_mmu_tlbonly();
    return;
  }
  tlb_flush_mmu_tlbonly();
  free_tables();
  batch_pages_flush();
}

void MmuGather::tlb_end_vma(const Vma& vma) {
  // x86 selects MMU_GATHER_MERGE_VMAS: nothing per VMA. arm64 flushes per VMA.
  (void)vma;
  if (m_fullmm || m_kernel.arch().arch() == Arch::kX86_64) return;
  tlb_flush_mmu_tlbonly();
}

void MmuGather::tlb_finish_mmu() {
  // Mirrors mm/mmu_gather.c:tlb_finish_mmu().
  if (m_mm.tlb_flush_pending > 1) {  // mm_tlb_flush_nested
    ++m_kernel.vmstat().tlb_flush_nested;
    m_fullmm = true;
    reset_range();
    m_freed_tables = true;
  }
  tlb_flush_mmu();
  for (size_t i = 1; i < m_batches.size(); ++i) {
    Folio f(m_kernel.phys(), m_batches[i].frame);
    f.put_refs(1);
    m_kernel.phys().free_folio(m_ctx, m_batches[i].frame, "tlb_finish_mmu(batch page)");
  }
  m_batches.resize(1);
  --m_mm.tlb_flush_pending;
  m_finished = true;
}

}  // namespace tlbsim::mm

// struct mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c): batches the
// teardown of user mappings so the TLB is flushed once per batch, not per page.
//
// ORDERING CONTRACT — the reason this component exists:
//   1. entries are unhooked from the page tables (zap_pte_range clears PTEs and
//      records the range here);
//   2. the TLB is invalidated for that range on every CPU that may cache it
//      (tlb_flush_mmu_tlbonly → ArchMmu::tlb_flush, which returns only when all
//      IPIs are acknowledged / the DSB completed);
//   3. only then are the gathered pages and page tables freed (tlb_batch_pages_flush,
//      table freeing).
// Pages can only leave through tlb_flush_mmu(), which always performs step 2
// first; there is no other path that frees gathered pages. (The broken switch
// debug_free_before_flush exists to prove the coherence checker catches a violation.)
//
// Capacity mirrors Linux on 64-bit/4 KiB: an embedded bundle of 8 slots, then up to
// MAX_GATHER_BATCH_COUNT = 19 page-sized batches of MAX_GATHER_BATCH = 510 slots;
// a range of one folio takes 2 slots (page + nr_pages). When no room is left the
// caller must flush (force_flush) — the 9,678th single-page item reports "full".
#pragma once

#include <cstdint>
#include <vector>

#include "base/addr.h"
#include "mm/arch_mmu.h"
#include "mm/exec_context.h"

namespace tlbsim::mm {

class Kernel;
class Mm;
class Vma;

inline constexpr unsigned kMmuGatherBundle = 8;
inline constexpr unsigned kMaxGatherBatch = 510;
inline constexpr unsigned kMaxGatherBatchCount = 10000 / kMaxGatherBatch;  // 19

class MmuGather {
 public:
  /// tlb_gather_mmu() / tlb_gather_mmu_fullmm().
  MmuGather(Kernel& kernel, ExecContext& ctx, Mm& mm, bool fullmm);
  /// tlb_finish_mmu() must have been called; the destructor only checks it.
  ~MmuGather() noexcept(false);
  MmuGather(const MmuGather&) = delete;
  MmuGather& operator=(const MmuGather&) = delete;

  Mm& mm() const { return m_mm; }
  ExecContext& ctx() const { return m_ctx; }
  bool fullmm() const { return m_fullmm; }

  // --- range tracking (__tlb_adjust_range, tlb_flush_*_range) ------------------
  /// tlb_remove_tlb_entries(): PTEs [addr, addr + nr pages) were cleared.
  void tlb_remove_tlb_entries(VirtAddr addr, uint64_t nr) {
    adjust_range(addr, nr * kPageSize);
    m_cleared_ptes = true;
  }
  /// tlb_flush_pte_range(): PTEs in [addr, addr + size) changed and need a flush
  /// (mprotect's change_pte_range).
  void tlb_flush_pte_range(VirtAddr addr, uint64_t size) {
    adjust_range(addr, size);
    m_cleared_ptes = true;
  }
  /// tlb_remove_pmd_tlb_entry(): a PMD leaf at addr was cleared.
  void tlb_remove_pmd_tlb_entry(VirtAddr addr) {
    adjust_range(addr, uint64_t{1} << 21);
    m_cleared_pmds = true;
  }
  /// pte_free_tlb / pmd_free_tlb / pud_free_tlb / p4d_free_tlb: a table at `level`
  /// (1 = PTE table) mapping `addr` was unhooked; it is freed after the flush.
  void free_table_tlb(Pfn table, unsigned level, VirtAddr addr);

  // --- page batching ------------------------------------------------------------
  /// __tlb_remove_folio_pages(): queue `nr` references of consecutive pages of one
  /// folio starting at `page`. Returns true when the gather is full: the caller
  /// must force a flush before queueing more.
  bool tlb_remove_folio_pages(Pfn page, uint64_t nr, bool delay_rmap);
  /// __tlb_remove_page_size() for a PMD-mapped THP (one reference).
  bool tlb_remove_page_size(Pfn page) { return tlb_remove_folio_pages(page, 1, false); }
  /// tlb_remove_page_size(): queues and flushes itself when full.
  void tlb_remove_page(Pfn page) {
    if (tlb_remove_page_size(page)) tlb_flush_mmu();
  }

  // --- flushing -------------------------------------------------------------------
  /// tlb_flush_mmu_tlbonly(): invalidate the TLB for the gathered range (no-op when
  /// nothing was cleared and no table freed), then reset the range.
  void tlb_flush_mmu_tlbonly();
  /// tlb_flush_rmaps(): the delayed rmap removals (dirty file pages), after the
  /// TLB flush and before freeing.
  void tlb_flush_rmaps(const Vma& vma);
  /// tlb_flush_mmu(): flush the TLB, then free queued tables and pages.
  void tlb_flush_mmu();
  /// tlb_end_vma(): arm64 and other non-MERGE_VMAS architectures flush per VMA.
  void tlb_end_vma(const Vma& vma);
  /// tlb_finish_mmu(): final flush and free; ends the gather.
  void tlb_finish_mmu();

  bool delayed_rmap() const { return m_delayed_rmap; }
  uint64_t pending_items() const;

 private:
  void adjust_range(VirtAddr addr, uint64_t size) {
    if (addr < m_start) m_start = addr;
    if (addr + size > m_end) m_end = addr + size;
  }
  void reset_range();
  bool next_batch();
  void batch_pages_flush();
  void free_tables();

  Kernel& m_kernel;
  ExecContext& m_ctx;
  Mm& m_mm;
  bool m_fullmm;
  bool m_finished = false;

  VirtAddr m_start, m_end;
  bool m_freed_tables = false;
  bool m_cleared_ptes = false, m_cleared_pmds = false, m_cleared_puds = false,
       m_cleared_p4ds = false;
  bool m_delayed_rmap = false;

  // Batches: [0] is the embedded bundle; others are page-sized (a real frame each).
  struct Batch {
    std::vector<uint64_t> slots;  // encoded pages
    unsigned max = 0;
    Pfn frame;                    // the kernel page backing it (none for the bundle)
  };
  std::vector<Batch> m_batches;
  size_t m_active = 0;
  unsigned m_batch_count = 0;  // allocated page batches
  std::vector<Pfn> m_tables;   // unhooked page tables to free after the flush
};

/// Encoded page slots (include/linux/mm_types.h, ENCODED_PAGE_BITS = 3).
inline constexpr uint64_t kEncodedPageBitDelayRmap = 1;
inline constexpr uint64_t kEncodedPageBitNrPagesNext = 2;

}  // namespace tlbsim::mm

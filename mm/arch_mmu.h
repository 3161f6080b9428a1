// The contract between the kernel (mm/) and the hardware (models/): what Linux's
// arch/*/ hooks are. The kernel reaches TLBs, IPIs and broadcast TLBIs only
// through this interface.
//
// Ordering contract: every flush call returns only when the invalidation is
// complete on every CPU it concerns (all IPI acks received / DSB ISH done). The
// kernel frees pages and page tables strictly after such a call, so a TLB can
// never hold a translation to a freed frame (the coherence checker proves it).
//
// Implementations: mm::InstantArch (zero time, recorded calls, for kernel unit
// tests) and the SystemC models in models/ (x86-64 IPIs, arm64 broadcast TLBI).
// Flush *decisions* that Linux makes in arch code (33-page ceiling, lazy-CPU
// skipping, tlb_gen coalescing, MAX_DVM_OPS) live in mm/arch/ so both agree.
#pragma once

#include <cstdint>

#include "base/addr.h"
#include "mm/exec_context.h"
#include "mm/mm_struct.h"
#include "mm/pte.h"

namespace tlbsim::mm {

class Mm;

/// What an mmu_gather asks the architecture to flush (include/asm-generic/tlb.h
/// fields consumed by the arch tlb_flush()).
struct TlbFlushRequest {
  VirtAddr start;
  VirtAddr end;
  bool fullmm = false;
  bool freed_tables = false;
  bool cleared_ptes = false;
  bool cleared_pmds = false;
  bool cleared_puds = false;
  bool cleared_p4ds = false;
  /// tlb_get_unmap_shift(): PAGE_SHIFT if PTEs were cleared, else PMD_SHIFT, ...
  unsigned unmap_shift() const {
    if (cleared_ptes) return 12;
    if (cleared_pmds) return 21;
    if (cleared_puds) return 30;
    if (cleared_p4ds) return 39;
    return 12;
  }
};

class ArchMmu {
 public:
  ArchMmu(Arch arch, unsigned nr_cpus, unsigned pgtable_levels)
      : m_codec(arch), m_nr_cpus(nr_cpus), m_levels(pgtable_levels) {}
  virtual ~ArchMmu() = default;
  ArchMmu(const ArchMmu&) = delete;
  ArchMmu& operator=(const ArchMmu&) = delete;

  const PteCodec& codec() const { return m_codec; }
  Arch arch() const { return m_codec.arch(); }
  unsigned nr_cpus() const { return m_nr_cpus; }
  /// Page-table levels: 4 (x86-64, arm64 4 KiB granule, 48-bit VA) or 5 (x86 LA57).
  unsigned pgtable_levels() const { return m_levels; }

  // --- address-space lifetime -------------------------------------------------
  /// init_new_context: allocate arch state (arm64 ASID) for a new mm.
  virtual void init_new_context(Mm& mm) = 0;
  /// destroy_context: the mm is gone; no CPU may still have it loaded.
  virtual void destroy_context(Mm& mm) = 0;
  /// arch_exit_mmap: exit_mmap() is about to tear the mm down (mm->exiting is set);
  /// mm/mmap.c:exit_mmap() calls it first, under mmap_read_lock (Linux 6.18).
  virtual void arch_exit_mmap(ExecContext& ctx, Mm& mm) { (void)ctx, (void)mm; }

  // --- context switches on ctx.cpu -------------------------------------------
  /// switch_mm_irqs_off: ctx.cpu starts running user code of `next`.
  virtual void switch_mm(ExecContext& ctx, Mm& next) = 0;
  /// enter_lazy_tlb: ctx.cpu runs a kernel thread, keeping its user mm loaded.
  virtual void enter_lazy_tlb(ExecContext& ctx) = 0;
  /// The mm currently loaded on `cpu` (nullptr for init_mm).
  virtual Mm* loaded_mm(unsigned cpu) const = 0;

  // --- TLB maintenance (each returns when complete) ---------------------------
  /// The mmu_gather's arch tlb_flush(tlb) (x86: arch/x86/include/asm/tlb.h;
  /// arm64: arch/arm64/include/asm/tlb.h).
  virtual void tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) = 0;
  /// flush_tlb_mm(mm): every translation of the mm, page-table caches included.
  virtual void flush_tlb_mm(ExecContext& ctx, Mm& mm) = 0;
  /// flush_tlb_range(vma, start, end) for PTE-level changes (mprotect, ...).
  virtual void flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) = 0;
  /// flush_tlb_page(vma, addr).
  virtual void flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) = 0;
  /// flush_pmd_tlb_range(vma, start, end): PMD-level leaf changes (THP).
  virtual void flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) = 0;

  // --- batched unmap flush (TTU_BATCH_FLUSH, reference §6) ---------------------
  // One batch per CPU (Linux: current->tlb_ubc.arch of the reclaiming task). The
  // kernel clears PTEs, adds them with arch_tlbbatch_add_pending and completes the
  // whole batch with arch_tlbbatch_flush before it frees, writes back or copies the
  // pages. Architectures without CONFIG_ARCH_WANT_BATCHED_UNMAP_TLB_FLUSH never
  // defer (the defaults).
  /// arch_tlbbatch_should_defer(mm): is deferring this mm's flush worth it?
  virtual bool arch_tlbbatch_should_defer(ExecContext& ctx, Mm& mm) {
    (void)ctx, (void)mm;
    return false;
  }
  /// arch_tlbbatch_add_pending(batch, mm, start, end): PTEs of [start, end) in `mm`
  /// were cleared; x86 records the CPUs to flush, arm64 issues the TLBIs now
  /// without waiting for them.
  virtual void arch_tlbbatch_add_pending(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
    (void)ctx, (void)mm, (void)start, (void)end;
  }
  /// arch_tlbbatch_flush(batch): complete every invalidation of ctx.cpu's batch;
  /// returns when done (x86: one flush_tlb_multi; arm64: one DSB ISH).
  virtual void arch_tlbbatch_flush(ExecContext& ctx) { (void)ctx; }
  /// arch_flush_tlb_batched_pending(mm): what flush_tlb_batched_pending() does once
  /// a batch of this mm is still pending (Linux 6.5+). The generic and x86 one is
  /// flush_tlb_mm(mm), which the kernel then issues (and counts) itself: return
  /// false. arm64 only waits for the TLBIs it already issued and returns true.
  virtual bool arch_flush_tlb_batched_pending(ExecContext& ctx, Mm& mm) {
    (void)ctx, (void)mm;
    return false;
  }
  /// pte_accessible(mm, pte): may a TLB hold the (old) entry? A valid entry, or a
  /// PROT_NONE / NUMA-hinting one while a flush of the mm is still pending (its
  /// old, accessible translation may be cached). x86 pgtable.h:pte_accessible()
  /// and arm64's (mm_tlb_flush_pending(mm) ? pte_present : pte_valid) agree.
  bool pte_accessible(const Mm& mm, uint64_t pte) const {
    return m_codec.valid(pte) || (m_codec.protnone(pte) && mm.tlb_flush_pending > 0);
  }

  // --- PTE accessors (include/linux/pgtable.h; arm64 contpte in arch/arm64/mm/contpte.c)
  // Generic code must change user PTEs through these so arm64 can keep its contpte
  // blocks consistent (fold when a whole aligned 16-page block of one folio is mapped,
  // unfold with break-before-make + flush before one PTE of a block changes). The
  // defaults are the generic loops (x86). Callers count their own KOp::kPteWrite /
  // kPteRead as before; implementations count only extra work (contpte conversions).
  /// set_ptes(mm, addr, ptep, pte, nr): map `nr` consecutive pages of one folio with
  /// `pte` advanced by one frame per entry. For nr > 1 the entries must be none.
  virtual void set_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep, uint64_t pte,
                        unsigned nr) {
    (void)ctx, (void)mm, (void)addr;
    for (unsigned i = 0; i < nr; ++i) ptep[i] = m_codec.advance_pfn(pte, i);
  }
  /// ptep_get(): the entry; arm64 ORs access/dirty over its contpte block.
  virtual uint64_t ptep_get(const uint64_t* ptep) const { return *ptep; }
  /// ptep_get_and_clear(mm, addr, ptep): clear one entry and return the old value.
  virtual uint64_t ptep_get_and_clear(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep) {
    (void)ctx, (void)mm, (void)addr;
    const uint64_t old = *ptep;
    *ptep = 0;
    return old;
  }
  /// get_and_clear_full_ptes(mm, addr, ptep, nr, full): clear `nr` entries mapping
  /// one folio (zap); returns the first entry with the dirty and young bits of all
  /// `nr` ORed in. arm64 unfolds only blocks the range covers partially.
  virtual uint64_t get_and_clear_full_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                           uint64_t* ptep, unsigned nr, bool full) {
    (void)ctx, (void)mm, (void)addr, (void)full;
    uint64_t first = ptep[0];
    for (unsigned i = 0; i < nr; ++i) {
      if (m_codec.dirty(ptep[i])) first = m_codec.mkdirty(first);
      if (m_codec.young(ptep[i])) first = m_codec.mkyoung(first);
      ptep[i] = 0;
    }
    return first;
  }
  /// ptep_set_access_flags(vma, addr, ptep, entry, dirty): a fault upgrades a present
  /// entry in place (young, dirty, write: never a downgrade). Returns whether it
  /// changed. Generic/x86: write it if it changed, no flush (a CPU holding the old
  /// entry faults again and re-walks). arm64 (arch/arm64/mm/fault.c,
  /// contpte.c): unfold a contpte block whose write bit changes, and when `dirty`
  /// invalidate the stale read-only entry (the caller counts its KOp::kPteWrite).
  virtual bool ptep_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                     uint64_t entry, bool dirty) {
    (void)ctx, (void)mm, (void)addr, (void)dirty;
    if (*ptep == entry) return false;
    *ptep = entry;
    return true;
  }
  /// pmdp_set_access_flags(): the same for a huge PMD at `haddr`.
  virtual bool pmdp_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr haddr, uint64_t* pmdp,
                                     uint64_t entry, bool dirty) {
    (void)ctx, (void)mm, (void)haddr, (void)dirty;
    if (*pmdp == entry) return false;
    *pmdp = entry;
    return true;
  }
  /// wrprotect_ptes(mm, addr, ptep, nr): write-protect `nr` entries (fork).
  virtual void wrprotect_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                              unsigned nr) {
    (void)ctx, (void)mm, (void)addr;
    for (unsigned i = 0; i < nr; ++i) ptep[i] = m_codec.wrprotect(ptep[i]);
  }

 private:
  PteCodec m_codec;
  unsigned m_nr_cpus;
  unsigned m_levels;
};

}  // namespace tlbsim::mm

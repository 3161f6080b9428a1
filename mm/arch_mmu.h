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

 private:
  PteCodec m_codec;
  unsigned m_nr_cpus;
  unsigned m_levels;
};

}  // namespace tlbsim::mm

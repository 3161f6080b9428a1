// The x86-64 kernel side of ArchMmu (arch/x86/mm/tlb.c, arch/x86/include/asm/tlb.h):
// per-CPU TLB state, flush_tlb_mm_range(), the IPI target selection and the
// handler's decisions. The hardware that executes them — INVLPG, CR3 writes, IPI
// delivery and acknowledgement — is supplied by a subclass: mm::InstantArch (zero
// time) or the SystemC x86 model.
//
// Ordering kept: PTEs are already changed when flush_tlb_mm_range() is called; it
// bumps mm->context.tlb_gen, sends IPIs, flushes locally and returns only after
// every target acknowledged (flush_tlb_multi waits).
#pragma once

#include <vector>

#include "base/cpu_mask.h"
#include "base/stats.h"
#include "mm/arch/x86_tlb.h"
#include "mm/arch_mmu.h"
#include "mm/kernel_profile.h"

namespace tlbsim::mm {

/// Linux's CONFIG_DEBUG_TLBFLUSH vmstat counters (arch/x86), machine-wide.
struct X86TlbVmStats : StatGroup {
  explicit X86TlbVmStats(StatGroup* parent) : StatGroup(parent, "x86_tlbflush") {}
  Scalar nr_tlb_remote_flush{this, "nr_tlb_remote_flush", "count", "flush_tlb_multi() calls by initiators."};
  Scalar nr_tlb_remote_flush_received{this, "nr_tlb_remote_flush_received", "count", "Flush handlers run by remote CPUs."};
  Scalar nr_tlb_local_flush_all{this, "nr_tlb_local_flush_all", "count", "Full local flushes by initiators."};
  Scalar nr_tlb_local_flush_one{this, "nr_tlb_local_flush_one", "count", "INVLPGs of partial local flushes by initiators."};
  Scalar ipis_skipped_lazy{this, "ipis_skipped_lazy", "count", "CPUs in mm_cpumask skipped because they were lazy."};
  Scalar ipis_skipped_not_loaded{this, "ipis_skipped_not_loaded", "count", "CPUs in mm_cpumask skipped because they run another mm."};
  Scalar cpumask_trims{this, "cpumask_trims", "count", "Handlers that found the mm not loaded and left mm_cpumask."};
  Scalar context_switch_flushes{this, "context_switch_flushes", "count", "switch_mm() that had to flush (CR3 without NOFLUSH)."};
  Scalar flush_up_to_date{this, "flush_up_to_date", "count", "flush_tlb_func() that found its generation already flushed by a later request (no flush)."};
  Scalar flush_coalesced_full{this, "flush_coalesced_full", "count", "flush_tlb_func() asked for a range that flushed everything: another flush of the mm moved tlb_gen on meanwhile."};
  Scalar pcid_new_asid{this, "pcid_new_asid", "count", "choose_new_asid() found no PCID slot of the mm on this CPU and took the next of the 6 (TLB_NR_DYN_ASIDS)."};
  Scalar pcid_slot_reuse{this, "pcid_slot_reuse", "count", "... and that slot still held another live mm's context: its entries are flushed, that mm loses its slot."};
};

struct X86ArchConfig {
  unsigned nr_cpus = 1;
  unsigned pgtable_levels = 4;
  unsigned flush_ceiling = x86::kDefaultFlushCeiling;
  bool pcid = true;
  bool flush_range_freed_tables = true;      // v6.14+ flush_tlb_range
  bool lazy_cpumask = true;                   // v6.14+: switch_mm keeps prev's cpumask bit
  bool debug_skip_lazy_freed_tables = false;  // BROKEN ON PURPOSE (tests)

  /// The kernel profile's x86 switches (flush ceiling, freed_tables, lazy cpumask,
  /// the broken-on-purpose lazy switch).
  void apply(const KernelProfile& p) {
    flush_ceiling = p.x86_flush_ceiling();
    flush_range_freed_tables = p.flush_range_freed_tables();
    lazy_cpumask = p.x86_lazy_cpumask();
    debug_skip_lazy_freed_tables = p.debug_skip_lazy_freed_tables();
  }
};

class X86ArchMmuBase : public ArchMmu {
 public:
  X86ArchMmuBase(const X86ArchConfig& cfg, StatGroup* stats_parent);

  void init_new_context(Mm& mm) override;
  void destroy_context(Mm& mm) override;
  void switch_mm(ExecContext& ctx, Mm& next) override;
  void enter_lazy_tlb(ExecContext& ctx) override;
  Mm* loaded_mm(unsigned cpu) const override { return m_cpu[cpu].loaded_mm; }

  void tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) override;
  void flush_tlb_mm(ExecContext& ctx, Mm& mm) override;
  void flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;
  void flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) override;
  void flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;

  bool arch_tlbbatch_should_defer(ExecContext& ctx, Mm& mm) override;
  void arch_tlbbatch_add_pending(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;
  void arch_tlbbatch_flush(ExecContext& ctx) override;

  /// flush_tlb_mm_range(mm, start, end, stride_shift, freed_tables).
  void flush_tlb_mm_range(ExecContext& ctx, Mm& mm, uint64_t start, uint64_t end,
                          unsigned stride_shift, bool freed_tables);

  const x86::CpuTlbState& cpu_state(unsigned cpu) const { return m_cpu[cpu]; }
  const X86ArchConfig& config() const { return m_cfg; }
  X86TlbVmStats& vmstats() { return m_vmstats; }

 protected:
  /// Hardware: IPI every CPU in `targets` (ascending, never the initiator), run the
  /// initiator's own flush concurrently when `local` is true, and return when all
  /// handlers completed. Each target's handler must call flush_tlb_func_on().
  virtual void flush_tlb_multi(ExecContext& ctx, const std::vector<unsigned>& targets,
                               bool local, const x86::FlushTlbInfo& info) = 0;
  /// Hardware: run the initiator's flush on its own CPU (no IPIs needed).
  virtual void flush_tlb_local(ExecContext& ctx, const x86::FlushTlbInfo& info) = 0;
  /// Hardware: CR3 write for a context switch (flush = without NOFLUSH).
  virtual void load_cr3(ExecContext& ctx, const x86::SwitchAction& action) = 0;
  /// mm's tlb_gen moved on (a flush completed) or the mm is being destroyed: every
  /// CPU whose slot of mm is now behind will flush that PCID before using it again
  /// (switch_mm_irqs_off compares the generations), so the hardware model may stop
  /// treating those cached translations as usable.
  virtual void tlb_gen_moved(const Mm& mm) { (void)mm; }

  /// flush_tlb_func() on `cpu`: the decision (and state update) that the CPU's TLB
  /// must then execute; `initiator` says whether it runs on the requesting CPU.
  x86::FlushAction flush_tlb_func_on(unsigned cpu, const x86::FlushTlbInfo& info, bool initiator);

  std::vector<x86::CpuTlbState> m_cpu;

 private:
  X86ArchConfig m_cfg;
  X86TlbVmStats m_vmstats;
  // Scratch target lists, one per initiating CPU: flushes on different CPUs are in
  // flight at the same time (each waits for its acks).
  std::vector<std::vector<unsigned>> m_targets;
  std::vector<CpuMask> m_batch;     // per CPU: arch_tlbflush_unmap_batch.cpumask
  std::vector<std::vector<const Mm*>> m_batch_mms;  // per CPU: the mms added to the batch
};

}  // namespace tlbsim::mm

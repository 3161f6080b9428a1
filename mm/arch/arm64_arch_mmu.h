// The arm64 kernel side of ArchMmu (arch/arm64/include/asm/tlbflush.h, tlb.h,
// arch/arm64/mm/context.c, arch/arm64/mm/contpte.c): global ASIDs, which TLBIs a
// flush issues, and the contpte fold/unfold of user PTEs. The hardware that
// executes them — broadcasting each TLBI to every TLB, completing a DSB ISH,
// loading TTBR0 — is supplied by a subclass: mm::InstantArm64Arch (zero time) or the
// SystemC arm64 model.
//
// Ordering kept:
//   flush:  PTEs are already written → tlbi() for every op (DSB ISHST implied) →
//           dsb_ish() returns when every TLB dropped them → the caller frees.
//   contpte conversion (break-before-make): clear the 16 PTEs → flush the block →
//           contpte_before_make() → write the 16 new PTEs. No TLB may hold a
//           translation of the block when the new entries are written.
// No IPIs: TLBIs are broadcast in hardware, so no CPU state is consulted.
#pragma once

#include <cstdint>
#include <vector>

#include "base/stats.h"
#include "mm/arch/arm64_tlb.h"
#include "mm/arch_mmu.h"

namespace tlbsim::mm {

class PhysMem;

/// arm64 TLB-maintenance counters, machine-wide.
struct Arm64TlbVmStats : StatGroup {
  explicit Arm64TlbVmStats(StatGroup* parent) : StatGroup(parent, "arm64_tlbflush") {}
  Scalar tlbi_ops{this, "tlbi_ops", "count", "TLBI instructions issued (all kinds)."};
  Scalar tlbi_va{this, "tlbi_va", "count", "TLBI VALE1IS/VAE1IS (by VA)."};
  Scalar tlbi_range{this, "tlbi_range", "count", "TLBI RVALE1IS/RVAE1IS (FEAT_TLBIRANGE)."};
  Scalar tlbi_asid{this, "tlbi_asid", "count", "TLBI ASIDE1IS (whole address space)."};
  Scalar tlbi_all{this, "tlbi_all", "count", "TLBI VMALLE1IS (ASID rollover)."};
  Scalar tlbi_local{this, "tlbi_local", "count",
                    "TLBI VALE1 issued to this CPU only (Linux 6.19 write-fault reuse)."};
  Scalar dsb_ish{this, "dsb_ish", "count", "DSB ISH completions waited for."};
  Scalar range_flushes{this, "range_flushes", "count", "__flush_tlb_range calls."};
  Scalar range_to_asid{this, "range_to_asid", "count",
                       "Range flushes turned into an ASID flush (MAX_DVM_OPS)."};
  Scalar contpte_folds{this, "contpte_folds", "count",
                       "Blocks made contiguous by contpte_convert (nr == 1 path)."};
  Scalar contpte_unfolds{this, "contpte_unfolds", "count", "Blocks unfolded by contpte_convert."};
  Scalar contpte_blocks_set{this, "contpte_blocks_set", "count",
                            "Blocks written with PTE_CONT by set_ptes(nr >= 16)."};
  Scalar asid_allocations{this, "asid_allocations", "count", "ASIDs handed to new mms (new_context())."};
  Scalar asid_rollovers{this, "asid_rollovers", "count", "ASID generation rollovers."};
  Scalar ttbr_switches{this, "ttbr_switches", "count", "switch_mm() that loaded another mm's ASID and tables into TTBR0."};
};

struct Arm64ArchConfig {
  unsigned nr_cpus = 1;
  unsigned max_dvm_ops = arm64::kDefaultMaxDvmOps;
  bool range_tlbi = false;  // FEAT_TLBIRANGE
  unsigned asid_bits = 16;
  bool contpte = true;                         // CONFIG_ARM64_CONTPTE
  bool debug_no_contpte_unfold_flush = false;  // BROKEN ON PURPOSE (tests)
  bool local_flush_on_write_fault = false;     // Linux 6.19 (profile switch of that name)
  PhysMem* phys = nullptr;  // folio lookups for contpte_try_fold (none: never fold)
};

class Arm64ArchMmuBase : public ArchMmu {
 public:
  Arm64ArchMmuBase(const Arm64ArchConfig& cfg, StatGroup* stats_parent);

  void init_new_context(Mm& mm) override;
  void destroy_context(Mm& mm) override;
  void switch_mm(ExecContext& ctx, Mm& next) override;
  void enter_lazy_tlb(ExecContext& ctx) override { (void)ctx; }
  Mm* loaded_mm(unsigned cpu) const override { return m_loaded[cpu]; }

  void tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) override;
  void flush_tlb_mm(ExecContext& ctx, Mm& mm) override;
  void flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;
  void flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) override;
  void flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;

  void set_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep, uint64_t pte,
                unsigned nr) override;
  uint64_t ptep_get(const uint64_t* ptep) const override;
  uint64_t ptep_get_and_clear(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep) override;
  uint64_t get_and_clear_full_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                   unsigned nr, bool full) override;
  void wrprotect_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                      unsigned nr) override;
  bool ptep_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                             uint64_t entry, bool dirty) override;
  bool pmdp_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr haddr, uint64_t* pmdp,
                             uint64_t entry, bool dirty) override;

  bool arch_tlbbatch_should_defer(ExecContext& ctx, Mm& mm) override;
  void arch_tlbbatch_add_pending(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) override;
  void arch_tlbbatch_flush(ExecContext& ctx) override;
  bool arch_flush_tlb_batched_pending(ExecContext& ctx, Mm& mm) override;

  /// __flush_tlb_range(vma, start, end, stride, last_level, tlb_level).
  void flush_tlb_range_arm64(ExecContext& ctx, Mm& mm, uint64_t start, uint64_t end,
                             uint64_t stride, bool last_level, uint8_t tlb_level);

  const Arm64ArchConfig& config() const { return m_cfg; }
  Arm64TlbVmStats& vmstats() { return m_vmstats; }

 protected:
  /// Hardware: issue `ops` as broadcast TLBIs from ctx.cpu (after a DSB ISHST). They
  /// may complete at any time before the next dsb_ish() of this CPU.
  virtual void tlbi(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) = 0;
  /// Hardware: DSB ISH; returns when every TLBI this CPU issued has completed on
  /// every CPU.
  virtual void dsb_ish(ExecContext& ctx) = 0;
  /// Hardware: `ops` (TLBI VALE1) on ctx.cpu's own TLBs only, completed by DSB NSH.
  virtual void tlbi_local(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) = 0;
  /// Hardware: load TTBR0 with the mm's tables and ASID on ctx.cpu.
  virtual void cpu_switch_mm(ExecContext& ctx, Mm& next) = 0;
  /// Hardware check point of break-before-make: the block at `block` (64 KiB) is
  /// about to be rewritten; no TLB may still cache a translation of it.
  virtual void contpte_before_make(ExecContext& ctx, Mm& mm, VirtAddr block) {
    (void)ctx, (void)mm, (void)block;
  }

 private:
  void flush_ops(ExecContext& ctx);
  /// The TLBIs of m_ops without the completing DSB (counted in the stats).
  void issue_ops(ExecContext& ctx);
  /// contpte_convert(): break-before-make of the block containing `addr`, writing
  /// the entries with (fold) or without (unfold) PTE_CONT.
  void contpte_convert(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep, bool fold);
  void contpte_try_unfold(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep) {
    if (m_codec_arm64.cont(*ptep)) contpte_convert(ctx, mm, addr, ptep, false);
  }
  void contpte_try_fold(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep);
  /// contpte_try_unfold_partial(): unfold the blocks [addr, +nr) covers only partly.
  void contpte_try_unfold_partial(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                  unsigned nr);
  /// __ptep_set_access_flags(): OR in AF/dirty/write; when `dirty`, invalidate the
  /// stale entry (flush_tlb_page). True if the entry changed.
  bool set_access_flags_one(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                            uint64_t entry, bool dirty);
  /// local_flush_tlb_page_nonotify() (nr = 1) / local_flush_tlb_contpte() (nr = 16):
  /// TLBI VALE1 per page on this CPU, DSB NSH (Linux 6.19).
  void local_flush_tlb_pages(ExecContext& ctx, Mm& mm, VirtAddr addr, unsigned nr);

  Arm64ArchConfig m_cfg;
  PteCodec m_codec_arm64{Arch::kArm64};
  Arm64TlbVmStats m_vmstats;
  arm64::AsidAllocator m_asids;
  std::vector<Mm*> m_loaded;
  std::vector<arm64::TlbiOp> m_ops;       // scratch, reused per flush
  bool m_rollover_flush_pending = false;  // ASID rollover: invalidate all before reuse
};

}  // namespace tlbsim::mm

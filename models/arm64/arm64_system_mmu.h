// The timed arm64 ArchMmu: executes the kernel's TLB maintenance (decided in
// mm::Arm64ArchMmuBase) on the simulated cores. No IPIs: a TLBI is broadcast in
// hardware.
//
// Ordering contract: tlbi() applies each operation to the issuer's TLBs at once and
// hands it to the DVM node (models/arm64/dvm_node.h), which applies it to every
// other core's TLBs tlbi_delivery_cycles (+ link) later. dsb_ish() returns when the
// DVM node has completed the batch and every delivery happened; only then does the
// kernel free pages. TLBI issued → all TLBs invalidated → DSB complete → frames
// freed.
//
// Timing of one DSB ISH on CPU i with n TLBIs pending:
//   service = tlbi_dsb_cycles + (n − 1) × tlbi_extra_op_cycles
//   start   = max(issue time, DVM node busy-until)   (dvm_serialise: single server)
//   CPU i resumes at max(start + service, last delivery of its TLBIs); every other
//   CPU loses victim_stall_cycles per TLBI (the bystander cost of snooping a DVM op).
#pragma once

#include <vector>

#include <memory>

#include "mm/arch/arm64_arch_mmu.h"
#include "models/arm64/dvm_node.h"
#include "models/coherence_checker.h"
#include "models/machine_params.h"

namespace tlbsim {

class System;

class Arm64SystemMmu final : public mm::Arm64ArchMmuBase, public TranslationLiveness {
 public:
  Arm64SystemMmu(const mm::Arm64ArchConfig& cfg, const Arm64Params& params, System& sys,
                 StatGroup* stats_parent);

  /// TranslationLiveness: ASIDs are global and never reused before a rollover's
  /// flush, so an entry stays usable while its ASID belongs to a live mm — except
  /// the leaves of an mm being torn down, which Linux never flushes (tlb_flush() with
  /// fullmm: "the ASID allocator won't reallocate our ASID without invalidating the
  /// entire TLB"); its walk-cache entries stay usable while TTBR0 holds the ASID.
  bool may_use(unsigned cpu, uint16_t asid, bool walk) const override;

  void arch_exit_mmap(mm::ExecContext& ctx, mm::Mm& mm) override;
  void destroy_context(mm::Mm& mm) override;

 protected:
  void tlbi(mm::ExecContext& ctx, const std::vector<mm::arm64::TlbiOp>& ops) override;
  void dsb_ish(mm::ExecContext& ctx) override;
  void tlbi_local(mm::ExecContext& ctx, const std::vector<mm::arm64::TlbiOp>& ops) override;
  void cpu_switch_mm(mm::ExecContext& ctx, mm::Mm& next) override;
  void contpte_before_make(mm::ExecContext& ctx, mm::Mm& mm, VirtAddr block) override;

 private:
  const Arm64Params& m_params;
  System& m_sys;
  std::vector<unsigned> m_pending;         // TLBIs issued per CPU since its last DSB ISH
  std::vector<uint64_t> m_last_delivery;   // per CPU: when its last TLBI reaches every core
  uint64_t m_dvm_busy_until = 0;           // cycles: when the DVM node is free again
  std::unique_ptr<DvmNode> m_dvm;
};

}  // namespace tlbsim

// The timed x86-64 ArchMmu: executes the kernel's flush decisions (made in
// mm::X86ArchMmuBase) on the simulated cores.
//
// Ordering contract: flush_tlb_multi() sends the IPIs, performs the initiator's own
// flush concurrently, then waits until every target has run its handler (which
// invalidates that core's TLB) and its acknowledgement is visible. Only then does
// it return to the kernel, which frees the pages. IPI sent → all acks → frames freed.
//
// Timing of one shootdown, initiator I and targets T1..Tn (ascending CPU order):
//   send:     first target ipi_send_first_cycles, each further ipi_send_extra_cycles
//   delivery: Tk's handler starts at send_k + ipi_delivery_cycles + link(I, Tk)
//   handler:  irq_entry_exit + handler + (INVLPG × n | CR3 flush) cycles on Tk, after
//             the handlers already running or queued there, and not while Tk has
//             interrupts off (models/cpu/core.h)
//   ack:      visible to I after ack_cycles (same socket) or ack_cross_socket_cycles
//   I resumes at max(own flush done, last ack visible).
#pragma once

#include <array>
#include <vector>

#include "mm/arch/x86_arch_mmu.h"
#include "models/coherence_checker.h"
#include "models/machine_params.h"

namespace tlbsim {

class Core;
class System;

class X86SystemMmu final : public mm::X86ArchMmuBase, public TranslationLiveness {
 public:
  X86SystemMmu(const mm::X86ArchConfig& cfg, const X86FlushParams& costs, System& sys,
               StatGroup* stats_parent);

  /// Runs on the target core (SC_METHOD) when an IPI is served; returns the cycles
  /// it took, with the interrupt's entry and exit when `irq_entry` (the first call
  /// an interrupt serves).
  uint64_t handle_flush_ipi(Core& target, const mm::x86::FlushTlbInfo& info, bool irq_entry);

  /// TranslationLiveness: an entry tagged `pcid` on `cpu` is usable while that PCID
  /// is in CR3 (leaves: and the CPU is not lazy; paging-structure entries: lazy too,
  /// for speculative walks), or while its slot's tlb_gen is the mm's current one —
  /// switching back would then not flush (switch_mm_irqs_off, choose_new_asid).
  bool may_use(unsigned cpu, uint16_t pcid, bool walk) const override;

 protected:
  void flush_tlb_multi(mm::ExecContext& ctx, const std::vector<unsigned>& targets, bool local,
                       const mm::x86::FlushTlbInfo& info) override;
  void flush_tlb_local(mm::ExecContext& ctx, const mm::x86::FlushTlbInfo& info) override;
  void load_cr3(mm::ExecContext& ctx, const mm::x86::SwitchAction& action) override;
  void tlb_gen_moved(const mm::Mm& mm) override;

 private:
  /// Executes a flush_tlb_func decision on `core`'s TLB; returns its cycles.
  uint64_t execute(Core& core, const mm::x86::FlushAction& a, const mm::x86::FlushTlbInfo& info);

  const X86FlushParams& m_costs;
  System& m_sys;
  /// Per CPU and PCID slot: the (ctx_id, tlb_gen) the checker last retired it at; a
  /// slot still behind at the same generation has nothing new to retire.
  struct Retired {
    uint64_t ctx_id = 0, tlb_gen = 0;
  };
  std::vector<std::array<Retired, mm::x86::kNrDynAsids>> m_retired;
};

}  // namespace tlbsim

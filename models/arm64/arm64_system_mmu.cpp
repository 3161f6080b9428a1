#include "models/arm64/arm64_system_mmu.h"

#include <algorithm>

#include "mm/mm_struct.h"
#include "models/cpu/core.h"
#include "base/trace_writer.h"
#include "models/system.h"
#include "models/task/task_thread.h"

namespace tlbsim {

Arm64SystemMmu::Arm64SystemMmu(const mm::Arm64ArchConfig& cfg, const Arm64Params& params,
                               System& sys, StatGroup* stats_parent)
    : Arm64ArchMmuBase(cfg, stats_parent),
      m_params(params),
      m_sys(sys),
      m_pending(cfg.nr_cpus, 0),
      m_last_delivery(cfg.nr_cpus, 0),
      m_dvm(std::make_unique<DvmNode>("dvm", sys)) {}

bool Arm64SystemMmu::may_use(unsigned cpu, uint16_t asid, bool walk) const {
  const mm::Mm* owner = loaded_mm(cpu) && loaded_mm(cpu)->asid() == asid ? loaded_mm(cpu) : nullptr;
  if (!owner)
    for (const auto& m : m_sys.kernel().mms())
      if (!m->dead && m->asid() == asid) owner = m.get();
  if (!owner || owner->dead) return false;
  if (owner->exiting) return walk && m_sys.core(cpu).asid() == asid;
  return true;
}

void Arm64SystemMmu::arch_exit_mmap(mm::ExecContext& ctx, mm::Mm& mm) {
  (void)ctx;
  if (CoherenceChecker* checker = m_sys.checker()) checker->retire_everywhere(mm.asid());
}

void Arm64SystemMmu::destroy_context(mm::Mm& mm) {
  Arm64ArchMmuBase::destroy_context(mm);
  if (CoherenceChecker* checker = m_sys.checker()) checker->retire_everywhere(mm.asid());
}

void Arm64SystemMmu::tlbi(mm::ExecContext& ctx, const std::vector<mm::arm64::TlbiOp>& ops) {
  // Broadcast: the issuer's TLBs drop the entries now, the others when the DVM node
  // delivers them.
  TaskThread& tt = TaskThread::of(ctx);
  Core& me = tt.core();
  for (const auto& op : ops) me.arm64_mmu().tlbi(op);
  if (m_sys.nr_cpus() > 1)
    m_last_delivery[ctx.cpu] =
        std::max(m_last_delivery[ctx.cpu], m_dvm->broadcast(ctx.cpu, ops, tt.now()));
  m_pending[ctx.cpu] += static_cast<unsigned>(ops.size());
  me.stats().tlbi_sent += ops.size();
}

void Arm64SystemMmu::tlbi_local(mm::ExecContext& ctx, const std::vector<mm::arm64::TlbiOp>& ops) {
  // Non-shareable: this core's TLBs only, no DVM traffic; DSB NSH waits for it alone.
  TaskThread& tt = TaskThread::of(ctx);
  Core& me = tt.core();
  for (const auto& op : ops) me.arm64_mmu().tlbi(op);
  me.stats().tlbi_local += ops.size();
  tt.advance(m_params.tlbi_local_cycles() * ops.size());
}

void Arm64SystemMmu::dsb_ish(mm::ExecContext& ctx) {
  TaskThread& tt = TaskThread::of(ctx);
  Core& me = tt.core();
  const unsigned n = m_pending[ctx.cpu];
  m_pending[ctx.cpu] = 0;
  ++me.stats().flush_requests;
  if (TraceWriter* tw = m_sys.trace()) [[unlikely]]
    tw->instant(ctx.cpu, "flush", "DSB ISH after " + std::to_string(n) + " broadcast TLBI(s)", tt.now());
  if (n == 0) return;
  // Synchronise first, so broadcasters reach the DVM node in simulated-time order.
  tt.take_stolen();
  tt.charge_kernel();
  tt.sync();
  const uint64_t issue = tt.now();
  const uint64_t service =
      m_params.tlbi_dsb_cycles() + uint64_t{n - 1} * m_params.tlbi_extra_op_cycles();
  const uint64_t start = m_params.dvm_serialise() ? std::max(issue, m_dvm_busy_until) : issue;
  const uint64_t done = std::max(start + service, m_last_delivery[ctx.cpu]);
  if (m_params.dvm_serialise()) m_dvm_busy_until = start + service;
  me.stats().dvm_queue_cycles += start - issue;
  me.stats().dsb_wait_cycles += done - issue;
  if (TraceWriter* tw = m_sys.trace())
    tw->complete(ctx.cpu, "tlbi", "DSB ISH after " + std::to_string(n) + " TLBI", issue, done - issue,
                 "{\"queued_cycles\":" + std::to_string(start - issue) + "}");
  // The CPU stalls in the DSB until every TLB dropped the entries (interrupts
  // taken meanwhile overlap the stall).
  if (done > sc_now_cycles()) sc_core::wait(cycles_to_sc(done - sc_now_cycles()));
  tt.absorb_irqs();
}

void Arm64SystemMmu::cpu_switch_mm(mm::ExecContext& ctx, mm::Mm& next) {
  Core& me = m_sys.core(ctx.cpu);
  const uint16_t was = me.asid();
  me.set_context(next.asid(), next.pgd());
  // TTBR0 no longer holds the previous ASID: the walk-cache entries of an mm being
  // torn down can no longer be walked.
  if (CoherenceChecker* checker = m_sys.checker(); checker && was != next.asid())
    checker->retire(ctx.cpu, was);
  TaskThread::of(ctx).advance(m_params.ttbr_switch_cycles());
}

void Arm64SystemMmu::contpte_before_make(mm::ExecContext& ctx, mm::Mm& mm, VirtAddr block) {
  // Break-before-make check: after the break and its flush, no core may still
  // translate any page of the block (else the new entries would conflict with, or
  // be hidden by, a stale 64 KiB entry).
  CoherenceChecker* checker = m_sys.checker();
  if (!checker) return;
  (void)ctx;
  for (unsigned c = 0; c < m_sys.nr_cpus(); ++c) {
    const arm64::Arm64CoreMmu& mmu = m_sys.core(c).arm64_mmu();
    for (unsigned i = 0; i < mm::arm64::kContPtes; ++i) {
      const VirtAddr va = block + uint64_t{i} * kPageSize;
      if (mmu.holds(va, mm.asid())) {
        checker->report(c, va, Pfn(), StaleKind::kBreakBeforeMake);
        break;
      }
    }
  }
}

}  // namespace tlbsim

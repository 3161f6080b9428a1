#include "models/x86/x86_system_mmu.h"

#include <cstdio>
#include <string>

#include "mm/mm_struct.h"
#include "models/cpu/core.h"
#include "base/trace_writer.h"
#include "models/system.h"
#include "models/task/task_thread.h"

namespace tlbsim {

using mm::x86::FlushAction;

X86SystemMmu::X86SystemMmu(const mm::X86ArchConfig& cfg, const X86FlushParams& costs,
                           System& sys, StatGroup* stats_parent)
    : X86ArchMmuBase(cfg, stats_parent), m_costs(costs), m_sys(sys), m_retired(cfg.nr_cpus) {}

namespace {
/// The PCID a slot's entries carry (load_cr3): kern_pcid(slot), or 0 without PCIDs.
uint16_t slot_pcid(bool pcid, unsigned slot) {
  return pcid ? mm::x86::kern_pcid(static_cast<uint16_t>(slot)) : 0;
}
}  // namespace

bool X86SystemMmu::may_use(unsigned cpu, uint16_t pcid, bool walk) const {
  const mm::x86::CpuTlbState& st = cpu_state(cpu);
  if (st.loaded_mm && m_sys.core(cpu).asid() == pcid && (walk || !st.is_lazy)) return true;
  unsigned slot = 0;
  if (config().pcid) {
    if (pcid == 0 || pcid > mm::x86::kNrDynAsids) return false;  // init_mm, kernel only
    slot = pcid - 1u;
  }
  const mm::x86::CpuTlbState::Ctx& c = st.ctxs[slot];
  if (c.ctx_id == 0) return false;
  const mm::Mm* owner = st.loaded_mm && st.loaded_mm->ctx_id() == c.ctx_id ? st.loaded_mm : nullptr;
  if (!owner)
    for (const auto& m : m_sys.kernel().mms())
      if (m->ctx_id() == c.ctx_id) owner = m.get();
  return owner && !owner->dead && c.tlb_gen >= owner->tlb_gen();
}

void X86SystemMmu::tlb_gen_moved(const mm::Mm& mm) {
  CoherenceChecker* checker = m_sys.checker();
  if (!checker) return;
  for (unsigned cpu = 0; cpu < m_sys.nr_cpus(); ++cpu) {
    const mm::x86::CpuTlbState& st = cpu_state(cpu);
    for (unsigned s = 0; s < mm::x86::kNrDynAsids; ++s) {
      const mm::x86::CpuTlbState::Ctx& c = st.ctxs[s];
      if (c.ctx_id != mm.ctx_id() || (!mm.dead && c.tlb_gen >= mm.tlb_gen())) continue;
      Retired& r = m_retired[cpu][s];
      if (!mm.dead && r.ctx_id == c.ctx_id && r.tlb_gen == c.tlb_gen) continue;
      r = Retired{c.ctx_id, c.tlb_gen};
      checker->retire(cpu, slot_pcid(config().pcid, s));
    }
  }
}

uint64_t X86SystemMmu::execute(Core& core, const FlushAction& a,
                               const mm::x86::FlushTlbInfo& info) {
  switch (a.kind) {
    case FlushAction::Kind::kPartial: {
      const uint64_t step = uint64_t{1} << info.stride_shift;
      for (uint64_t i = 0; i < a.nr_invlpg; ++i)
        core.mmu().apply(x86::Invalidation::invlpg(VirtAddr(info.start + i * step), a.pcid));
      return a.nr_invlpg * m_costs.invlpg_cycles();
    }
    case FlushAction::Kind::kFull:  // flush_tlb_local(): CR3 reload of the current PCID
      core.mmu().apply(x86::Invalidation::cr3(a.pcid, /*noflush=*/false));
      return m_costs.cr3_flush_cycles();
    case FlushAction::Kind::kLazySwitch: {
      // switch_mm_irqs_off(init_mm): the user PCID's entries stay, tagged with a
      // slot whose tlb_gen is now behind; switching back flushes them. With the
      // PCID out of CR3 its paging-structure entries can no longer be walked.
      const uint16_t was = core.asid();
      core.set_context(0, Pfn());
      if (CoherenceChecker* checker = m_sys.checker()) checker->retire(core.id(), was);
      return m_costs.cr3_noflush_cycles();
    }
    default:
      return 0;
  }
}

namespace {
/// "[0x7f0000000000, +256 pages)", "full" or "batched full" for the debug log.
std::string describe_flush(const mm::x86::FlushTlbInfo& info) {
  if (info.full()) return info.mm ? "full" : "batched full";
  char buf[64];
  std::snprintf(buf, sizeof buf, "[%#llx, +%llu steps of %u KiB)",
                static_cast<unsigned long long>(info.start),
                static_cast<unsigned long long>(info.nr_steps()), (1u << info.stride_shift) >> 10);
  return buf + std::string(info.freed_tables ? " freeing tables" : "");
}
}  // namespace

void X86SystemMmu::flush_tlb_local(mm::ExecContext& ctx, const mm::x86::FlushTlbInfo& info) {
  // flush_tlb_mm_range(): only this CPU runs the mm; flush_tlb_func() with
  // interrupts off.
  TaskThread& tt = TaskThread::of(ctx);
  Core& me = tt.core();
  tt.charge_kernel();
  ++me.stats().flush_requests;
  if (TraceWriter* tw = m_sys.trace()) [[unlikely]]
    tw->instant(ctx.cpu, "flush", "flush_tlb_mm_range " + describe_flush(info) + ", this CPU only",
                tt.now());
  tt.irq_disable();
  const FlushAction a = flush_tlb_func_on(ctx.cpu, info, true);
  const uint64_t c = execute(me, a, info);
  me.stats().local_flush_cycles += c;
  tt.advance(c);
  tt.irq_enable();
}

void X86SystemMmu::flush_tlb_multi(mm::ExecContext& ctx, const std::vector<unsigned>& targets,
                                   bool local, const mm::x86::FlushTlbInfo& info) {
  // native_flush_tlb_multi() → smp_call_function_many_cond(): IPIs first, the local
  // flush concurrently (interrupts off), then csd_lock_wait() with interrupts on.
  TaskThread& tt = TaskThread::of(ctx);
  Core& me = tt.core();
  if (me.irqs_disabled())
    throw std::logic_error("flush_tlb_multi with interrupts off (smp_call_function_many_cond)");
  tt.take_stolen();
  tt.charge_kernel();
  tt.sync();
  ++me.stats().flush_requests;
  const uint64_t t0 = tt.now();
  if (TraceWriter* tw = m_sys.trace()) [[unlikely]]
    tw->instant(ctx.cpu, "flush", "flush_tlb_mm_range " + describe_flush(info) + ", IPIs to " +
                                      std::to_string(targets.size()) + " CPU(s)" +
                                      (local ? " and this one" : ""), t0);
  uint64_t send = 0;
  me.pending_acks = static_cast<unsigned>(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const unsigned t = targets[i];
    send += i == 0 ? m_costs.ipi_send_first_cycles() : m_costs.ipi_send_extra_cycles();
    IpiMessage msg;
    msg.from = ctx.cpu;
    msg.info = info;
    msg.sent_at = t0 + send;
    msg.deliver_at =
        t0 + send + m_costs.ipi_delivery_cycles() + m_sys.topology().latency(ctx.cpu, t);
    m_sys.core(t).post_ipi(msg);
  }
  me.stats().ipis_sent += targets.size();
  me.stats().ipi_send_cycles += send;
  tt.advance(send);
  if (local) {
    tt.irq_disable();
    const FlushAction a = flush_tlb_func_on(ctx.cpu, info, true);
    const uint64_t c = execute(me, a, info);
    me.stats().local_flush_cycles += c;
    tt.advance(c);
    tt.irq_enable();
  }
  if (!targets.empty()) {
    // Wait (in SystemC time) until every handler ran; acks become visible later.
    tt.sync();
    const uint64_t before = tt.now();
    while (me.pending_acks > 0) sc_core::wait(me.ack_event());
    // csd_lock_wait() on each target in turn: every poll is a cache-line transfer
    // (ack cycles), and a target not done yet is waited for.
    uint64_t t = before;
    for (unsigned tgt : targets) {
      t = std::max(t, me.handler_end[tgt]) +
          (m_sys.topology().same_socket(ctx.cpu, tgt) ? m_costs.ack_cycles()
                                                      : m_costs.ack_cross_socket_cycles());
    }
    if (t > sc_now_cycles()) sc_core::wait(cycles_to_sc(t - sc_now_cycles()));
    tt.absorb_irqs();  // handlers taken while spinning overlapped the wait
    me.stats().ipi_wait_cycles += sc_now_cycles() - before;
    if (TraceWriter* tw = m_sys.trace())
      tw->complete(ctx.cpu, "shootdown", "wait for " + std::to_string(targets.size()) + " acks",
                   before, sc_now_cycles() - before);
  }
}

uint64_t X86SystemMmu::handle_flush_ipi(Core& target, const mm::x86::FlushTlbInfo& info,
                                        bool irq_entry) {
  // flush_tlb_func() on the target, inside the interrupt; the interrupt's entry and
  // exit are paid once for the queued calls it serves.
  const FlushAction a = flush_tlb_func_on(target.id(), info, false);
  const uint64_t work = execute(target, a, info);
  target.stats().local_flush_cycles += work;
  return (irq_entry ? m_costs.irq_entry_exit_cycles() : 0) + m_costs.handler_cycles() + work;
}

void X86SystemMmu::load_cr3(mm::ExecContext& ctx, const mm::x86::SwitchAction& action) {
  Core& me = m_sys.core(ctx.cpu);
  const mm::x86::CpuTlbState& st = cpu_state(ctx.cpu);
  const uint16_t pcid = config().pcid ? mm::x86::kern_pcid(action.asid) : 0;
  if (action.flush) me.mmu().flush_pcid(pcid);
  me.set_context(pcid, st.loaded_mm ? st.loaded_mm->pgd() : Pfn());
  TaskThread::of(ctx).advance(action.flush ? m_costs.cr3_flush_cycles() : m_costs.cr3_noflush_cycles());
}

}  // namespace tlbsim

#include "mm/arch/x86_arch_mmu.h"

#include <algorithm>

#include "mm/mm_struct.h"

namespace tlbsim::mm {

X86ArchMmuBase::X86ArchMmuBase(const X86ArchConfig& cfg, StatGroup* stats_parent)
    : ArchMmu(Arch::kX86_64, cfg.nr_cpus, cfg.pgtable_levels),
      m_cpu(cfg.nr_cpus),
      m_cfg(cfg),
      m_vmstats(stats_parent) {
  m_targets.resize(cfg.nr_cpus);
  for (auto& t : m_targets) t.reserve(cfg.nr_cpus);
  m_batch.assign(cfg.nr_cpus, CpuMask(cfg.nr_cpus));
  m_batch_mms.resize(cfg.nr_cpus);
}

void X86ArchMmuBase::init_new_context(Mm& mm) { (void)mm; }

void X86ArchMmuBase::destroy_context(Mm& mm) {
  // No CPU may still have it loaded: lazy users switched away (mmdrop ordering).
  tlb_gen_moved(mm);
  for (auto& c : m_cpu) {
    if (c.loaded_mm == &mm) c.loaded_mm = nullptr;
    for (auto& slot : c.ctxs)
      if (slot.ctx_id == mm.ctx_id()) slot = {};
  }
}

void X86ArchMmuBase::switch_mm(ExecContext& ctx, Mm& next) {
  // Mirrors arch/x86/mm/tlb.c:switch_mm_irqs_off(): join mm_cpumask first, then
  // read tlb_gen and pick the ASID.
  // Before 6.14 (x86_lazy_cpumask off) the CPU also leaves the previous mm's
  // mm_cpumask when it loads another mm ("Stop remote flushes for the previous mm":
  // cpumask_clear_cpu(cpu, mm_cpumask(real_prev))); since "x86/mm/tlb: Update
  // mm_cpumask lazily" the bit stays until a flush finds the mm not loaded.
  Mm* prev = m_cpu[ctx.cpu].loaded_mm;
  if (!m_cfg.lazy_cpumask && prev && prev != &next) prev->cpumask().clear(ctx.cpu);
  next.cpumask().set(ctx.cpu);
  x86::SwitchAction a = x86::switch_mm_irqs_off(m_cpu[ctx.cpu], next, m_cfg.pcid);
  if (a.same_mm && !a.flush) return;
  if (a.flush) ++m_vmstats.context_switch_flushes;
  if (a.new_asid) ++m_vmstats.pcid_new_asid;
  if (a.evicted) ++m_vmstats.pcid_slot_reuse;
  load_cr3(ctx, a);
}

void X86ArchMmuBase::enter_lazy_tlb(ExecContext& ctx) {
  if (m_cpu[ctx.cpu].loaded_mm) m_cpu[ctx.cpu].is_lazy = true;
}

x86::FlushAction X86ArchMmuBase::flush_tlb_func_on(unsigned cpu, const x86::FlushTlbInfo& info,
                                                   bool initiator) {
  x86::CpuTlbState& st = m_cpu[cpu];
  const uint64_t mm_gen = st.loaded_mm ? st.loaded_mm->tlb_gen() : 0;
  if (!initiator) ++m_vmstats.nr_tlb_remote_flush_received;
  Mm* const was_loaded = st.loaded_mm;
  x86::FlushAction a = x86::flush_tlb_func(st, info, mm_gen);
  if (a.kind == x86::FlushAction::Kind::kUpToDate) ++m_vmstats.flush_up_to_date;
  if (a.coalesced) ++m_vmstats.flush_coalesced_full;
  if (a.kind == x86::FlushAction::Kind::kNotLoaded && info.mm) {
    const_cast<Mm*>(info.mm)->cpumask().clear(cpu);
    ++m_vmstats.cpumask_trims;
  }
  // A lazy CPU leaving for init_mm: before 6.14 switch_mm_irqs_off() takes it out of
  // the mm's cpumask at once (x86_lazy_cpumask off).
  if (a.kind == x86::FlushAction::Kind::kLazySwitch && was_loaded && !m_cfg.lazy_cpumask)
    was_loaded->cpumask().clear(cpu);
  if (initiator) {
    if (a.kind == x86::FlushAction::Kind::kPartial) m_vmstats.nr_tlb_local_flush_one += a.nr_invlpg;
    if (a.kind == x86::FlushAction::Kind::kFull) ++m_vmstats.nr_tlb_local_flush_all;
  }
  return a;
}

void X86ArchMmuBase::flush_tlb_mm_range(ExecContext& ctx, Mm& mm, uint64_t start, uint64_t end,
                                        unsigned stride_shift, bool freed_tables) {
  // Mirrors arch/x86/mm/tlb.c:flush_tlb_mm_range().
  ctx.sync_with_cpus();  // reads mm_cpumask and the other CPUs' lazy state below
  const uint64_t new_gen = mm.inc_tlb_gen();
  const x86::FlushTlbInfo info = x86::get_flush_tlb_info(
      &mm, start, end, stride_shift, freed_tables, new_gen, ctx.cpu, m_cfg.flush_ceiling);
  const unsigned self = ctx.cpu;
  if (mm.cpumask().any_other_than(self)) {
    // native_flush_tlb_multi(): with freed tables every CPU in the mask (lazy ones
    // too); otherwise only those should_flush_tlb() selects.
    ++m_vmstats.nr_tlb_remote_flush;
    std::vector<unsigned>& targets = m_targets[self];
    targets.clear();
    bool local = false;
    const bool all = freed_tables && !m_cfg.debug_skip_lazy_freed_tables;
    mm.cpumask().for_each([&](unsigned c) {
      if (c == self) {
        local = m_cpu[c].loaded_mm == &mm;
        return;
      }
      if (all || x86::should_flush_tlb(m_cpu[c], info)) {
        targets.push_back(c);
      } else if (m_cpu[c].is_lazy) {
        ++m_vmstats.ipis_skipped_lazy;
      } else {
        ++m_vmstats.ipis_skipped_not_loaded;
      }
    });
    flush_tlb_multi(ctx, targets, local, info);
  } else if (m_cpu[self].loaded_mm == &mm) {
    flush_tlb_local(ctx, info);
  }
  // else: nobody has the mm loaded; nothing to flush.
  tlb_gen_moved(mm);
}

void X86ArchMmuBase::tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) {
  // Mirrors arch/x86/include/asm/tlb.h:tlb_flush().
  const unsigned stride = req.unmap_shift();
  if (req.fullmm) {
    flush_tlb_mm_range(ctx, mm, 0, x86::kTlbFlushAll, stride, req.freed_tables);
  } else {
    flush_tlb_mm_range(ctx, mm, req.start.value(), req.end.value(), stride, req.freed_tables);
  }
}

void X86ArchMmuBase::flush_tlb_mm(ExecContext& ctx, Mm& mm) {
  flush_tlb_mm_range(ctx, mm, 0, x86::kTlbFlushAll, 0, true);
}

void X86ArchMmuBase::flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
  flush_tlb_mm_range(ctx, mm, start.value(), end.value(), 12, m_cfg.flush_range_freed_tables);
}

void X86ArchMmuBase::flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) {
  flush_tlb_mm_range(ctx, mm, addr.value(), addr.value() + kPageSize, 12, false);
}

void X86ArchMmuBase::flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start,
                                         VirtAddr end) {
  flush_tlb_mm_range(ctx, mm, start.value(), end.value(), 21, false);
}

// --- batched unmap flush ------------------------------------------------------------

bool X86ArchMmuBase::arch_tlbbatch_should_defer(ExecContext& ctx, Mm& mm) {
  // Mirrors arch/x86/include/asm/tlbflush.h:arch_tlbbatch_should_defer(): only
  // remote flushes are worth batching.
  ctx.sync_with_cpus();
  return mm.cpumask().any_other_than(ctx.cpu);
}

void X86ArchMmuBase::arch_tlbbatch_add_pending(ExecContext& ctx, Mm& mm, VirtAddr start,
                                               VirtAddr end) {
  // Mirrors arch_tlbbatch_add_pending(): inc_mm_tlb_gen + OR the mm's cpumask into
  // the batch. No TLB maintenance yet.
  (void)start, (void)end;
  ctx.sync_with_cpus();
  mm.inc_tlb_gen();
  m_batch[ctx.cpu] |= mm.cpumask();
  std::vector<const Mm*>& mms = m_batch_mms[ctx.cpu];
  if (std::find(mms.begin(), mms.end(), &mm) == mms.end()) mms.push_back(&mm);
}

void X86ArchMmuBase::arch_tlbbatch_flush(ExecContext& ctx) {
  // Mirrors arch/x86/mm/tlb.c:arch_tlbbatch_flush(): mm = NULL, full flush,
  // TLB_GENERATION_INVALID; IPIs to the non-lazy CPUs of the union cpumask, each
  // flushing fully only if its loaded mm's generation moved.
  ctx.sync_with_cpus();
  CpuMask& batch = m_batch[ctx.cpu];
  const unsigned self = ctx.cpu;
  const x86::FlushTlbInfo info = x86::get_flush_tlb_info(nullptr, 0, x86::kTlbFlushAll, 0, false,
                                                         0, self, m_cfg.flush_ceiling);
  if (batch.any_other_than(self)) {
    ++m_vmstats.nr_tlb_remote_flush;
    std::vector<unsigned>& targets = m_targets[self];
    targets.clear();
    bool local = false;
    batch.for_each([&](unsigned c) {
      if (c == self) {
        local = !m_cpu[c].is_lazy;
        return;
      }
      if (x86::should_flush_tlb(m_cpu[c], info)) {
        targets.push_back(c);
      } else {
        ++m_vmstats.ipis_skipped_lazy;
      }
    });
    flush_tlb_multi(ctx, targets, local, info);
  } else if (batch.test(self)) {
    flush_tlb_local(ctx, info);
  }
  batch.clear_all();
  for (const Mm* mm : m_batch_mms[self]) tlb_gen_moved(*mm);
  m_batch_mms[self].clear();
}

}  // namespace tlbsim::mm

#include "mm/arch/x86_tlb.h"

#include "mm/mm_struct.h"

namespace tlbsim::mm::x86 {

FlushTlbInfo get_flush_tlb_info(const Mm* mm, uint64_t start, uint64_t end,
                                unsigned stride_shift, bool freed_tables, uint64_t new_tlb_gen,
                                unsigned cpu, unsigned ceiling) {
  FlushTlbInfo info;
  // Mirrors arch/x86/mm/tlb.c:get_flush_tlb_info(): "> ceiling" strides → flush all.
  if (end != kTlbFlushAll && ((end - start) >> stride_shift) > ceiling) {
    start = 0;
    end = kTlbFlushAll;
  }
  info.mm = mm;
  info.start = start;
  info.end = end;
  info.stride_shift = stride_shift;
  info.freed_tables = freed_tables;
  info.new_tlb_gen = new_tlb_gen;
  info.initiating_cpu = cpu;
  return info;
}

bool should_flush_tlb(const CpuTlbState& cpu, const FlushTlbInfo& info) {
  // Mirrors arch/x86/mm/tlb.c:should_flush_tlb().
  if (cpu.is_lazy) return false;
  if (!info.mm) return true;
  if (cpu.loaded_mm == info.mm) return true;
  return false;
}

FlushAction flush_tlb_func(CpuTlbState& cpu, const FlushTlbInfo& info, uint64_t mm_tlb_gen) {
  // Mirrors arch/x86/mm/tlb.c:flush_tlb_func().
  FlushAction a;
  a.pcid = kern_pcid(cpu.loaded_asid);
  if (info.mm && info.mm != cpu.loaded_mm) {
    a.kind = FlushAction::Kind::kNotLoaded;
    return a;
  }
  if (!cpu.loaded_mm) {
    a.kind = FlushAction::Kind::kInitMm;
    return a;
  }
  if (cpu.is_lazy) {
    // Only reachable through the freed_tables path: switch to init_mm, cheaper
    // than flushing and safe against speculative walks of freed tables.
    cpu.loaded_mm = nullptr;
    a.kind = FlushAction::Kind::kLazySwitch;
    return a;
  }
  auto& slot = cpu.ctxs[cpu.loaded_asid];
  const uint64_t local_gen = slot.tlb_gen;
  if (info.new_tlb_gen != 0 && info.new_tlb_gen <= local_gen) {
    a.kind = FlushAction::Kind::kUpToDate;
    return a;
  }
  if (local_gen == mm_tlb_gen) {
    a.kind = FlushAction::Kind::kUpToDate;
    return a;
  }
  const bool partial = !info.full() && info.new_tlb_gen == local_gen + 1 &&
                       info.new_tlb_gen == mm_tlb_gen;
  if (partial) {
    a.kind = FlushAction::Kind::kPartial;
    a.nr_invlpg = info.nr_steps();
  } else {
    a.kind = FlushAction::Kind::kFull;
    a.coalesced = !info.full();
  }
  slot.tlb_gen = mm_tlb_gen;
  return a;
}

SwitchAction switch_mm_irqs_off(CpuTlbState& cpu, Mm& next, bool pcid_enabled) {
  // Mirrors arch/x86/mm/tlb.c:switch_mm_irqs_off() and choose_new_asid().
  SwitchAction s;
  if (cpu.loaded_mm == &next) {
    s.same_mm = true;
    s.asid = cpu.loaded_asid;
    if (cpu.is_lazy) {
      cpu.is_lazy = false;
      auto& slot = cpu.ctxs[cpu.loaded_asid];
      if (slot.tlb_gen != next.tlb_gen()) {
        s.flush = true;
        slot.tlb_gen = next.tlb_gen();
      }
    }
    return s;
  }
  cpu.is_lazy = false;
  if (!pcid_enabled) {
    cpu.loaded_asid = 0;
    cpu.ctxs[0] = {next.ctx_id(), next.tlb_gen()};
    cpu.loaded_mm = &next;
    s.asid = 0;
    s.flush = true;
    return s;
  }
  for (uint16_t asid = 0; asid < kNrDynAsids; ++asid) {
    if (cpu.ctxs[asid].ctx_id != next.ctx_id()) continue;
    s.asid = asid;
    s.flush = cpu.ctxs[asid].tlb_gen < next.tlb_gen();
    cpu.ctxs[asid].tlb_gen = next.tlb_gen();
    cpu.loaded_asid = asid;
    cpu.loaded_mm = &next;
    return s;
  }
  uint16_t asid = cpu.next_asid++;
  if (asid >= kNrDynAsids) {
    asid = 0;
    cpu.next_asid = 1;
  }
  s.new_asid = true;
  s.evicted = cpu.ctxs[asid].ctx_id != 0;
  cpu.ctxs[asid] = {next.ctx_id(), next.tlb_gen()};
  cpu.loaded_asid = asid;
  cpu.loaded_mm = &next;
  s.asid = asid;
  s.flush = true;
  return s;
}

}  // namespace tlbsim::mm::x86

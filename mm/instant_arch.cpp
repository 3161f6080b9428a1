#include "mm/instant_arch.h"

#include <algorithm>

namespace tlbsim::mm {

uint64_t InstantArch::count(ArchEvent::Kind kind) const {
  return static_cast<uint64_t>(std::count_if(m_events.begin(), m_events.end(),
                                             [&](const ArchEvent& e) { return e.kind == kind; }));
}

void InstantArch::on_frames_freed(Pfn pfn, uint64_t nr, const char* what) {
  (void)what;
  ArchEvent e{ArchEvent::Kind::kFramesFreed};
  e.pfn = pfn.value();
  e.count = nr;
  m_events.push_back(e);
}

void InstantArch::record_action(unsigned cpu, const x86::FlushAction& a, FlushCause cause) {
  ArchEvent e{a.kind == x86::FlushAction::Kind::kPartial ? ArchEvent::Kind::kLocalPartial
                                                         : ArchEvent::Kind::kLocalFull};
  if (a.kind != x86::FlushAction::Kind::kPartial && a.kind != x86::FlushAction::Kind::kFull)
    return;
  e.cpu = cpu;
  e.count = a.nr_invlpg;
  e.cause = cause;
  m_events.push_back(e);
}

void InstantArch::flush_tlb_multi(ExecContext& ctx, const std::vector<unsigned>& targets,
                                  bool local, const x86::FlushTlbInfo& info) {
  ArchEvent req{ArchEvent::Kind::kFlushRequest};
  req.cpu = ctx.cpu;
  req.start = info.start;
  req.end = info.end;
  req.cause = ctx.cause;
  m_events.push_back(req);
  for (unsigned t : targets) {
    ArchEvent ipi{ArchEvent::Kind::kIpi};
    ipi.cpu = ctx.cpu;
    ipi.target = t;
    ipi.cause = ctx.cause;
    m_events.push_back(ipi);
  }
  if (local) record_action(ctx.cpu, flush_tlb_func_on(ctx.cpu, info, true), ctx.cause);
  for (unsigned t : targets) record_action(t, flush_tlb_func_on(t, info, false), ctx.cause);
}

void InstantArch::flush_tlb_local(ExecContext& ctx, const x86::FlushTlbInfo& info) {
  ArchEvent req{ArchEvent::Kind::kFlushRequest};
  req.cpu = ctx.cpu;
  req.start = info.start;
  req.end = info.end;
  req.cause = ctx.cause;
  m_events.push_back(req);
  record_action(ctx.cpu, flush_tlb_func_on(ctx.cpu, info, true), ctx.cause);
}

void InstantArch::load_cr3(ExecContext& ctx, const x86::SwitchAction& action) {
  ArchEvent e{ArchEvent::Kind::kCr3};
  e.cpu = ctx.cpu;
  e.count = action.flush ? 1 : 0;
  m_events.push_back(e);
}

}  // namespace tlbsim::mm

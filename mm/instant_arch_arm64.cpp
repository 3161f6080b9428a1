#include "mm/instant_arch_arm64.h"

#include <algorithm>

namespace tlbsim::mm {

uint64_t InstantArm64Arch::count(Arm64ArchEvent::Kind kind) const {
  return static_cast<uint64_t>(std::count_if(
      m_events.begin(), m_events.end(), [&](const Arm64ArchEvent& e) { return e.kind == kind; }));
}

uint64_t InstantArm64Arch::count_tlbi(arm64::TlbiKind kind) const {
  return static_cast<uint64_t>(
      std::count_if(m_events.begin(), m_events.end(), [&](const Arm64ArchEvent& e) {
        return e.kind == Arm64ArchEvent::Kind::kTlbi && e.op.kind == kind;
      }));
}

void InstantArm64Arch::on_frames_freed(Pfn pfn, uint64_t nr, const char* what) {
  (void)what;
  Arm64ArchEvent e;
  e.kind = Arm64ArchEvent::Kind::kFramesFreed;
  e.pfn = pfn.value();
  e.count = nr;
  m_events.push_back(e);
}

void InstantArm64Arch::tlbi(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) {
  for (const auto& op : ops) {
    Arm64ArchEvent e;
    e.kind = Arm64ArchEvent::Kind::kTlbi;
    e.cpu = ctx.cpu;
    e.op = op;
    e.cause = ctx.cause;
    m_events.push_back(e);
  }
}

void InstantArm64Arch::tlbi_local(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) {
  // Recorded as TLBI events (op.kind kVale1); the DSB NSH is local and not an event.
  tlbi(ctx, ops);
}

void InstantArm64Arch::dsb_ish(ExecContext& ctx) {
  Arm64ArchEvent e;
  e.kind = Arm64ArchEvent::Kind::kDsb;
  e.cpu = ctx.cpu;
  e.cause = ctx.cause;
  m_events.push_back(e);
}

void InstantArm64Arch::cpu_switch_mm(ExecContext& ctx, Mm& next) {
  (void)next;
  Arm64ArchEvent e;
  e.kind = Arm64ArchEvent::Kind::kSwitch;
  e.cpu = ctx.cpu;
  m_events.push_back(e);
}

void InstantArm64Arch::contpte_before_make(ExecContext& ctx, Mm& mm, VirtAddr block) {
  (void)mm;
  Arm64ArchEvent e;
  e.kind = Arm64ArchEvent::Kind::kMake;
  e.cpu = ctx.cpu;
  e.op.va = block.value();
  e.cause = ctx.cause;
  m_events.push_back(e);
}

}  // namespace tlbsim::mm

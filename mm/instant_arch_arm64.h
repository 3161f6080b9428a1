// InstantArm64Arch: the arm64 ArchMmu decisions executed in zero time, every
// hardware action recorded (each TLBI instruction, each DSB ISH, TTBR0 loads, frame
// frees) — the arm64 counterpart of InstantArch for kernel unit tests.
#pragma once

#include <cstdint>
#include <vector>

#include "mm/arch/arm64_arch_mmu.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

/// One recorded arm64 hardware event.
struct Arm64ArchEvent {
  enum class Kind : uint8_t {
    kTlbi,         // one TLBI instruction (op), broadcast from `cpu`
    kDsb,          // DSB ISH on `cpu`: the preceding TLBIs completed
    kSwitch,       // TTBR0 load on `cpu`
    kFramesFreed,  // frames returned to the allocator (count frames at pfn)
    kMake,         // break-before-make: the block at op.va is about to be rewritten
  };
  Kind kind = Kind::kTlbi;
  unsigned cpu = 0;
  arm64::TlbiOp op{};
  uint64_t count = 0, pfn = 0;
  FlushCause cause = FlushCause::kNone;
};

class InstantArm64Arch final : public Arm64ArchMmuBase, public FrameObserver {
 public:
  InstantArm64Arch(const Arm64ArchConfig& cfg, StatGroup* stats_parent)
      : Arm64ArchMmuBase(cfg, stats_parent) {}

  const std::vector<Arm64ArchEvent>& events() const { return m_events; }
  void clear_events() { m_events.clear(); }
  /// Number of recorded events of `kind`.
  uint64_t count(Arm64ArchEvent::Kind kind) const;
  /// Number of TLBI instructions of `kind`.
  uint64_t count_tlbi(arm64::TlbiKind kind) const;
  void on_frames_freed(Pfn pfn, uint64_t nr, const char* what) override;
  void on_frames_allocated(Pfn, uint64_t) override {}

 protected:
  void tlbi(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) override;
  void dsb_ish(ExecContext& ctx) override;
  void tlbi_local(ExecContext& ctx, const std::vector<arm64::TlbiOp>& ops) override;
  void cpu_switch_mm(ExecContext& ctx, Mm& next) override;
  void contpte_before_make(ExecContext& ctx, Mm& mm, VirtAddr block) override;

 private:
  std::vector<Arm64ArchEvent> m_events;
};

}  // namespace tlbsim::mm

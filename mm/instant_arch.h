// InstantArch: the x86-64 ArchMmu decisions executed in zero time, with every
// hardware action recorded — so kernel behaviour (which flushes, which IPIs, in
// which order relative to frees) is testable without SystemC.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mm/arch/x86_arch_mmu.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

/// One recorded hardware event.
struct ArchEvent {
  enum class Kind : uint8_t {
    kFlushRequest,  // flush_tlb_mm_range entered (start/end after the ceiling rule)
    kIpi,           // IPI sent from `cpu` to `target`
    kLocalPartial,  // INVLPG loop of `count` pages on `cpu`
    kLocalFull,     // full flush of the loaded PCID on `cpu`
    kCr3,           // context-switch CR3 write on `cpu` (count = 1 if flushing)
    kFramesFreed,   // frames returned to the allocator (count frames at pfn)
  };
  Kind kind;
  unsigned cpu = 0;
  unsigned target = 0;
  uint64_t start = 0, end = 0, count = 0, pfn = 0;
  FlushCause cause = FlushCause::kNone;
};

class InstantArch final : public X86ArchMmuBase, public FrameObserver {
 public:
  InstantArch(const X86ArchConfig& cfg, StatGroup* stats_parent)
      : X86ArchMmuBase(cfg, stats_parent) {}

  const std::vector<ArchEvent>& events() const { return m_events; }
  void clear_events() { m_events.clear(); }
  /// Number of recorded events of `kind`.
  uint64_t count(ArchEvent::Kind kind) const;
  /// Record frees too (attach with PhysMem::set_observer) to check orderings.
  void on_frames_freed(Pfn pfn, uint64_t nr, const char* what) override;
  void on_frames_allocated(Pfn, uint64_t) override {}

 protected:
  void flush_tlb_multi(ExecContext& ctx, const std::vector<unsigned>& targets, bool local,
                       const x86::FlushTlbInfo& info) override;
  void flush_tlb_local(ExecContext& ctx, const x86::FlushTlbInfo& info) override;
  void load_cr3(ExecContext& ctx, const x86::SwitchAction& action) override;

 private:
  void record_action(unsigned cpu, const x86::FlushAction& a, FlushCause cause);
  std::vector<ArchEvent> m_events;
};

}  // namespace tlbsim::mm

// x86-64 TLB-flush decisions, as Linux makes them in arch/x86/mm/tlb.c. Pure
// functions over plain per-CPU state, shared by mm::InstantArch and the SystemC
// x86 model so both take exactly the same decisions; the callers execute them
// (INVLPG loops, CR3 writes, IPIs) with or without time.
#pragma once

#include <array>
#include <cstdint>

#include "base/addr.h"

namespace tlbsim::mm {
class Mm;
}

namespace tlbsim::mm::x86 {

inline constexpr uint64_t kTlbFlushAll = ~0ull;
/// TLB_NR_DYN_ASIDS: dynamic PCID slots per CPU.
inline constexpr unsigned kNrDynAsids = 6;
/// Default tlb_single_page_flush_ceiling.
inline constexpr unsigned kDefaultFlushCeiling = 33;

/// struct flush_tlb_info.
struct FlushTlbInfo {
  const Mm* mm = nullptr;  // nullptr: batched (reclaim) flush of any mm
  uint64_t start = 0;
  uint64_t end = 0;        // kTlbFlushAll for a full flush
  unsigned stride_shift = 12;
  bool freed_tables = false;
  uint64_t new_tlb_gen = 0;  // 0 = TLB_GENERATION_INVALID
  unsigned initiating_cpu = 0;
  bool full() const { return end == kTlbFlushAll; }
  /// Stride steps of a partial flush (INVLPGs per CPU): flush_tlb_func()'s loop
  /// `for (addr = start; addr < end; addr += 1 << stride_shift)`, so a range shorter
  /// than one stride still takes one INVLPG (a munmap that frees only a PTE table:
  /// a 4 KiB range at PMD stride).
  uint64_t nr_steps() const {
    if (full() || end <= start) return 0;
    return ((end - start - 1) >> stride_shift) + 1;
  }
};

/// Per-CPU struct tlb_state (+ is_lazy of tlb_state_shared).
struct CpuTlbState {
  Mm* loaded_mm = nullptr;  // nullptr = init_mm
  uint16_t loaded_asid = 0;
  uint16_t next_asid = 1;
  bool is_lazy = false;
  struct Ctx {
    uint64_t ctx_id = 0;
    uint64_t tlb_gen = 0;
  };
  std::array<Ctx, kNrDynAsids> ctxs{};
};

/// kern_pcid(asid): the hardware PCID of dynamic ASID slot `asid`.
inline uint16_t kern_pcid(uint16_t asid) { return static_cast<uint16_t>(asid + 1); }

/// get_flush_tlb_info(): ranges of more than `ceiling` strides become full flushes.
FlushTlbInfo get_flush_tlb_info(const Mm* mm, uint64_t start, uint64_t end,
                                unsigned stride_shift, bool freed_tables, uint64_t new_tlb_gen,
                                unsigned cpu, unsigned ceiling);

/// should_flush_tlb(): does `cpu` need the IPI for `info` (when tables were not freed)?
bool should_flush_tlb(const CpuTlbState& cpu, const FlushTlbInfo& info);

/// What flush_tlb_func() decided on one CPU.
struct FlushAction {
  enum class Kind : uint8_t {
    kNotLoaded,   // info.mm is not loaded here: leave mm_cpumask, no flush
    kInitMm,      // CPU runs init_mm: nothing to do
    kLazySwitch,  // lazy CPU: switch to init_mm instead of flushing
    kUpToDate,    // generation already covered: no flush
    kPartial,     // INVLPG per stride step
    kFull,        // flush the loaded PCID (CR3 reload)
  };
  Kind kind = Kind::kUpToDate;
  bool coalesced = false;  // kFull although the request was a range: tlb_gen moved on meanwhile
  uint64_t nr_invlpg = 0;
  uint16_t pcid = 0;  // PCID that the action applies to
};

/// flush_tlb_func(): decide and update per-CPU state (tlb_gen catch-up, lazy switch).
/// `mm_tlb_gen` is loaded_mm->context.tlb_gen at the time the handler runs.
FlushAction flush_tlb_func(CpuTlbState& cpu, const FlushTlbInfo& info, uint64_t mm_tlb_gen);

/// What switch_mm_irqs_off() decided.
struct SwitchAction {
  uint16_t asid = 0;
  bool flush = false;  // CR3 write without NOFLUSH: the new PCID's entries are dropped
  bool same_mm = false;
  bool new_asid = false;  // choose_new_asid() found no slot of next: took cpu.next_asid
  bool evicted = false;   // ... and that slot held another mm's context, now lost
};

/// switch_mm_irqs_off() / choose_new_asid() with PCIDs. The caller sets the CPU's
/// bit in next's mm_cpumask (before reading its tlb_gen, as Linux does).
SwitchAction switch_mm_irqs_off(CpuTlbState& cpu, Mm& next, bool pcid_enabled);

}  // namespace tlbsim::mm::x86

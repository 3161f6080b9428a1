// What a Core needs from its architecture's translation hardware (x86::X86CoreMmu,
// arm64::Arm64CoreMmu): the contract, as a C++20 concept rather than a virtual
// interface — the Core's access loop is instantiated once per MMU type, so a
// translation costs no indirect call (measured in tests/bench/sim_bench.cpp).
//
// A CoreMmu is plain C++ (no SystemC): TLBs, walk caches and the walker, which reads
// the kernel's real page-table entries from simulated frames.
#pragma once

#include <concepts>
#include <cstdint>
#include <utility>

#include "base/addr.h"
#include "models/mem/cache_hierarchy.h"
#include "models/tlb/tlb.h"
#include "models/tlb/walk_cache.h"

namespace tlbsim {

enum class Access : uint8_t { kRead, kWrite, kExec };

/// Result of one translation attempt.
struct XlatResult {
  bool fault = false;
  bool write_fault = false;  // the fault was raised by a store
  uint64_t cycles = 0;       // translation latency beyond the core's access cost
  uint64_t pa = 0;           // the physical address the access goes to (no fault)
};

/// Frame generations kept by the coherence checker: a TLB or walk-cache entry
/// remembers the generation of its frame at fill time; a use with another
/// generation used a translation to a freed frame.
struct FrameGenerations {
  const uint32_t* gen = nullptr;  // indexed by pfn; nullptr when checking is off
};

/// What went stale.
enum class StaleKind : uint8_t {
  kTlb,                    // a TLB hit translated to a freed frame
  kWalkCache,              // a walk continued from a cached pointer to a freed page table
  kBreakBeforeMake,        // a TLB still held a translation when its entries were rewritten
  kFreedBeforeInvalidate,  // a by-VA invalidation found an entry whose frame was already
                           // freed: the kernel freed before flushing (ordering contract)
  kPermission,             // a TLB hit allowed an access that the current PTE does not
                           // (not present, another frame, read-only, no-exec)
  kFreedWhileCached,       // a frame was freed while a TLB the hardware may still use
                           // held a translation to it (found at the free)
  kTableFreedWhileCached,  // a page table was freed while a walk cache the hardware may
                           // still use pointed to it (found at the free)
};

/// Called on every stale use; set by the coherence checker.
using StaleHook = void (*)(void* ctx, unsigned cpu, VirtAddr va, Pfn pfn, StaleKind kind);

/// The permission half of the checker: called on every TLB hit that lets an access
/// through, with the entry used and the root the walker would start from; the
/// checker compares the entry with the current page-table entry (nullptr: off).
using PermissionHook = void (*)(void* ctx, unsigned cpu, VirtAddr va, Access kind,
                                const TlbEntry& e, Pfn root);

/// The drop-time check of by-VA invalidations (INVLPG, TLBI VA/range): an entry
/// still cached when its frame was freed means the free came before the flush.
/// Whole-ASID flushes are not checked: entries of a dead or switched-away address
/// space legitimately outlive their frames until such a flush (x86 PCID slot reuse,
/// lazy CPUs, arm64 exit without leaf TLBIs).
struct FreedBeforeInvalidateCheck {
  const uint32_t* gen;
  StaleHook hook;
  void* ctx;
  unsigned cpu;
  void operator()(const TlbEntry& e) const {
    if (gen && gen[e.pfn.value()] != e.fill_id)
      hook(ctx, cpu, e.base(), e.pfn, StaleKind::kFreedBeforeInvalidate);
  }
  /// Walk-cache entries: the page table they point to was freed first.
  void operator()(const WalkCacheEntry& e) const {
    if (gen && gen[e.table.value()] != e.fill_id)
      hook(ctx, cpu, VirtAddr(e.prefix), e.table, StaleKind::kFreedBeforeInvalidate);
  }
};

/// Counters every core MMU keeps (plain members, registered with names by the MMU).
struct CoreMmuCounters {
  uint64_t walks = 0, walk_faults = 0, walk_cycles_total = 0, ad_updates = 0, walk_reads = 0;
  uint64_t invlpg_count = 0;  // invalidations by VA executed (x86 INVLPG, arm64 TLBI by VA/range)
  uint64_t pcid_flushes = 0;  // whole-address-space invalidations (CR3 flush, TLBI ASIDE1)
  uint64_t entries_invalidated = 0;
  /// Walk reads by page-table level (1 = PTE .. 5) and by where the cache
  /// hierarchy served them.
  std::array<std::array<uint64_t, static_cast<size_t>(MemLevel::kCount)>, 6> walk_reads_at{};
};

/// The contract of a core's translation hardware.
template <class M>
concept CoreMmu = requires(M m, const M cm, VirtAddr va, Access a, uint16_t asid, Pfn root) {
  /// Translate `va` for an access under `asid`, walking from `root` on a miss.
  { m.translate(va, a, asid, root) } -> std::same_as<XlatResult>;
  /// The L1 data TLB and the second-level TLB (nullptr if absent), for statistics.
  { cm.l1d() } -> std::same_as<const Tlb&>;
  { cm.l2() } -> std::same_as<const Tlb*>;
  { cm.counters() } -> std::same_as<const CoreMmuCounters&>;
  m.set_frame_generations(FrameGenerations{});
  m.set_stale_hook(StaleHook{}, nullptr);
  m.set_permission_hook(PermissionHook{}, nullptr);
  m.attach_residency(std::declval<Residency&>());
};

}  // namespace tlbsim

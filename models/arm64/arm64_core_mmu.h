// One arm64 core's translation hardware in plain C++ (no SystemC), Neoverse N1
// style: a fully associative L1 data TLB, a set-associative L2 TLB holding every
// page size, a walk cache of non-leaf descriptors, and the stage-1 walker for the
// 4 KiB granule, 4 levels (48-bit VA), which reads the kernel's real descriptors
// from simulated frames and performs the hardware access-flag and dirty-state
// (DBM) updates.
//
// contpte: a leaf PTE with PTE_CONT is cached as one 64 KiB entry covering its
// aligned 16-page block when contig_as_one_entry is on (the architecture allows,
// never requires it). The block's output address comes from the walked descriptor,
// as in hardware: a misprogrammed block is cached as programmed.
//
// Invalidation: tlbi() applies one TLBI value (mm/arch/arm64_tlb.h) to this core's
// structures — by VA: every entry covering the address (any size); last-level ops
// keep walk-cache entries; range ops: every entry overlapping the range.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/stats.h"
#include "mm/arch/arm64_tlb.h"
#include "mm/phys_mem.h"
#include "mm/pte.h"
#include "models/cpu/core_mmu.h"
#include "models/machine_params.h"
#include "models/mem/cache_hierarchy.h"
#include "models/tlb/tlb.h"
#include "models/tlb/walk_cache.h"

namespace tlbsim::arm64 {

class Arm64CoreMmu : public CoreMmuCounters {
 public:
  /// Page-walk reads go through `mem` as CPU `cpu`'s references.
  /// `seed` (the experiment's) seeds the TLBs' "random" replacement.
  Arm64CoreMmu(unsigned cpu, const MachineParams& mp, mm::PhysMem& pm, CacheHierarchy& mem,
               StatGroup* stats_parent, uint64_t seed = 1);

  /// Translates `va` for an access of `kind` under `asid`, walking from TTBR0 =
  /// `root` on a miss. A fault leaves the TLBs without an entry for `va`.
  [[gnu::always_inline]] XlatResult translate(VirtAddr va, Access kind, uint16_t asid, Pfn root) {
    if (const TlbEntry* e = m_l1d.lookup(va, asid)) return hit(*e, va, kind, asid, root, 0);
    if (m_l2) {
      if (const TlbEntry* e = m_l2->lookup(va, asid)) {
        TlbEntry copy = *e;
        fill_l1(copy);
        return hit(copy, va, kind, asid, root, m_l2_latency);
      }
    }
    return miss(va, kind, asid, root, m_l2 ? m_l2_latency : 0);
  }

  /// Applies one TLBI to this core's TLBs and walk cache; returns entries dropped.
  uint64_t tlbi(const mm::arm64::TlbiOp& op);

  void set_frame_generations(FrameGenerations g) { m_gens = g; }
  void set_stale_hook(StaleHook hook, void* ctx) {
    m_stale_hook = hook;
    m_stale_ctx = ctx;
  }
  /// Called on every TLB hit that lets an access through; set by the checker.
  void set_permission_hook(PermissionHook hook, void* ctx) {
    m_perm_hook = hook;
    m_perm_ctx = ctx;
  }

  /// Reports every TLB and walk-cache fill and drop to `r`.
  void attach_residency(Residency& r) {
    for (Tlb* t : {&m_l1d, m_l2.get()}) {
      if (!t) continue;
      t->set_residency(&r, m_cpu);
      r.attach(m_cpu, *t);
    }
    if (m_walk_cache) {
      m_walk_cache->set_residency(&r, m_cpu);
      r.attach(m_cpu, *m_walk_cache);
    }
  }

  const Tlb& l1d() const { return m_l1d; }
  const Tlb* l2() const { return m_l2.get(); }
  const WalkCache* walk_cache() const { return m_walk_cache.get(); }
  const CoreMmuCounters& counters() const { return *this; }
  /// Whether any TLB holds a translation for `va` under `asid` (no side effects).
  bool holds(VirtAddr va, uint16_t asid) const {
    return m_l1d.peek(va, asid) || (m_l2 && m_l2->peek(va, asid));
  }
  /// Whether a hit on a contpte block is cached as one 64 KiB entry.
  bool contig_as_one_entry() const { return m_contig; }

 private:
  [[gnu::always_inline]] XlatResult hit(const TlbEntry& e, VirtAddr va, Access kind,
                                        uint16_t asid, Pfn root, uint64_t cycles) {
    if (m_gens.gen && m_gens.gen[e.pfn.value()] != e.fill_id)
      m_stale_hook(m_stale_ctx, m_cpu, va, e.pfn_for(va), StaleKind::kTlb);
    if ((kind == Access::kWrite && (!e.writable || !e.dirty)) ||
        (kind == Access::kExec && !e.executable)) [[unlikely]] {
      // A store through a read-only entry or an EL0 fetch through a UXN one is a
      // permission fault (the TLB caches the permissions: Arm ARM D8.4); a store
      // through a writable-clean (DBM) entry needs the walker's dirty-state update.
      // All re-walk.
      invalidate_entry(va, asid);
      return miss(va, kind, asid, root, cycles);
    }
    if (m_perm_hook) [[unlikely]] m_perm_hook(m_perm_ctx, m_cpu, va, kind, e, root);
    return XlatResult{false, false, cycles, e.translate(va).value()};
  }
  XlatResult miss(VirtAddr va, Access kind, uint16_t asid, Pfn root, uint64_t cycles);
  void fill_l1(const TlbEntry& e) {
    if (m_l1d.holds(e.size)) m_l1d.insert(e);
  }
  void invalidate_entry(VirtAddr va, uint16_t asid);
  /// One walk read of the descriptor at `pa` (our level `level`): its latency.
  uint64_t read_latency(uint64_t pa, unsigned level) {
    ++walk_reads;
    const CacheHierarchy::Result r = m_mem.access(m_cpu, pa, MemSource::kWalk);
    ++walk_reads_at[level][static_cast<size_t>(r.level)];
    return r.cycles;
  }

  unsigned m_cpu;
  mm::PhysMem& m_pm;
  mm::PteCodec m_codec{mm::Arch::kArm64};
  Tlb m_l1d;
  std::unique_ptr<Tlb> m_l2;
  uint64_t m_l2_latency;
  std::unique_ptr<WalkCache> m_walk_cache;
  uint64_t m_walk_cache_hit_cycles;
  bool m_contig;
  CacheHierarchy& m_mem;
  uint64_t m_l1_cycles;
  FrameGenerations m_gens;
  StaleHook m_stale_hook = nullptr;
  void* m_stale_ctx = nullptr;
  PermissionHook m_perm_hook = nullptr;
  void* m_perm_ctx = nullptr;

 public:
  uint64_t tlbi_received = 0;  // TLBI operations applied to this core
  uint64_t contpte_fills = 0;  // 64 KiB entries filled from PTE_CONT blocks

 private:
  StatGroup m_l1d_stats, m_l2_stats, m_walker_stats;
  std::vector<std::unique_ptr<StatBase>> m_stat_refs;
  std::vector<std::unique_ptr<StatGroup>> m_groups;
  Histogram* m_walk_latency = nullptr;
};

}  // namespace tlbsim::arm64

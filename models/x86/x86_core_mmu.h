// One x86-64 core's translation hardware in plain C++ (no SystemC): L1 dTLBs, the
// STLB, the paging-structure caches and the page walker, which reads the kernel's
// real page-table entries from simulated frames and sets their A/D bits.
//
// Hot path: translate() allocates nothing and looks nothing up by name.
// Walker: one state per level (gem5 stepWalk style), one debug line per step.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/stats.h"
#include "mm/phys_mem.h"
#include "mm/pte.h"
#include "models/arch/x86_64/invalidation.h"
#include "models/machine_params.h"
#include "models/cpu/core_mmu.h"
#include "models/mem/cache_hierarchy.h"
#include "models/tlb/tlb.h"
#include "models/tlb/walk_cache.h"

namespace tlbsim::x86 {

// The translation types are architecture-neutral (models/cpu/core_mmu.h).
using tlbsim::Access;
using tlbsim::FrameGenerations;
using tlbsim::PermissionHook;
using tlbsim::StaleHook;
using tlbsim::StaleKind;
using tlbsim::XlatResult;

class X86CoreMmu : public CoreMmuCounters {
 public:
  /// Page-walk reads go through `mem` as CPU `cpu`'s references.
  /// `seed` (the experiment's) seeds the TLBs' "random" replacement.
  X86CoreMmu(unsigned cpu, const MachineParams& mp, mm::PhysMem& pm, CacheHierarchy& mem,
             StatGroup* stats_parent, uint64_t seed = 1);

  /// Translates `va` for an access of `kind` under PCID `pcid`, walking from `cr3`
  /// on a miss. A fault leaves the TLBs without an entry for `va`.
  [[gnu::always_inline]] XlatResult translate(VirtAddr va, Access kind, uint16_t pcid, Pfn cr3) {
    if (const TlbEntry* e = m_l1d.lookup(va, pcid)) return hit(*e, va, kind, pcid, cr3, 0);
    if (m_l1d_2m) {
      if (const TlbEntry* e = m_l1d_2m->lookup(va, pcid)) return hit(*e, va, kind, pcid, cr3, 0);
    }
    if (m_stlb) {
      if (const TlbEntry* e = m_stlb->lookup(va, pcid)) {
        TlbEntry copy = *e;
        fill_l1(copy);
        return hit(copy, va, kind, pcid, cr3, m_stlb_latency);
      }
    }
    return miss(va, kind, pcid, cr3, m_stlb ? m_stlb_latency : 0);
  }

  /// INVLPG: drops every TLB entry covering `va` (global ones too) and, as the SDM
  /// allows, every paging-structure-cache entry of the current PCID.
  uint64_t invlpg(VirtAddr va, uint16_t pcid);
  /// CR3 write without NOFLUSH (or INVPCID single-context): drops the PCID's
  /// non-global TLB entries and its paging-structure-cache entries.
  uint64_t flush_pcid(uint16_t pcid);
  /// Executes any invalidation instruction (INVLPG, INVPCID types 0-3, CR3 write);
  /// returns the TLB entries dropped.
  uint64_t apply(const Invalidation& inv);

  void set_frame_generations(FrameGenerations g) { m_gens = g; }
  /// Called on every stale use; set by the coherence checker.
  void set_stale_hook(StaleHook hook, void* ctx) {
    m_stale_hook = hook;
    m_stale_ctx = ctx;
  }
  /// Called on every TLB hit that lets an access through; set by the checker.
  void set_permission_hook(PermissionHook hook, void* ctx) {
    m_perm_hook = hook;
    m_perm_ctx = ctx;
  }

  /// Reports every TLB and paging-structure-cache fill and drop to `r`.
  void attach_residency(Residency& r) {
    for (Tlb* t : {&m_l1d, m_l1d_2m.get(), m_stlb.get()}) {
      if (!t) continue;
      t->set_residency(&r, m_cpu);
      r.attach(m_cpu, *t);
    }
    for (auto& p : m_pwc) {
      if (!p) continue;
      p->set_residency(&r, m_cpu);
      r.attach(m_cpu, *p);
    }
  }

  const Tlb& l1d() const { return m_l1d; }
  const Tlb* stlb() const { return m_stlb.get(); }
  const Tlb* l2() const { return m_stlb.get(); }
  const CoreMmuCounters& counters() const { return *this; }
  /// Peek (no statistics, no replacement update) whether any TLB holds `va`.
  bool holds(VirtAddr va, uint16_t pcid) const {
    return m_l1d.peek(va, pcid) || (m_l1d_2m && m_l1d_2m->peek(va, pcid)) ||
           (m_stlb && m_stlb->peek(va, pcid));
  }

 private:
  [[gnu::always_inline]] XlatResult hit(const TlbEntry& e, VirtAddr va, Access kind,
                                        uint16_t pcid, Pfn cr3, uint64_t cycles) {
    if (m_gens.gen && m_gens.gen[e.pfn.value()] != e.fill_id)
      m_stale_hook(m_stale_ctx, m_cpu, va, e.pfn_for(va), StaleKind::kTlb);
    if ((kind == Access::kWrite && (!e.writable || !e.dirty)) ||
        (kind == Access::kExec && !e.executable) || !e.user) [[unlikely]] {
      // A store through a read-only entry, a fetch through an NX one or any user
      // access through a supervisor one faults (and the fault drops the entry); a
      // store through a clean entry needs a locked walk to set D. All re-walk
      // (SDM vol. 3A §4.10.4.1: a TLB entry never grants more than it cached).
      invalidate_entry(va, pcid);
      return miss(va, kind, pcid, cr3, cycles);
    }
    if (m_perm_hook) [[unlikely]] m_perm_hook(m_perm_ctx, m_cpu, va, kind, e, cr3);
    return XlatResult{false, false, cycles, e.translate(va).value()};
  }
  XlatResult miss(VirtAddr va, Access kind, uint16_t pcid, Pfn cr3, uint64_t cycles);
  /// An L1 dTLB per page size (Intel) or one for all sizes (AMD Zen: l1d.sizes
  /// lists them all and l1d_2m is absent).
  void fill_l1(const TlbEntry& e) {
    if (m_l1d.holds(e.size)) m_l1d.insert(e);
    else if (m_l1d_2m && m_l1d_2m->holds(e.size)) m_l1d_2m->insert(e);
  }
  void invalidate_entry(VirtAddr va, uint16_t pcid);
  /// One walk read of the entry at `pa` (page-table level `level`): its latency.
  uint64_t read_latency(uint64_t pa, unsigned level) {
    ++walk_reads;
    const CacheHierarchy::Result r = m_mem.access(m_cpu, pa, MemSource::kWalk);
    ++walk_reads_at[level][static_cast<size_t>(r.level)];
    return r.cycles;
  }

  unsigned m_cpu;
  mm::PhysMem& m_pm;
  mm::PteCodec m_codec{mm::Arch::kX86_64};
  unsigned m_levels;
  Tlb m_l1d;
  std::unique_ptr<Tlb> m_l1d_2m;
  std::unique_ptr<Tlb> m_stlb;
  uint64_t m_stlb_latency;
  std::unique_ptr<WalkCache> m_pwc[6];  // [level]: 4 = PML4E, 3 = PDPTE, 2 = PDE (5 = PML5E)
  uint64_t m_pwc_hit_cycles;
  CacheHierarchy& m_mem;
  uint64_t m_l1_cycles;
  FrameGenerations m_gens;
  StaleHook m_stale_hook = nullptr;
  void* m_stale_ctx = nullptr;
  PermissionHook m_perm_hook = nullptr;
  void* m_perm_ctx = nullptr;

  StatGroup m_l1d_stats, m_l1d_2m_stats, m_stlb_stats, m_walker_stats;
  std::vector<std::unique_ptr<StatBase>> m_stat_refs;
  std::vector<std::unique_ptr<StatGroup>> m_groups;
  Histogram* m_walk_latency = nullptr;
};

}  // namespace tlbsim::x86

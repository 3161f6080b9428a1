#include <stdexcept>
#include "mm/arch/arm64_arch_mmu.h"

#include <algorithm>

#include "mm/mm_struct.h"
#include "mm/phys_mem.h"

namespace tlbsim::mm {

using arm64::kContPtes;
using arm64::kContPteSize;
using arm64::TlbiKind;
using arm64::TlbiOp;

namespace {
/// Index of `addr` inside its contpte block.
unsigned cont_index(VirtAddr addr) {
  return static_cast<unsigned>(addr.vpn() & (kContPtes - 1));
}
}  // namespace

Arm64ArchMmuBase::Arm64ArchMmuBase(const Arm64ArchConfig& cfg, StatGroup* stats_parent)
    : ArchMmu(Arch::kArm64, cfg.nr_cpus, 4),
      m_cfg(cfg),
      m_vmstats(stats_parent),
      m_asids(cfg.asid_bits),
      m_loaded(cfg.nr_cpus, nullptr) {
  m_ops.reserve(8);
}

// --- address spaces ------------------------------------------------------------------

void Arm64ArchMmuBase::init_new_context(Mm& mm) {
  // Mirrors arch/arm64/mm/context.c: ASIDs are global, so one TLBI ASIDE1IS reaches
  // every CPU's entries of the mm. Allocated eagerly here (Linux allocates at the
  // first switch; the difference is invisible to TLB contents).
  bool rollover = false;
  mm.set_asid(m_asids.alloc(&rollover));
  ++m_vmstats.asid_allocations;
  if (rollover) {
    ++m_vmstats.asid_rollovers;
    m_rollover_flush_pending = true;
  }
}

void Arm64ArchMmuBase::destroy_context(Mm& mm) {
  for (auto& l : m_loaded)
    if (l == &mm) l = nullptr;
  m_asids.release(mm.asid());
}

void Arm64ArchMmuBase::switch_mm(ExecContext& ctx, Mm& next) {
  // check_and_switch_context(): after a rollover every TLB must be invalidated
  // before a recycled ASID is used (Linux: local flush on each CPU's next switch;
  // here one broadcast, which is at least as strong).
  if (m_rollover_flush_pending) {
    m_rollover_flush_pending = false;
    m_ops.assign(1, TlbiOp{TlbiKind::kVmalle1is, arm64::kTtlUnknown, 0, 0, 1});
    flush_ops(ctx);
  }
  next.cpumask().set(ctx.cpu);
  if (m_loaded[ctx.cpu] == &next) return;
  m_loaded[ctx.cpu] = &next;
  ++m_vmstats.ttbr_switches;
  cpu_switch_mm(ctx, next);
}

// --- flushes ------------------------------------------------------------------------

void Arm64ArchMmuBase::flush_ops(ExecContext& ctx) {
  if (m_ops.empty()) return;
  issue_ops(ctx);
  ++m_vmstats.dsb_ish;
  dsb_ish(ctx);
}

void Arm64ArchMmuBase::issue_ops(ExecContext& ctx) {
  for (const TlbiOp& op : m_ops) {
    ++m_vmstats.tlbi_ops;
    switch (op.kind) {
      case TlbiKind::kVale1is:
      case TlbiKind::kVae1is:
        ++m_vmstats.tlbi_va;
        break;
      case TlbiKind::kRvale1is:
      case TlbiKind::kRvae1is:
        ++m_vmstats.tlbi_range;
        break;
      case TlbiKind::kAside1is:
        ++m_vmstats.tlbi_asid;
        break;
      case TlbiKind::kVmalle1is:
        ++m_vmstats.tlbi_all;
        break;
      case TlbiKind::kVale1:
        throw std::logic_error("a local TLBI in a broadcast batch");
    }
  }
  tlbi(ctx, m_ops);
}

void Arm64ArchMmuBase::flush_tlb_range_arm64(ExecContext& ctx, Mm& mm, uint64_t start, uint64_t end,
                                             uint64_t stride, bool last_level, uint8_t tlb_level) {
  ++m_vmstats.range_flushes;
  const arm64::FlushRangePlan plan =
      arm64::flush_tlb_range_ops(mm.asid(), start, end, stride, last_level, tlb_level,
                                 m_cfg.range_tlbi, m_cfg.max_dvm_ops, m_ops);
  if (plan.asid_flush) {
    ++m_vmstats.range_to_asid;
    // flush_tlb_mm(), the op marked with the range it stands for (TlbiOp::for_range).
    TlbiOp op{TlbiKind::kAside1is, arm64::kTtlUnknown, mm.asid(), start, (end - start) >> 12};
    op.for_range = true;
    m_ops.assign(1, op);
    flush_ops(ctx);
    return;
  }
  flush_ops(ctx);
}

void Arm64ArchMmuBase::tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) {
  // Mirrors arch/arm64/include/asm/tlb.h:tlb_flush().
  const bool last_level = !req.freed_tables;
  const uint64_t stride = uint64_t{1} << req.unmap_shift();
  const uint8_t level = arm64::tlb_get_level(req.freed_tables, req.cleared_ptes, req.cleared_pmds,
                                             req.cleared_puds, req.cleared_p4ds);
  if (req.fullmm) {
    // ASIDs are never reused without a full invalidation, so a dying mm's leaf
    // entries need no TLBI; freed page tables do (walk caches).
    if (!last_level) flush_tlb_mm(ctx, mm);
    return;
  }
  flush_tlb_range_arm64(ctx, mm, req.start.value(), req.end.value(), stride, last_level, level);
}

void Arm64ArchMmuBase::flush_tlb_mm(ExecContext& ctx, Mm& mm) {
  // DSB ISHST; TLBI ASIDE1IS(asid); DSB ISH.
  m_ops.assign(1, TlbiOp{TlbiKind::kAside1is, arm64::kTtlUnknown, mm.asid(), 0, 1});
  flush_ops(ctx);
}

void Arm64ArchMmuBase::flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
  flush_tlb_range_arm64(ctx, mm, start.value(), end.value(), kPageSize, false, arm64::kTtlUnknown);
}

void Arm64ArchMmuBase::flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) {
  // DSB ISHST; TLBI VALE1IS(addr); DSB ISH — never turned into an ASID flush.
  m_ops.assign(1, TlbiOp{TlbiKind::kVale1is, 3, mm.asid(), addr.page_align_down().value(), 1});
  flush_ops(ctx);
}

void Arm64ArchMmuBase::flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
  flush_tlb_range_arm64(ctx, mm, start.value(), end.value(), uint64_t{1} << 21, false, 2);
}

// --- batched unmap flush -------------------------------------------------------------

bool Arm64ArchMmuBase::arch_tlbbatch_should_defer(ExecContext& ctx, Mm& mm) {
  // Mirrors arch/arm64/include/asm/tlbflush.h:arch_tlbbatch_should_defer(): always
  // (since Linux 6.5; the kernel's batched_reclaim_flush switch models older ones).
  (void)ctx, (void)mm;
  return true;
}

void Arm64ArchMmuBase::arch_tlbbatch_add_pending(ExecContext& ctx, Mm& mm, VirtAddr start,
                                                 VirtAddr end) {
  // Mirrors arch_tlbbatch_add_pending() → __flush_tlb_range_nosync(mm, start, end,
  // PAGE_SIZE, true, 3): the TLBIs are issued now, only the DSB is deferred. A range
  // beyond MAX_DVM_OPS degrades to a synchronous flush_tlb_mm.
  ++m_vmstats.range_flushes;
  const arm64::FlushRangePlan plan =
      arm64::flush_tlb_range_ops(mm.asid(), start.value(), end.value(), kPageSize, true, 3,
                                 m_cfg.range_tlbi, m_cfg.max_dvm_ops, m_ops);
  if (plan.asid_flush) {
    ++m_vmstats.range_to_asid;
    // flush_tlb_mm(), the op marked with the range it stands for (TlbiOp::for_range).
    TlbiOp op{TlbiKind::kAside1is, arm64::kTtlUnknown, mm.asid(), start.value(),
              (end - start) >> 12};
    op.for_range = true;
    m_ops.assign(1, op);
    flush_ops(ctx);
    return;
  }
  if (!m_ops.empty()) issue_ops(ctx);
}

void Arm64ArchMmuBase::arch_tlbbatch_flush(ExecContext& ctx) {
  // Mirrors arch_tlbbatch_flush(): dsb(ish).
  ++m_vmstats.dsb_ish;
  dsb_ish(ctx);
}

bool Arm64ArchMmuBase::arch_flush_tlb_batched_pending(ExecContext& ctx, Mm& mm) {
  // Mirrors arch/arm64/include/asm/tlbflush.h:arch_flush_tlb_batched_pending()
  // (Linux 6.5+): the TLBIs went out at arch_tlbbatch_add_pending(); only dsb(ish).
  (void)mm;
  ++m_vmstats.dsb_ish;
  dsb_ish(ctx);
  return true;
}

// --- contpte ------------------------------------------------------------------------

void Arm64ArchMmuBase::contpte_convert(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                       bool fold) {
  // Mirrors arch/arm64/mm/contpte.c:contpte_convert().
  const unsigned idx = cont_index(addr);
  uint64_t* start_ptep = ptep - idx;
  const VirtAddr start = addr.align_down(kContPteSize);
  const PteCodec& c = m_codec_arm64;
  uint64_t pte = c.advance_pfn(*ptep, 0) - (uint64_t{idx} << kPageShift);  // template at idx 0
  pte = fold ? c.mkcont(pte) : c.mknoncont(pte);
  // Break: clear every entry, gathering access and dirty state.
  for (unsigned i = 0; i < kContPtes; ++i) {
    const uint64_t old = start_ptep[i];
    start_ptep[i] = 0;
    if (c.dirty(old)) pte = c.mkdirty(pte);
    if (c.young(old)) pte = c.mkyoung(pte);
  }
  ctx.count(KOp::kPteRead, kContPtes);
  ctx.count(KOp::kPteWrite, kContPtes);
  if (fold) {
    ++m_vmstats.contpte_folds;
  } else {
    ++m_vmstats.contpte_unfolds;
  }
  if (fold || !m_cfg.debug_no_contpte_unfold_flush) {
    CauseScope cause(ctx, fold ? FlushCause::kOther : FlushCause::kContpteUnfold);
    flush_tlb_range_arm64(ctx, mm, start.value(), start.value() + kContPteSize, kPageSize, true, 3);
  }
  // BROKEN ON PURPOSE when debug_no_contpte_unfold_flush: make without the flush.
  contpte_before_make(ctx, mm, start);
  // Make.
  for (unsigned i = 0; i < kContPtes; ++i) start_ptep[i] = c.advance_pfn(pte, i);
  ctx.count(KOp::kPteWrite, kContPtes);
}

void Arm64ArchMmuBase::contpte_try_fold(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep) {
  // Mirrors arch/arm64/include/asm/pgtable.h:contpte_try_fold() and
  // arch/arm64/mm/contpte.c:__contpte_try_fold(): only when the last entry of a
  // block is written, the block is one folio and all 16 entries agree.
  const PteCodec& c = m_codec_arm64;
  const uint64_t pte = *ptep;
  if (!m_cfg.contpte || !m_cfg.phys || cont_index(addr) != kContPtes - 1) return;
  const Pfn pfn = c.pfn(pte);
  if ((pfn.value() & (kContPtes - 1)) != kContPtes - 1 || !c.valid(pte) || c.cont(pte)) return;
  if (pte & arm64_bits::kSpecial) return;
  PhysMem& pm = *m_cfg.phys;
  const Pfn head = pm.folio_head(pfn);
  const uint64_t folio_pages = uint64_t{1} << pm.page(head).order();
  const uint64_t folio_start = addr.value() - ((pfn - head) << kPageShift);
  const VirtAddr block = addr.align_down(kContPteSize);
  if (folio_start > block.value() ||
      folio_start + (folio_pages << kPageShift) < block.value() + kContPteSize)
    return;
  uint64_t* start_ptep = ptep - (kContPtes - 1);
  const uint64_t expected0 = c.mkold(c.mkclean(pte)) - (uint64_t{kContPtes - 1} << kPageShift);
  for (unsigned i = 0; i < kContPtes; ++i) {
    ctx.count(KOp::kPteRead);
    if (!c.valid(start_ptep[i]) ||
        c.mkold(c.mkclean(start_ptep[i])) != c.advance_pfn(expected0, i))
      return;
  }
  contpte_convert(ctx, mm, addr, ptep, true);
}

void Arm64ArchMmuBase::contpte_try_unfold_partial(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                                  uint64_t* ptep, unsigned nr) {
  // Mirrors contpte_try_unfold_partial(): whole blocks inside the range stay cont.
  if (cont_index(addr) != 0 || nr < kContPtes) contpte_try_unfold(ctx, mm, addr, ptep);
  const VirtAddr end = addr + uint64_t{nr} * kPageSize;
  if (cont_index(end) != 0) {
    const VirtAddr last = addr + uint64_t{nr - 1} * kPageSize;
    contpte_try_unfold(ctx, mm, last, ptep + nr - 1);
  }
}

void Arm64ArchMmuBase::set_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                uint64_t pte, unsigned nr) {
  // Mirrors arch/arm64/include/asm/pgtable.h:set_ptes().
  const PteCodec& c = m_codec_arm64;
  pte = c.mknoncont(pte);
  if (nr == 1) {
    contpte_try_unfold(ctx, mm, addr, ptep);
    *ptep = pte;
    contpte_try_fold(ctx, mm, addr, ptep);
    return;
  }
  // contpte_set_ptes(): whole, VA- and PA-aligned blocks get PTE_CONT; no TLBI (the
  // entries were none).
  const uint64_t end = addr.value() + (uint64_t{nr} << kPageShift);
  uint64_t a = addr.value();
  uint64_t pfn = c.pfn(pte).value();
  while (a != end) {
    const uint64_t next = std::min(end, (a & ~(kContPteSize - 1)) + kContPteSize);
    const unsigned n = static_cast<unsigned>((next - a) >> kPageShift);
    uint64_t e = c.advance_pfn(pte, pfn - c.pfn(pte).value());
    const bool whole = ((a | next | (pfn << kPageShift)) & (kContPteSize - 1)) == 0;
    if (whole && m_cfg.contpte) {
      e = c.mkcont(e);
      ++m_vmstats.contpte_blocks_set;
    }
    for (unsigned i = 0; i < n; ++i) ptep[i] = c.advance_pfn(e, i);
    ptep += n;
    pfn += n;
    a = next;
  }
}

uint64_t Arm64ArchMmuBase::ptep_get(const uint64_t* ptep) const {
  // Mirrors contpte_ptep_get(): the block's access/dirty state is spread over its
  // entries (hardware updates whichever entry it walked).
  const PteCodec& c = m_codec_arm64;
  uint64_t pte = *ptep;
  if (!c.valid(pte) || !c.cont(pte)) return pte;
  // The block's first entry: ptep's offset inside the block is its pfn's.
  const unsigned idx = static_cast<unsigned>(c.pfn(pte).value() & (kContPtes - 1));
  const uint64_t* start = ptep - idx;
  for (unsigned i = 0; i < kContPtes; ++i) {
    if (c.dirty(start[i])) pte = c.mkdirty(pte);
    if (c.young(start[i])) pte = c.mkyoung(pte);
  }
  return pte;
}

uint64_t Arm64ArchMmuBase::ptep_get_and_clear(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                              uint64_t* ptep) {
  contpte_try_unfold(ctx, mm, addr, ptep);
  const uint64_t old = *ptep;
  *ptep = 0;
  return old;
}

uint64_t Arm64ArchMmuBase::get_and_clear_full_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                                   uint64_t* ptep, unsigned nr, bool full) {
  if (nr == 1) {
    contpte_try_unfold(ctx, mm, addr, ptep);
  } else {
    contpte_try_unfold_partial(ctx, mm, addr, ptep, nr);
  }
  return ArchMmu::get_and_clear_full_ptes(ctx, mm, addr, ptep, nr, full);
}

void Arm64ArchMmuBase::wrprotect_ptes(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t* ptep,
                                      unsigned nr) {
  if (nr == 1) {
    contpte_try_unfold(ctx, mm, addr, ptep);
  } else {
    contpte_try_unfold_partial(ctx, mm, addr, ptep, nr);
  }
  ArchMmu::wrprotect_ptes(ctx, mm, addr, ptep, nr);
}

// --- access-flag upgrades (arch/arm64/mm/fault.c, contpte.c) ------------------------

bool Arm64ArchMmuBase::set_access_flags_one(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                            uint64_t* ptep, uint64_t entry, bool dirty) {
  // Mirrors __ptep_set_access_flags(): only AF, dirty and write are taken from
  // `entry` (RDONLY inverted), atomically ORed into the live entry.
  using namespace arm64_bits;
  const uint64_t old = *ptep;
  if (old == entry) return false;
  constexpr uint64_t kAccess = kRdonly | kAf | kDbm | kSwDirty;
  const uint64_t want = (entry & kAccess) ^ kRdonly;
  *ptep = (((old ^ kRdonly) | want) ^ kRdonly);
  if (dirty) {
    // Invalidate the stale read-only entry: broadcast on Linux ≤ 6.18, this CPU only
    // from 6.19 (other CPUs take a spurious fault: flush_tlb_fix_spurious_fault).
    if (m_cfg.local_flush_on_write_fault) {
      local_flush_tlb_pages(ctx, mm, addr, 1);
    } else {
      flush_tlb_page(ctx, mm, addr);
    }
  }
  return true;
}

void Arm64ArchMmuBase::local_flush_tlb_pages(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                             unsigned nr) {
  // DSB NSHST; TLBI VALE1 per page (this CPU's TLBs only); DSB NSH.
  m_ops.clear();
  for (unsigned i = 0; i < nr; ++i)
    m_ops.push_back(TlbiOp{TlbiKind::kVale1, 3, mm.asid(),
                           (addr.page_align_down() + i * kPageSize).value(), 1});
  m_vmstats.tlbi_ops += nr;
  m_vmstats.tlbi_local += nr;
  tlbi_local(ctx, m_ops);
}

bool Arm64ArchMmuBase::ptep_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr addr,
                                             uint64_t* ptep, uint64_t entry, bool dirty) {
  // Mirrors arch/arm64/include/asm/pgtable.h:ptep_set_access_flags() →
  // contpte_ptep_set_access_flags() for an entry of a contpte block.
  const PteCodec& c = m_codec_arm64;
  entry = c.mknoncont(entry);
  if (!c.valid(*ptep) || !c.cont(*ptep)) return set_access_flags_one(ctx, mm, addr, ptep, entry, dirty);
  const uint64_t orig = c.mknoncont(ptep_get(ptep));
  if (orig == entry) return false;
  if (c.write(orig) == c.write(entry)) {
    // Access/dirty only: update the whole block without unfolding, one range flush.
    uint64_t* start_ptep = ptep - cont_index(addr);
    const VirtAddr start = addr.align_down(kContPteSize);
    for (unsigned i = 0; i < kContPtes; ++i)
      set_access_flags_one(ctx, mm, start + i * kPageSize, start_ptep + i,
                           c.mkcont(c.advance_pfn(entry, i) - (uint64_t{cont_index(addr)} << kPageShift)),
                           false);
    ctx.count(KOp::kPteWrite, kContPtes - 1);
    if (dirty) {
      if (m_cfg.local_flush_on_write_fault) {
        local_flush_tlb_pages(ctx, mm, start, kContPtes);  // local_flush_tlb_contpte (6.19)
      } else {
        flush_tlb_range_arm64(ctx, mm, start.value(), start.value() + kContPteSize, kPageSize,
                              true, 3);
      }
    }
    return true;
  }
  // The write bit changes: unfold the block, then the one entry.
  contpte_try_unfold(ctx, mm, addr, ptep);
  return set_access_flags_one(ctx, mm, addr, ptep, entry, dirty);
}

bool Arm64ArchMmuBase::pmdp_set_access_flags(ExecContext& ctx, Mm& mm, VirtAddr haddr,
                                             uint64_t* pmdp, uint64_t entry, bool dirty) {
  // Mirrors pmdp_set_access_flags() → __ptep_set_access_flags() on the PMD.
  return set_access_flags_one(ctx, mm, haddr, pmdp, entry, dirty);
}

}  // namespace tlbsim::mm

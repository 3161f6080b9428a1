// Transparent huge pages (mm/huge_memory.c, include/linux/huge_mm.h): which THP
// orders a fault may use, PMD-mapped anonymous THP faults (with the huge zero
// page for reads), write faults on PMD mappings, and zap_huge_pmd.
//
// Deposited tables: every PMD mapping of an anonymous folio or of the huge zero
// folio has one PTE table deposited with its PMD table
// (pgtable_trans_huge_deposit, fork.cpp), reserved for a later PMD split and
// counted in mm->nr_pgtables (mm_inc_nr_ptes). It is freed directly when the PMD
// mapping goes (zap_deposited_table: pte_free, not through the mmu_gather — no
// walker ever saw it).
//
// PMD splits (partial zap, COW of a shared THP, a write to the huge zero page
// without a PMD-sized folio) are in huge_split.cpp.
#include <algorithm>
#include <stdexcept>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmu_gather.h"

namespace tlbsim::mm {

// --- which orders ---------------------------------------------------------------------

uint32_t Kernel::thp_vma_allowable_orders(const Vma& vma, uint64_t vm_flags,
                                          uint32_t orders) const {
  // Mirrors include/linux/huge_mm.h:thp_vma_allowable_orders() →
  // mm/huge_memory.c:__thp_vma_allowable_orders() at page-fault time
  // (TVA_IN_PF | TVA_ENFORCE_SYSFS). Only anonymous VMAs: file THPs come from the
  // page cache, which the fault path maps as it finds it. prctl(PR_SET_THP_DISABLE)
  // and the temporary exec stack are not modelled.
  if (!vma.is_anonymous()) return 0;
  uint32_t mask = m_thp.orders_always;
  if (vm_flags & kVmHugePage) mask |= m_thp.orders_madvise;
  if (m_thp.global_always ||
      ((vm_flags & kVmHugePage) && (m_thp.global_always || m_thp.global_madvise)))
    mask |= m_thp.orders_inherit;
  orders &= mask;
  if (!orders) return 0;
  orders &= kThpOrdersAllAnon;
  if (vm_flags & kVmNoHugePage) return 0;  // vma_thp_disabled()
  return orders;
}

uint32_t Kernel::thp_vma_suitable_orders(const Vma& vma, VirtAddr addr, uint32_t orders) const {
  // Mirrors include/linux/huge_mm.h:thp_vma_suitable_orders(): drop, from the top,
  // the orders whose naturally aligned window around `addr` leaves the VMA; the
  // first that fits means every lower one fits too. (File VMAs would also need
  // vm_pgoff alignment; no file VMA asks.)
  if (!orders) return 0;
  unsigned order = highest_order(orders);
  while (orders) {
    const uint64_t size = kPageSize << order;
    const VirtAddr start = addr.align_down(size);
    if (start >= vma.start() && start + size <= vma.end()) break;
    order = next_order(orders, order);
  }
  return orders;
}

// --- PMD faults -----------------------------------------------------------------------

std::optional<FaultResult> Kernel::do_huge_pmd_anonymous_page(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/huge_memory.c:do_huge_pmd_anonymous_page() →
  // __do_huge_pmd_anonymous_page(). nullopt is VM_FAULT_FALLBACK: the caller goes
  // on at PTE level (mTHP orders below PMD_ORDER, then order 0).
  Vma& vma = vmf.vma;
  const VirtAddr haddr = vmf.address.align_down(kPmdSize);
  if (!thp_vma_suitable_orders(vma, haddr, 1u << kPmdOrder)) return std::nullopt;
  if (const FaultResult r = vmf_anon_prepare(ctx, vmf); r != FaultResult::kOk) return r;
  if (!vmf.write() && m_thp.use_zero_page) {
    // The huge zero page: a read-only PMD, no folio of our own, no rmap or rss.
    auto pgtable = m_pm.alloc_page_table(ctx);  // pte_alloc_one
    if (!pgtable) {
      ++m_vmstat.oom;
      return FaultResult::kOom;
    }
    auto zero = get_huge_zero_folio(ctx);
    if (!zero) {
      m_pm.free_page_table(ctx, *pgtable, "do_huge_pmd_anonymous_page(pte_free)");
      ++m_vmstat.thp_fault_fallback;
      return std::nullopt;
    }
    ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
    if (!PteCodec::none(*vmf.pmd)) {  // another CPU mapped it meanwhile
      pmd_lock.unlock();
      m_pm.free_page_table(ctx, *pgtable, "do_huge_pmd_anonymous_page(raced)");
      return FaultResult::kRetry;
    }
    // set_huge_zero_folio(): deposit, set_pmd_at, mm_inc_nr_ptes.
    pgtable_trans_huge_deposit(vmf.pmd_table, *pgtable);
    *vmf.pmd = m_codec.mk_huge(*zero, vm_page_prot(vma));
    ctx.count(KOp::kPteWrite);
    vmf.mm.add_pgtables(1);
    ++m_vmstat.pgfault_anon;
    ++m_vmstat.pgfault_zero_page;
    return FaultResult::kOk;
  }
  // vma_alloc_anon_folio_pmd().
  auto pfn = m_pm.alloc_folio(ctx, kPmdOrder);
  if (!pfn) {
    ++m_vmstat.thp_fault_fallback;
    ++m_vmstat.mthp[kPmdOrder]->anon_fault_fallback;
    return std::nullopt;
  }
  ctx.zero_pages(*pfn, uint64_t{1} << kPmdOrder);  // folio_zero_user
  m_vmstat.pgalloc += uint64_t{1} << kPmdOrder;
  Folio folio(m_pm, *pfn);
  auto pgtable = m_pm.alloc_page_table(ctx);  // pte_alloc_one
  if (!pgtable) {
    folio_put_refs(ctx, folio.pfn(), 1, "do_huge_pmd_anonymous_page");
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
  if (!PteCodec::none(*vmf.pmd)) {  // another CPU mapped it meanwhile
    pmd_lock.unlock();
    m_pm.free_page_table(ctx, *pgtable, "do_huge_pmd_anonymous_page(raced)");
    folio_put_refs(ctx, folio.pfn(), 1, "do_huge_pmd_anonymous_page(raced)");
    return FaultResult::kRetry;
  }
  pgtable_trans_huge_deposit(vmf.pmd_table, *pgtable);
  map_anon_folio_pmd(ctx, folio, vmf);
  vmf.mm.add_pgtables(1);  // mm_inc_nr_ptes
  // Queued (not partially mapped) for the underused-THP shrinker (Linux 6.12+),
  // split_queue_lock nested in the PMD lock.
  if (m_thp_queue_underused) m_deferred.deferred_split_folio(ctx, folio, false);
  ++m_vmstat.pgfault_anon;
  return FaultResult::kOk;
}

void Kernel::map_anon_folio_pmd(ExecContext& ctx, Folio folio, VmFault& vmf) {
  // Mirrors mm/huge_memory.c:map_anon_folio_pmd(): one rmap call for the whole
  // folio (PMD-mappable branch of folio_add_new_anon_rmap), a young, dirty and
  // (VM_WRITE) writable PMD.
  const VirtAddr haddr = vmf.address.align_down(kPmdSize);
  uint64_t entry = m_codec.mk_huge(folio.pfn(), vm_page_prot(vmf.vma));
  entry = maybe_mkwrite(m_codec, m_codec.mkdirty(entry), vmf.vma);
  m_rmap.folio_add_new_anon_rmap(ctx, folio, vmf.vma, haddr, kRmapExclusive);
  *vmf.pmd = entry;  // set_pmd_at
  ctx.count(KOp::kPteWrite);
  vmf.mm.add_rss(kMmAnonPages, int64_t{1} << kPmdOrder);
  ++m_vmstat.thp_fault_alloc;
  ++m_vmstat.mthp[kPmdOrder]->anon_fault_alloc;
}

std::optional<Pfn> Kernel::get_huge_zero_folio(ExecContext& ctx) {
  // Mirrors mm/huge_memory.c:get_huge_zero_folio(): a zeroed PMD-sized folio,
  // allocated on first use. The shrinker that frees it while unused is not
  // modelled: once allocated it stays.
  if (m_huge_zero_pfn != Pfn()) return m_huge_zero_pfn;
  auto pfn = m_pm.alloc_folio(ctx, kPmdOrder);
  if (!pfn) {
    ++m_vmstat.thp_zero_page_alloc_failed;
    return std::nullopt;
  }
  // Frame 0 holds the order-0 zero page, so Pfn() never names a PMD-sized folio.
  if (*pfn == Pfn()) throw std::logic_error("huge zero folio at frame 0");
  ctx.zero_pages(*pfn, uint64_t{1} << kPmdOrder);
  m_pm.page(*pfn).set(kPgZero);
  m_huge_zero_pfn = *pfn;
  ++m_vmstat.thp_zero_page_alloc;
  return *pfn;
}

std::optional<FaultResult> Kernel::do_huge_pmd_wp_page(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/huge_memory.c:do_huge_pmd_wp_page() (via wp_huge_pmd): reuse an
  // exclusive THP in place; a THP only this mapping references becomes exclusive
  // again (folio_move_anon_rmap). A PMD THP is never copied as a whole: the PMD is
  // split and nullopt (VM_FAULT_FALLBACK) sends the fault on to the PTE level,
  // where do_wp_page COWs the one page.
  ++m_vmstat.pgfault_wp;
  const Pfn pfn = m_codec.pfn(vmf.orig_pmd);
  Folio folio = Folio::of(m_pm, pfn);
  if (folio.test_zero()) {
    if (m_huge_zero_wp_thp) return do_huge_zero_wp_pmd(ctx, vmf);
    // Before 6.13 (profile switch huge_zero_wp_thp): "if (is_huge_zero_pmd(orig_pmd))
    // goto fallback" → __split_huge_pmd() into 512 zero-page PTEs, VM_FAULT_FALLBACK;
    // the PTE fault then copies the one zero page (do_wp_page → wp_page_copy).
    ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
    if (*vmf.pmd != vmf.orig_pmd) return FaultResult::kRetry;
    split_huge_pmd_locked(ctx, vmf.vma, vmf.pmd_table, vmf.pmd,
                          vmf.address.align_down(kPmdSize), false);
    return std::nullopt;
  }
  ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
  if (*vmf.pmd != vmf.orig_pmd) return FaultResult::kRetry;  // !pmd_same
  Page& head = folio.head();
  if (!head.test(kPgAnonExclusive)) {
    // folio_trylock(); Linux sleeps for it with the PMD lock dropped and re-checks:
    // here the fault is retried instead.
    if (!folio_trylock(ctx, folio)) return FaultResult::kRetry;
    if (folio.ref_count() > 1) {
      folio_unlock(ctx, folio);
      // fallback: __split_huge_pmd(vma, vmf->pmd, vmf->address, false).
      split_huge_pmd_locked(ctx, vmf.vma, vmf.pmd_table, vmf.pmd,
                            vmf.address.align_down(kPmdSize), false);
      return std::nullopt;
    }
    m_rmap.folio_move_anon_rmap(ctx, folio, vmf.vma);
    head.set(kPgAnonExclusive);
    ctx.count(KOp::kAtomic);
    folio_unlock(ctx, folio);
  }
  // reuse: pmdp_set_access_flags(dirty = 1); x86 needs no flush (as wp_page_reuse),
  // arm64 invalidates the stale read-only entry.
  const uint64_t entry =
      maybe_mkwrite(m_codec, m_codec.mkdirty(m_codec.mkyoung(vmf.orig_pmd)), vmf.vma);
  {
    CauseScope cause(ctx, FlushCause::kCow);
    if (m_arch.pmdp_set_access_flags(ctx, vmf.mm, vmf.address.align_down(kPmdSize), vmf.pmd,
                                     entry, true))
      ctx.count(KOp::kPteWrite);
  }
  ++m_vmstat.cow_reuse;
  return FaultResult::kOk;
}

std::optional<FaultResult> Kernel::do_huge_zero_wp_pmd(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/huge_memory.c:do_huge_zero_wp_pmd() (Linux 6.13+): replace the huge
  // zero PMD with a fresh THP. The deposited table stays with the new mapping.
  // Without a PMD-sized folio: split into zero-page PTEs and fall back.
  const VirtAddr haddr = vmf.address.align_down(kPmdSize);
  auto pfn = m_pm.alloc_folio(ctx, kPmdOrder);  // vma_alloc_anon_folio_pmd
  if (!pfn) {
    ++m_vmstat.thp_fault_fallback;
    ++m_vmstat.mthp[kPmdOrder]->anon_fault_fallback;
    ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
    if (*vmf.pmd != vmf.orig_pmd) return FaultResult::kRetry;
    split_huge_pmd_locked(ctx, vmf.vma, vmf.pmd_table, vmf.pmd, haddr, false);
    return std::nullopt;
  }
  ctx.zero_pages(*pfn, uint64_t{1} << kPmdOrder);
  m_vmstat.pgalloc += uint64_t{1} << kPmdOrder;
  ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
  if (*vmf.pmd != vmf.orig_pmd) {
    pmd_lock.unlock();
    folio_put_refs(ctx, *pfn, 1, "do_huge_zero_wp_pmd(raced)");
    return FaultResult::kRetry;
  }
  {
    // pmdp_huge_clear_flush().
    CauseScope cause(ctx, FlushCause::kCow);
    *vmf.pmd = 0;
    ctx.count(KOp::kPteWrite);
    flush_pmd_tlb_range(ctx, vmf.mm, haddr, haddr + kPmdSize);
  }
  map_anon_folio_pmd(ctx, Folio(m_pm, *pfn), vmf);
  return FaultResult::kOk;
}

void Kernel::huge_pmd_set_accessed(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/huge_memory.c:huge_pmd_set_accessed(): young (and dirty for a
  // write) without a flush, under the PMD lock if the PMD is unchanged.
  ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
  if (*vmf.pmd != vmf.orig_pmd) return;
  uint64_t entry = m_codec.mkyoung(vmf.orig_pmd);
  if (vmf.write()) entry = m_codec.mkdirty(entry);
  if (m_arch.pmdp_set_access_flags(ctx, vmf.mm, vmf.address.align_down(kPmdSize), vmf.pmd, entry,
                                   vmf.write()))
    ctx.count(KOp::kPteWrite);
}

void Kernel::flush_pmd_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
  ++m_flush_stats.requests;
  const FlushCause cause = ctx.cause == FlushCause::kNone ? FlushCause::kOther : ctx.cause;
  auto& c = m_flush_stats.by_cause[static_cast<size_t>(cause)];
  ++c->requests;
  ++c->range;
  c->pages += (end - start) >> kPageShift;
  m_arch.flush_pmd_tlb_range(ctx, mm, start, end);
}

// --- zap ------------------------------------------------------------------------------

void Kernel::zap_huge_pmd(MmuGather& tlb, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                          VirtAddr addr) {
  // Mirrors mm/huge_memory.c:zap_huge_pmd(): one PMD entry cleared (range + 2 MiB,
  // cleared_pmds), one PMD-level rmap call, one gather item for the single PMD
  // reference; the deposited table of an anon (or huge zero) PMD is freed now.
  ExecContext& ctx = tlb.ctx();
  Mm& mm = tlb.mm();
  ScopedLock pmd_lock(ctx, m_pm.ptl(pmd_table));  // __pmd_trans_huge_lock
  if (!m_codec.huge(*pmd)) return;                // split or zapped meanwhile
  const uint64_t orig = *pmd;
  *pmd = 0;  // pmdp_huge_get_and_clear_full
  ctx.count(KOp::kPteRead);
  ctx.count(KOp::kPteWrite);
  tlb.tlb_remove_pmd_tlb_entry(addr);
  const Pfn pfn = m_codec.pfn(orig);
  Folio folio = Folio::of(m_pm, pfn);
  if (folio.test_zero()) {
    zap_deposited_table(ctx, mm, pmd_table);
    return;
  }
  m_rmap.folio_remove_rmap_pmd(ctx, folio, pfn, vma);
  if (folio.test_anon()) {
    zap_deposited_table(ctx, mm, pmd_table);
    mm.add_rss(kMmAnonPages, -(int64_t{1} << kPmdOrder));
  } else {
    // x86 and arm64 deposit no table for file PMDs (arch_needs_pgtable_deposit).
    mm.add_rss(kMmFilePages, -(int64_t{1} << kPmdOrder));
    if (m_codec.young(orig)) folio.head().set(kPgReferenced);  // folio_mark_accessed
  }
  pmd_lock.unlock();
  tlb.tlb_remove_page(pfn);  // tlb_remove_page_size(HPAGE_PMD_SIZE): flushes when full
}

void Kernel::zap_deposited_table(ExecContext& ctx, Mm& mm, Pfn pmd_table) {
  // Mirrors mm/huge_memory.c:zap_deposited_table(): withdraw, pte_free, mm_dec_nr_ptes.
  const Pfn pgtable = pgtable_trans_huge_withdraw(pmd_table);
  m_pm.free_page_table(ctx, pgtable, "zap_deposited_table");
  mm.add_pgtables(-1);
}

}  // namespace tlbsim::mm

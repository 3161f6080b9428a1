// madvise(MADV_DONTNEED / MADV_FREE / MADV_COLD / MADV_PAGEOUT) (mm/madvise.c);
// the cold/pageout page walk is in vmscan.cpp next to the reclaim it feeds.
#include <algorithm>
#include <cerrno>
#include <vector>

#include "base/error.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"
#include "mm/mmu_gather.h"
#include "mm/pagewalk.h"

namespace tlbsim::mm {

void Kernel::zap_page_range_single(ExecContext& ctx, Vma& vma, VirtAddr start, VirtAddr end) {
  // Mirrors mm/memory.c:zap_page_range_single(): its own gather, one VMA; page
  // tables stay, except with CONFIG_PT_RECLAIM (profile switch pt_reclaim).
  MmuGather tlb(*this, ctx, *vma.mm(), /*fullmm=*/false);
  // madvise_dontneed_single_vma(): zap_details.reclaim_pt = true.
  unmap_page_range(tlb, vma, start, end, m_pt_reclaim);
  tlb.tlb_end_vma(vma);
  tlb.tlb_finish_mmu();
}

int Kernel::madvise_split_folio(ExecContext& ctx, Mm& mm, Folio folio, uint64_t* pmd,
                                KernelLock*& ptl, Pfn& table) {
  // mm/madvise.c (both PTE walks): folio_trylock() under the PTL, folio_get(),
  // pte_unmap_unlock(), split_folio(), folio_unlock(), folio_put(), then
  // pte_offset_map_lock() and flush_tlb_batched_pending() again.
  if (!folio_trylock(ctx, folio)) return -EAGAIN;
  folio.ref_add(1);
  ctx.count(KOp::kAtomic);
  ctx.unlock(*ptl);
  const Pfn head = folio.pfn();
  const int err = split_folio(ctx, folio);
  folio_unlock(ctx, Folio(m_pm, head));
  folio_put_refs(ctx, head, 1, "madvise split");
  ptl = pte_offset_map_lock(ctx, m_pm, m_codec, pmd, &table);
  if (ptl) flush_tlb_batched_pending(ctx, mm);
  return err;
}

uint64_t Kernel::madvise_free_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start,
                                        VirtAddr end) {
  // Mirrors mm/madvise.c:madvise_free_pte_range(): exclusively mapped anon folios are
  // marked lazy-free (no longer swap-backed) and their PTEs made old and clean, so
  // reclaim can discard them unless they are written again. Returns folios marked.
  ExecContext& ctx = tlb.ctx();
  Mm& mm = tlb.mm();
  Pfn table;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, pmd, &table);
  if (!ptl) return 0;
  (void)vma;
  flush_tlb_batched_pending(ctx, mm);
  uint64_t marked = 0;
  for (VirtAddr addr = start; addr < end;) {
    uint64_t* ptep = &m_pm.table(table).data()[level_index(addr, 1)];
    ctx.count(KOp::kPteRead);
    const uint64_t pte = m_arch.ptep_get(ptep);
    if (m_codec.is_swap_entry(pte)) {
      // A swapped-out page's contents are freed too: the slot reference goes.
      *ptep = 0;  // clear_not_present_full_ptes
      ctx.count(KOp::kPteWrite);
      mm.add_rss(kMmSwapEnts, -1);
      free_swap_and_cache(ctx, m_codec.swp_offset(pte));
      addr += kPageSize;
      continue;
    }
    if (PteCodec::none(pte) || !m_codec.present(pte) || m_codec.pfn(pte) == m_zero_pfn) {
      addr += kPageSize;
      continue;
    }
    const Pfn pfn = m_codec.pfn(pte);
    Folio folio = Folio::of(m_pm, pfn);
    unsigned nr = 1;
    if (folio.test_large()) {
      const unsigned max_nr = static_cast<unsigned>((end - addr) >> kPageShift);
      nr = folio_pte_batch(pfn, ptep, pte, max_nr);
      // 6.10+: a folio the range covers only partly is split (unless shared, or its
      // lock is busy), a wholly covered exclusive one is lazyfreed whole; 6.7-6.9
      // split every PTE-mapped large folio and stopped the PTE table at a shared or
      // busy one or a failed split (madvise_split_partial_only).
      const bool partial = pfn != folio.pfn() || nr != folio.nr_pages();
      if (partial || !m_madvise_split_partial_only) {
        const bool stop_on_failure = !m_madvise_split_partial_only;
        if (madvise_folio_shared(folio)) {
          if (stop_on_failure) break;
          addr += uint64_t{nr} * kPageSize;
          continue;
        }
        const int err = madvise_split_folio(ctx, mm, folio, pmd, ptl, table);
        if (!ptl) return marked;  // the PTE table went away meanwhile
        if (err == 0) continue;   // look at the same address again: small folios now
        if (stop_on_failure) break;
        addr += uint64_t{nr} * kPageSize;
        continue;
      }
      if (madvise_folio_shared(folio)) {
        addr += uint64_t{nr} * kPageSize;
        continue;
      }
    } else if (folio.mapcount() != 1) {
      addr += kPageSize;
      continue;
    }
    if (!folio.test_anon()) {
      addr += uint64_t{nr} * kPageSize;
      continue;
    }
    // A swap-cache folio is only made lazyfree once it can leave the cache, under
    // its lock (folio_trylock: never sleeps under the PTL).
    if (folio.head().test(kPgSwapCache)) {
      bool freed = false;
      if (folio_trylock(ctx, folio)) {
        freed = folio_free_swap(ctx, folio);
        folio_unlock(ctx, folio);
      }
      if (!freed) {
        addr += uint64_t{nr} * kPageSize;
        continue;
      }
    }
    bool changed = false;
    for (unsigned i = 0; i < nr; ++i) {
      const uint64_t old = ptep[i];
      if (m_codec.young(old) || m_codec.dirty(old)) {
        // ptep_get_and_clear_full + set_pte_at(mkold(mkclean)) + tlb_remove_tlb_entry
        m_arch.ptep_get_and_clear(ctx, mm, addr + i * kPageSize, &ptep[i]);
        m_arch.set_ptes(ctx, mm, addr + i * kPageSize, &ptep[i],
                        m_codec.mkold(m_codec.mkclean(old)), 1);
        ctx.count(KOp::kPteXchg);
        ctx.count(KOp::kPteWrite);
        tlb.tlb_remove_tlb_entries(addr + i * kPageSize, 1);
        changed = true;
      }
    }
    (void)changed;
    folio.head().clear(kPgDirty);
    folio.head().clear(kPgSwapBacked);  // folio_mark_lazyfree
    ++marked;
    addr += uint64_t{nr} * kPageSize;
  }
  ctx.pte_lines(table, level_index(start, 1), static_cast<unsigned>((end - start) >> kPageShift),
                marked != 0);
  ctx.unlock(*ptl);  // pte_unmap_unlock
  ctx.progress();    // cond_resched()
  return marked;
}

uint64_t Kernel::madvise_free_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end) {
  // madvise_free_single_vma() → walk_page_range(madvise_free_walk_ops): a THP only
  // partly in the range is split first (madvise_free_huge_pmd).
  struct Free {
    Kernel& k;
    MmuGather& tlb;
    Vma& vma;
    uint64_t marked = 0;
    bool pmd_entry(Pfn, uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      if (!k.m_codec.huge(*pmd)) return false;
      if (next - addr != kPmdSize) {
        k.split_huge_pmd_address(tlb.ctx(), vma, addr, false);
        return false;
      }
      throw InputError("", "not supported yet: MADV_FREE of a whole PMD-mapped THP");
    }
    void pte_range(uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      marked += k.madvise_free_pte_range(tlb, vma, pmd, addr, next);
    }
  } f{*this, tlb, vma};
  walk_page_range(m_pm, m_codec, tlb.mm().pgd(), m_pt.levels(), start, end, f);
  return f.marked;
}

int Kernel::sys_madvise(ExecContext& ctx, Mm& mm, VirtAddr addr, uint64_t len, Advice advice) {
  // Mirrors mm/madvise.c:do_madvise() for the advices that change mappings.
  ctx.count(KOp::kSyscallEntry);
  if (!addr.is_aligned(kPageSize)) return -EINVAL;
  if (len == 0) return 0;
  const VirtAddr end = addr + ((len + kPageSize - 1) & kPageMask);
  // madvise_lock(): HUGEPAGE/NOHUGEPAGE change VMAs (mmap_lock for write); the
  // others only page tables (read). Linux 6.16+ runs DONTNEED and FREE under the
  // per-VMA lock when the range lies in one VMA (try_vma_read_lock).
  const bool write_lock = advice == Advice::kHugepage || advice == Advice::kNohugepage;
  if (!write_lock && m_profile.madvise_vma_lock() &&
      (advice == Advice::kDontneed || advice == Advice::kFree)) {
    if (Vma* vma = lock_vma_under_rcu(ctx, mm, addr)) {
      if (vma->end() >= end) {
        const int r = madvise_vma_range(ctx, mm, addr, end, advice);
        vma_end_read(ctx, *vma);
        return r;
      }
      vma_end_read(ctx, *vma);
    }
  }
  MmapLockGuard lock(ctx, mm, write_lock ? LockMode::kExclusive : LockMode::kShared);
  return madvise_vma_range(ctx, mm, addr, end, advice);
}

int Kernel::madvise_vma_range(ExecContext& ctx, Mm& mm, VirtAddr addr, VirtAddr end,
                              Advice advice) {
  // madvise_walk_vmas(): the advice over every VMA of [addr, end).
  int err = 0;
  for (VirtAddr a = addr; a < end;) {
    Vma* vma = mm.find_vma(a);
    if (!vma) {
      // A hole: Linux advises what is mapped and returns ENOMEM.
      auto it = mm.vmas().upper_bound(a.value());
      if (it == mm.vmas().end() || it->second->start() >= end) return -ENOMEM;
      err = -ENOMEM;
      a = it->second->start();
      continue;
    }
    const VirtAddr s = std::max(a, vma->start()), e = std::min(end, vma->end());
    switch (advice) {
      case Advice::kDontneed: {
        if (vma->test(kVmLocked)) return -EINVAL;
        CauseScope cause(ctx, FlushCause::kDontneed);
        zap_page_range_single(ctx, *vma, s, e);
        break;
      }
      case Advice::kFree: {
        if (!vma->is_anonymous() || vma->test(kVmShared)) return -EINVAL;
        CauseScope cause(ctx, FlushCause::kDontneed);
        MmuGather tlb(*this, ctx, mm, /*fullmm=*/false);
        m_vmstat.lazyfree_folios += madvise_free_range(tlb, *vma, s, e);
        tlb.tlb_end_vma(*vma);
        tlb.tlb_finish_mmu();
        break;
      }
      case Advice::kCold:
      case Advice::kPageout: {
        // madvise_cold() / madvise_pageout(): private folios only, no mlocked VMAs;
        // pageout reclaims what it isolated once the walk's gather is finished.
        if (vma->test(kVmLocked)) return -EINVAL;
        const bool pageout = advice == Advice::kPageout;
        std::vector<Pfn> isolated;
        {
          CauseScope cause(ctx, FlushCause::kReclaim);
          MmuGather tlb(*this, ctx, mm, /*fullmm=*/false);
          madvise_cold_or_pageout_range(tlb, *vma, s, e, pageout, isolated);
          tlb.tlb_end_vma(*vma);
          tlb.tlb_finish_mmu();
        }
        if (pageout && !isolated.empty()) reclaim_pages(ctx, isolated);
        break;
      }
      case Advice::kHugepage:
      case Advice::kNohugepage: {
        uint64_t f = vma->flags() & ~(kVmHugePage | kVmNoHugePage);
        f |= advice == Advice::kHugepage ? kVmHugePage : kVmNoHugePage;
        if (vma->start() < s) vma_split(ctx, mm, *vma, s);
        Vma* v = mm.find_vma(s);
        if (v->end() > e) vma_split(ctx, mm, *v, e);
        v = mm.find_vma(s);
        vma_start_write(ctx, *v);
        v->set_flags(f);
        break;
      }
    }
    a = e;
  }
  return err;
}

}  // namespace tlbsim::mm

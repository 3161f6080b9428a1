// Page reclaim (mm/vmscan.c shrink_folio_list, mm/rmap.c try_to_unmap_one) and the
// madvise advices that feed it (mm/madvise.c MADV_COLD / MADV_PAGEOUT); reference §6.
//
// Ordering contract of one reclaim batch (§6.7):
//   1. every folio of the batch is isolated from the LRU with a reference;
//   2. its PTEs are cleared one at a time under the PTL and their flush is deferred
//      (set_tlb_ubc_flush_pending) when should_defer_flush() allows, else done now;
//   3. before a folio that may have been written through a stale TLB entry goes to
//      the device, try_to_unmap_flush_dirty() completes the batch;
//   4. try_to_unmap_flush() completes the whole batch before any folio of it is
//      freed. A PTE modifier of an affected mm flushes first
//      (flush_tlb_batched_pending), so nobody relies on a stale entry.
//
// What is modelled: one LRU without aging (reclaim takes the oldest folios and
// ignores accessed bits, like reclaim_pages()); swap-backed anon folios are
// written to the SwapDevice synchronously; large ones are split first (no
// THP_SWAP: Linux splits when the swap device cannot take a large folio);
// lazyfree (MADV_FREE) folios are discarded unless redirtied; file folios leave
// the page cache, dirty ones after a synchronous writeback.
#include <algorithm>
#include <stdexcept>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/pagewalk.h"
#include "mm/mmu_gather.h"
#include "mm/rmap_walk.h"

namespace tlbsim::mm {

namespace {
/// SWAP_CLUSTER_MAX: the batch direct reclaim asks for.
constexpr uint64_t kSwapClusterMax = 32;
}  // namespace

// --- isolation and the batch ------------------------------------------------------------

uint64_t Kernel::reclaim(ExecContext& ctx, uint64_t nr_pages) {
  RmapUnmapScope in_flight(*this);
  // Mirrors shrink_node(): the shrinkers first (shrink_slab → the thp-deferred_split
  // shrinker splits partially mapped folios, one SHRINK_BATCH), then shrink_lruvec →
  // shrink_inactive_list: isolate_lru_folios() from the tail, shrink_folio_list().
  constexpr uint64_t kShrinkBatch = 128;
  if (m_deferred.length()) deferred_split_scan(ctx, kShrinkBatch);
  std::vector<Pfn> list;
  uint64_t isolated = 0;
  {
    ScopedLock lru(ctx, m_lru.lru_lock);  // lruvec_lock_irq: isolate_lru_folios()
    for (Pfn f = m_lru.tail(); f.value() && isolated < nr_pages;) {
      const Pfn next = m_lru.younger(f);
      Folio folio(m_pm, f);
      folio.ref_add(1);  // folio_try_get
      ctx.count(KOp::kAtomic);
      m_lru.del(f);
      list.push_back(f);
      isolated += folio.nr_pages();
      f = next;
    }
  }
  m_vmstat.pgscan += isolated;
  return reclaim_pages(ctx, list);
}

uint64_t Kernel::reclaim_pages(ExecContext& ctx, std::vector<Pfn>& folios) {
  // Mirrors mm/vmscan.c:reclaim_pages(): isolated folios (each with a reference),
  // reclaimed without looking at references.
  CauseScope cause(ctx, FlushCause::kReclaim);
  return shrink_folio_list(ctx, folios);
}

uint64_t Kernel::shrink_folio_list(ExecContext& ctx, std::vector<Pfn>& folios) {
  RmapUnmapScope in_flight(*this);
  // Mirrors mm/vmscan.c:shrink_folio_list(). `folios` grows when a large anon folio
  // is split (split_folio_to_list puts the pieces on the list).
  std::vector<Pfn> free_list, keep;
  uint64_t reclaimed = 0;
  /// The folio lock for one iteration: folio_trylock() (reclaim never sleeps for it,
  /// a locked folio is kept), folio_unlock() when the iteration ends.
  struct FolioLockScope {
    Kernel& k;
    ExecContext& ctx;
    Pfn head;
    bool locked;
    ~FolioLockScope() {
      if (locked) k.folio_unlock(ctx, Folio(k.m_pm, head));
    }
  };
  for (size_t i = 0; i < folios.size(); ++i) {
    Folio folio(m_pm, folios[i]);
    FolioLockScope lock{*this, ctx, folios[i], folio_trylock(ctx, folio)};
    if (!lock.locked) {
      keep.push_back(folios[i]);
      continue;
    }
    const bool anon = folio.test_anon();
    const bool lazyfree = anon && !folio.head().test(kPgSwapBacked);
    if (anon && !lazyfree && folio.test_large()) {
      // No THP_SWAP: split before add_to_swap. The pieces still mapped join the list
      // with a reference each; pieces nobody mapped were freed by the split.
      const uint64_t nr = folio.nr_pages();
      if (split_folio(ctx, folio) != 0) {
        keep.push_back(folios[i]);
        continue;
      }
      for (uint64_t p = 1; p < nr; ++p) {
        const Pfn t = folios[i] + p;
        if (m_pm.buddy().is_free(t)) continue;
        Folio(m_pm, t).ref_add(1);
        ctx.count(KOp::kAtomic);
        folios.push_back(t);
      }
      folio = Folio(m_pm, folios[i]);
    }
    const uint64_t nr = folio.nr_pages();
    if (anon && !lazyfree && !folio.head().test(kPgSwapCache)) {
      // add_to_swap(): a slot, the swap cache's reference, and the folio dirty so
      // that pageout() writes it.
      m_swap.alloc_slot(folio.pfn());
      folio.head().set(kPgSwapCache);
      folio.ref_add(1);
      folio.head().set(kPgDirty);
      ctx.count(KOp::kAtomic);
    }
    if (folio.mapped()) {
      uint32_t flags = kTtuBatchFlush;
      if (folio.test_pmd_mappable()) flags |= kTtuSplitHugePmd;
      try_to_unmap(ctx, folio, flags);
      if (folio.mapped()) {  // mlocked, maybe pinned, or a redirtied lazyfree folio
        keep.push_back(folio.pfn());
        continue;
      }
    }
    if (!lazyfree && folio.head().test(kPgDirty)) {
      // pageout(): no CPU may write through a stale writable entry while the I/O
      // runs. The write is synchronous, so the folio is clean and reclaimable now.
      try_to_unmap_flush_dirty(ctx);
      if (anon) {
        m_swap.stats().pswpout += nr;
      } else {
        m_vmstat.pgpageout_file += nr;
      }
      // the device write reads the folio (swap_writepage / writepage)
      for (uint64_t i = 0; i < nr; ++i) ctx.page_data(folio.pfn() + i, false);
      ctx.count(KOp::kPageCopy, nr);
      folio.head().clear(kPgDirty);
    }
    // __remove_mapping(): only the isolation reference and the cache's may remain.
    const int32_t cache_refs = !anon ? static_cast<int32_t>(nr) : lazyfree ? 0 : 1;
    if (folio.ref_count() != 1 + cache_refs) {
      keep.push_back(folio.pfn());
      continue;
    }
    ctx.count(KOp::kAtomic);  // folio_ref_freeze
    if (lazyfree) {
      m_vmstat.pglazyfreed += nr;
    } else if (anon) {
      m_swap.delete_cache(folio.pfn());  // __delete_from_swap_cache
      folio.head().clear(kPgSwapCache);
      folio.ref_add(-1);
    } else {
      m_page_cache.remove(static_cast<int64_t>(folio.head().mapping), folio.head().index, nr);
      folio.ref_add(-cache_refs);
    }
    (anon ? m_vmstat.pgsteal_anon : m_vmstat.pgsteal_file) += nr;
    m_vmstat.pgsteal += nr;
    free_list.push_back(folio.pfn());
    reclaimed += nr;
  }
  // Every deferred flush completes before a page of the batch is freed.
  try_to_unmap_flush(ctx);
  for (const Pfn f : free_list) folio_put_refs(ctx, f, 1, "shrink_folio_list");
  // putback (move_folios_to_lru): kept folios return to the young end of the LRU,
  // under lru_lock.
  if (!keep.empty()) {
    ScopedLock lru(ctx, m_lru.lru_lock);
    for (const Pfn f : keep) {
      ++m_vmstat.reclaim_kept;
      m_lru.add(f);
    }
  }
  for (const Pfn f : keep) folio_put_refs(ctx, f, 1, "shrink_folio_list(keep)");
  return reclaimed;
}

std::optional<Pfn> Kernel::alloc_folio_reclaim(ExecContext& ctx, unsigned order) {
  // Mirrors __alloc_pages_slowpath() → __alloc_pages_direct_reclaim(): one batch,
  // then one more attempt.
  auto pfn = m_pm.alloc_folio(ctx, order);
  if (pfn) return pfn;
  ++m_vmstat.allocstall;
  if (reclaim(ctx, kSwapClusterMax) == 0) return std::nullopt;
  return m_pm.alloc_folio(ctx, order);
}

// --- try_to_unmap -----------------------------------------------------------------------

void Kernel::try_to_unmap(ExecContext& ctx, Folio folio, uint32_t ttu_flags) {
  // Mirrors mm/rmap.c:try_to_unmap().
  RmapWalkControl rwc;
  rwc.rmap_one = [&](Folio f, Vma& vma, VirtAddr address) {
    return try_to_unmap_one(ctx, f, vma, address, ttu_flags);
  };
  rwc.done = [](Folio f) { return !f.mapped(); };  // folio_not_mapped
  rmap_walk(*this, ctx, folio, rwc);
}

bool Kernel::try_to_unmap_one(ExecContext& ctx, Folio folio, Vma& vma, VirtAddr address,
                              uint32_t ttu_flags) {
  // Mirrors mm/rmap.c:try_to_unmap_one() (reference §6.3). Returns false to stop
  // the walk (the folio stays mapped).
  Mm& mm = *vma.mm();
  if (vma.test(kVmLocked)) return false;  // mlocked: cannot be reclaimed
  if ((ttu_flags & kTtuSplitHugePmd) && folio.test_pmd_mappable())
    split_huge_pmd_address(ctx, vma, address, /*freeze=*/false);
  const bool anon = folio.test_anon();
  const bool lazyfree = anon && !folio.head().test(kPgSwapBacked);
  for (PageVmaMappedWalk w(*this, ctx, folio, vma, address); w.next();) {
    // A PMD mapping here would be a lazyfree THP (unmap_huge_pmd_locked); MADV_FREE
    // never leaves one (it rejects whole PMD-mapped THPs), reclaim splits the rest.
    if (!w.pte()) return false;
    const Pfn subpage = w.page();
    const VirtAddr addr = w.address();
    unsigned nr = 1;
    if (lazyfree && folio.test_large() && m_unmap_lazyfree_batch) {
      // folio_unmap_pte_batch() (6.15): the folio's run in this VMA and PTE table.
      const uint64_t left = folio.nr_pages() - folio.page_index(subpage);
      const uint64_t in_vma = static_cast<uint64_t>(vma.end() - addr) >> kPageShift;
      const uint64_t in_table = uint64_t{kPtrsPerTable} - level_index(addr, 1);
      const auto max_nr = static_cast<unsigned>(std::min({left, in_vma, in_table}));
      nr = folio_pte_batch(subpage, w.pte(), m_arch.ptep_get(w.pte()), max_nr);
    }
    const VirtAddr end_addr = addr + uint64_t{nr} * kPageSize;
    const bool anon_exclusive = anon && folio.page_of(subpage).test(kPgAnonExclusive);
    // Clear without flushing (get_and_clear_ptes: arm64 unfolds a contpte block).
    const uint64_t pteval = m_arch.get_and_clear_full_ptes(ctx, mm, addr, w.pte(), nr, false);
    ctx.count(KOp::kPteXchg, nr);
    m_vmstat.reclaim_unmapped += nr;
    if (should_defer_flush(ctx, mm, ttu_flags)) {
      set_tlb_ubc_flush_pending(ctx, mm, pteval, addr, end_addr);
    } else if (m_unmap_lazyfree_batch) {
      flush_tlb_range(ctx, mm, addr, end_addr);  // 6.15+
    } else {
      flush_tlb_page(ctx, mm, addr);  // ptep_clear_flush() before 6.15
    }
    if (m_codec.dirty(pteval)) folio.head().set(kPgDirty);  // folio_mark_dirty
    if (lazyfree) {
      // Discard unless redirtied or referenced beyond isolation + mappings.
      if (folio.ref_count() != 1 + folio.mapcount() || folio.head().test(kPgDirty)) {
        m_arch.set_ptes(ctx, mm, addr, w.pte(), pteval, nr);
        ctx.count(KOp::kPteWrite, nr);
        folio.head().set(kPgSwapBacked);
        return false;
      }
      mm.add_rss(kMmAnonPages, -static_cast<int64_t>(nr));
    } else if (anon) {
      // The folio is in the swap cache (add_to_swap ran first): the PTE becomes a
      // swap entry naming its slot (folio_dup_swap).
      const uint64_t slot = m_swap.slot_of(folio.pfn());
      if (anon_exclusive && m_rmap.folio_try_share_anon_rmap_pte(ctx, folio, subpage)) {
        m_arch.set_ptes(ctx, mm, addr, w.pte(), pteval, 1);  // maybe pinned: restore
        ctx.count(KOp::kPteWrite);
        return false;
      }
      m_swap.dup(slot);
      *w.pte() = m_codec.mk_swp_pte(SwapDevice::kType, slot, anon_exclusive);
      ctx.count(KOp::kPteWrite);
      mm.add_rss(kMmAnonPages, -1);
      mm.add_rss(kMmSwapEnts, 1);
    } else {
      mm.add_rss(kMmFilePages, -static_cast<int64_t>(nr));
    }
    if (m_rmap_batching) {
      m_rmap.folio_remove_rmap_ptes(ctx, folio, subpage, nr, vma);
    } else {
      for (unsigned i = 0; i < nr; ++i) m_rmap.folio_remove_rmap_pte(ctx, folio, subpage + i, vma);
    }
    // The caller's isolation reference keeps the folio alive until the batch flush.
    folio_put_refs(ctx, folio.pfn(), static_cast<int32_t>(nr), "try_to_unmap_one");
  }
  return true;
}

// --- MADV_COLD / MADV_PAGEOUT -----------------------------------------------------------

void Kernel::madvise_cold_or_pageout_range(MmuGather& tlb, Vma& vma, VirtAddr start,
                                           VirtAddr end, bool pageout,
                                           std::vector<Pfn>& isolated) {
  // Mirrors mm/madvise.c:madvise_cold_or_pageout_pte_range(): private (not maybe
  // shared) folios in the range have their PTEs made old (tlb_remove_tlb_entry)
  // and are deactivated (cold) or isolated for reclaim_pages (pageout). A
  // PMD-mapped THP only partly in the range is split first (its PMD); PTE-mapped
  // large folios are split as the release did (madvise_split_partial_only).
  struct ColdOrPageout {
    Kernel& k;
    MmuGather& tlb;
    Vma& vma;
    VirtAddr start;
    bool pageout;
    std::vector<Pfn>& isolated;
    void take(Folio folio) {
      if (pageout) {
        if (!k.m_lru.contains(folio.pfn())) return;
        ScopedLock lru(tlb.ctx(), k.m_lru.lru_lock);  // folio_isolate_lru: lruvec_lock_irq
        folio.ref_add(1);
        tlb.ctx().count(KOp::kAtomic);
        k.m_lru.del(folio.pfn());
        isolated.push_back(folio.pfn());
      } else {
        k.m_lru.move_to_tail(folio.pfn());  // folio_deactivate
        ++k.m_vmstat.pgdeactivate;
      }
    }
    bool pmd_entry(Pfn pmd_table, uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      if (!k.m_codec.huge(*pmd)) return false;
      if (next - addr != kPmdSize) {
        k.split_huge_pmd_address(tlb.ctx(), vma, addr, false);
        return false;
      }
      ExecContext& ctx = tlb.ctx();
      ScopedLock pmd_lock(ctx, k.m_pm.ptl(pmd_table));  // pmd_trans_huge_lock
      if (!k.m_codec.huge(*pmd)) return true;
      k.flush_tlb_batched_pending(ctx, tlb.mm());
      Folio folio = Folio::of(k.m_pm, k.m_codec.pfn(*pmd));
      if (!folio.test_zero() && folio.mapcount() == 1) {
        if (k.m_codec.young(*pmd)) {
          *pmd = k.m_codec.mkold(*pmd);
          ctx.count(KOp::kPteXchg);  // pmdp_test_and_clear_young
          tlb.tlb_remove_pmd_tlb_entry(addr.align_down(kPmdSize));
        }
        take(folio);
      }
      return true;
    }
    void pte_range(uint64_t* pmd, VirtAddr from, VirtAddr next) {
      ExecContext& ctx = tlb.ctx();
      Mm& mm = tlb.mm();
      Pfn table;
      KernelLock* ptl = pte_offset_map_lock(ctx, k.m_pm, k.m_codec, pmd, &table);
      if (!ptl) return;
      k.flush_tlb_batched_pending(ctx, mm);
      for (VirtAddr addr = from; addr < next;) {
        uint64_t* ptep = &k.m_pm.table(table).data()[level_index(addr, 1)];
        ctx.count(KOp::kPteRead);
        const uint64_t pte = k.m_arch.ptep_get(ptep);
        if (!k.m_codec.present(pte) || k.m_codec.pfn(pte) == k.m_zero_pfn) {
          addr += kPageSize;
          continue;
        }
        const Pfn pfn = k.m_codec.pfn(pte);
        Folio folio = Folio::of(k.m_pm, pfn);
        unsigned nr = 1;
        if (folio.test_large()) {
          nr = k.folio_pte_batch(pfn, ptep, pte,
                                 static_cast<unsigned>((next - addr) >> kPageShift));
          // 6.10+ (madvise_split_partial_only): split a folio the range covers only
          // partly, unless shared or busy; a wholly covered one is handled whole.
          // 6.7-6.9: split every PTE-mapped large folio; a shared or busy one, or a
          // failed split, ends this PTE table's walk.
          const bool partial = pfn != folio.pfn() || nr != folio.nr_pages();
          if (partial || !k.m_madvise_split_partial_only) {
            const bool stop_on_failure = !k.m_madvise_split_partial_only;
            if (k.madvise_folio_shared(folio)) {
              if (stop_on_failure) break;
              addr += uint64_t{nr} * kPageSize;
              continue;
            }
            const int err = k.madvise_split_folio(ctx, mm, folio, pmd, ptl, table);
            if (!ptl) return;        // the PTE table went away meanwhile
            if (err == 0) continue;  // the same address again: small folios now
            if (stop_on_failure) break;
            addr += uint64_t{nr} * kPageSize;
            continue;
          }
        }
        if (k.madvise_folio_shared(folio)) {
          addr += uint64_t{nr} * kPageSize;
          continue;
        }
        for (unsigned i = 0; i < nr; ++i) {
          const VirtAddr a = addr + i * kPageSize;
          const uint64_t old = ptep[i];
          if (!k.m_codec.young(old)) continue;
          k.m_arch.ptep_get_and_clear(ctx, mm, a, &ptep[i]);
          k.m_arch.set_ptes(ctx, mm, a, &ptep[i], k.m_codec.mkold(old), 1);
          ctx.count(KOp::kPteXchg);
          ctx.count(KOp::kPteWrite);
          tlb.tlb_remove_tlb_entries(a, 1);
        }
        take(folio);
        addr += uint64_t{nr} * kPageSize;
      }
      ctx.pte_lines(table, level_index(from, 1), static_cast<unsigned>((next - from) >> kPageShift),
                    false);
      ctx.unlock(*ptl);  // pte_unmap_unlock
      ctx.progress();    // cond_resched()
    }
  } walk{*this, tlb, vma, start, pageout, isolated};
  walk_page_range(m_pm, m_codec, tlb.mm().pgd(), m_pt.levels(), start, end, walk);
}

}  // namespace tlbsim::mm

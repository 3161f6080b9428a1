// Splitting THPs (mm/huge_memory.c): a PMD mapping into a PTE table
// (__split_huge_pmd_locked, reference §10.3), a large anon folio into order-0
// folios (__folio_split, §9.4), and the deferred-split shrinker (§9.3).
//
// Ordering kept by the PMD split: the PMD is invalidated and its TLB range flushed
// (pmdp_invalidate → flush_pmd_tlb_range) before the PTE table is installed, so no
// CPU ever holds a 2 MiB and a 4 KiB translation of the same address. The folio
// split unmaps every mapping into migration entries and completes the batched
// flush (try_to_unmap_flush) before the metadata changes and before any page that
// nobody maps any more is freed.
#include <cerrno>
#include <stdexcept>
#include <vector>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/rmap_walk.h"

namespace tlbsim::mm {

// --- PMD split ---------------------------------------------------------------------------

void Kernel::split_huge_pmd_address(ExecContext& ctx, Vma& vma, VirtAddr address, bool freeze) {
  // Mirrors mm/huge_memory.c:split_huge_pmd_address() → __split_huge_pmd(): nothing
  // to do unless a huge PMD maps `address`.
  Mm& mm = *vma.mm();
  uint64_t* pud = m_pt.walk(ctx, mm, address, 3, false);
  if (!pud || PteCodec::none(*pud) || m_codec.huge(*pud)) return;
  const Pfn pmd_table = m_codec.pfn(*pud);
  uint64_t* pmd = &m_pm.table(pmd_table)[level_index(address, 2)];
  ctx.count(KOp::kPteRead);
  if (!m_codec.huge(*pmd)) return;
  ScopedLock pmd_lock(ctx, m_pm.ptl(pmd_table));
  if (!m_codec.huge(*pmd)) return;  // split or zapped by another CPU meanwhile
  split_huge_pmd_locked(ctx, vma, pmd_table, pmd, address.align_down(kPmdSize), freeze);
}

void Kernel::split_huge_pmd_locked(ExecContext& ctx, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                                   VirtAddr haddr, bool freeze) {
  // Mirrors mm/huge_memory.c:__split_huge_pmd_locked(). The caller holds the PMD
  // lock; `pmd` maps a THP (or the huge zero folio) at `haddr`.
  CauseScope cause(ctx, FlushCause::kPmdSplit);
  Mm& mm = *vma.mm();
  ++m_vmstat.thp_split_pmd;
  const uint64_t old_pmd = *pmd;
  const Pfn head_pfn = m_codec.pfn(old_pmd);
  Folio folio = Folio::of(m_pm, head_pfn);
  if (!vma.is_anonymous()) {
    // File THP: clear and flush (pmdp_huge_clear_flush); the pages refault with PTEs.
    *pmd = 0;
    ctx.count(KOp::kPteWrite);
    flush_pmd_tlb_range(ctx, mm, haddr, haddr + kPmdSize);
    if (m_codec.dirty(old_pmd)) folio.head().set(kPgDirty);
    if (m_codec.young(old_pmd)) folio.head().set(kPgReferenced);
    m_rmap.folio_remove_rmap_pmd(ctx, folio, head_pfn, vma);
    folio_put_refs(ctx, folio.pfn(), 1, "__split_huge_pmd_locked(file)");
    mm.add_rss(kMmFilePages, -(int64_t{1} << kPmdOrder));
    return;
  }
  if (folio.test_zero()) {
    split_huge_zero_page_pmd(ctx, vma, pmd_table, pmd, haddr);
    return;
  }
  // pmdp_invalidate(): the PMD stops translating, and its TLB range is flushed
  // (x86: 1 INVLPG of stride 2 MiB; arm64: 1 TLBI).
  *pmd = 0;
  ctx.count(KOp::kPteWrite);
  flush_pmd_tlb_range(ctx, mm, haddr, haddr + kPmdSize);
  const bool write = m_codec.write(old_pmd);
  const bool young = m_codec.young(old_pmd);
  const bool dirty = m_codec.dirty(old_pmd);
  if (dirty) folio.head().set(kPgDirty);  // folio_set_dirty
  bool anon_exclusive = folio.head().test(kPgAnonExclusive);
  if (freeze && anon_exclusive && m_rmap.folio_try_share_anon_rmap_pmd(ctx, folio, head_pfn))
    freeze = false;  // maybe pinned: keep it mapped
  const Pfn pgtable = pgtable_trans_huge_withdraw(pmd_table);
  uint64_t* pte = m_pm.table(pgtable).data();
  constexpr unsigned kNr = 1u << kPmdOrder;
  if (freeze) {
    // 512 migration entries; the PMD's reference goes below, no PTE rmap.
    for (unsigned i = 0; i < kNr; ++i)
      pte[i] = m_codec.mk_migration_pte(head_pfn + i, write, anon_exclusive, young, dirty);
    ctx.count(KOp::kPteWrite, kNr);
    m_vmstat.pgmigrate_entries += kNr;
  } else {
    // One reference per PTE, the PTE mappings before the PMD mapping goes (so the
    // folio never looks partially mapped).
    folio.ref_add(kNr - 1);
    ctx.count(KOp::kAtomic);
    const uint32_t flags = anon_exclusive ? kRmapExclusive : kRmapNone;
    if (m_rmap_batching) {
      m_rmap.folio_add_anon_rmap_ptes(ctx, folio, head_pfn, kNr, vma, haddr, flags);
    } else {
      // Before the 6.8/6.9 rmap overhaul: page_add_anon_rmap() per subpage.
      for (unsigned i = 0; i < kNr; ++i)
        m_rmap.folio_add_anon_rmap_pte(ctx, folio, head_pfn + i, vma, haddr + i * kPageSize, flags);
    }
    uint64_t entry = m_codec.mk_pte(head_pfn, vm_page_prot(vma));
    if (write) entry = m_codec.mkwrite(entry);
    if (!young) entry = m_codec.mkold(entry);
    if (dirty) entry = m_codec.mkdirty(entry);
    // set_ptes(): arm64 creates the contpte blocks directly.
    m_arch.set_ptes(ctx, mm, haddr, pte, entry, kNr);
    ctx.count(KOp::kPteWrite, kNr);
  }
  m_rmap.folio_remove_rmap_pmd(ctx, folio, head_pfn, vma);
  if (freeze) folio_put_refs(ctx, folio.pfn(), 1, "__split_huge_pmd_locked(freeze)");
  *pmd = m_codec.mk_table(pgtable);  // pmd_populate, after the PTEs (smp_wmb)
  ctx.count(KOp::kPteWrite);
}

void Kernel::split_huge_zero_page_pmd(ExecContext& ctx, Vma& vma, Pfn pmd_table, uint64_t* pmd,
                                      VirtAddr haddr) {
  // Mirrors mm/huge_memory.c:__split_huge_zero_page_pmd(): clear + flush, then a PTE
  // table of 512 zero-page PTEs (the deposited table).
  Mm& mm = *vma.mm();
  *pmd = 0;  // pmdp_huge_clear_flush
  ctx.count(KOp::kPteWrite);
  flush_pmd_tlb_range(ctx, mm, haddr, haddr + kPmdSize);
  const Pfn pgtable = pgtable_trans_huge_withdraw(pmd_table);
  uint64_t* pte = m_pm.table(pgtable).data();
  const uint64_t entry = m_codec.mk_pte(m_zero_pfn, vm_page_prot(vma));
  for (unsigned i = 0; i < kPtrsPerTable; ++i)
    m_arch.set_ptes(ctx, mm, haddr + i * kPageSize, &pte[i], entry, 1);
  ctx.count(KOp::kPteWrite, kPtrsPerTable);
  *pmd = m_codec.mk_table(pgtable);
  ctx.count(KOp::kPteWrite);
}

// --- folio split ---------------------------------------------------------------------------

int Kernel::split_folio(ExecContext& ctx, Folio folio) {
  RmapUnmapScope in_flight(*this);
  // Mirrors mm/huge_memory.c:split_folio() → __folio_split() to order 0 for an
  // anonymous folio outside the swap cache (extra_pins = 0).
  if (!folio.test_large() || !folio.test_anon() || folio.test_zero()) return -EINVAL;
  const unsigned order = folio.order();
  auto fail = [&] {
    if (order >= kMinAnonThpOrder && order <= kPmdOrder) ++m_vmstat.mthp[order]->split_failed;
    if (folio.test_pmd_mappable()) ++m_vmstat.thp_split_page_failed;
    return -EAGAIN;
  };
  // The caller holds the folio lock; the anon_vma is locked for the whole split
  // (folio_get_anon_vma + anon_vma_lock_write), so the rmap walks below run locked.
  auto* anon_vma = reinterpret_cast<AnonVma*>(folio.head().mapping);
  if (!anon_vma) return fail();
  ScopedLock av_lock(ctx, anon_vma->root()->rwsem);
  // can_split_folio(): every reference but the caller's is a mapping.
  if (folio.mapcount() != folio.ref_count() - 1) return fail();
  {
    // unmap_folio(): TTU_RMAP_LOCKED | TTU_SYNC | TTU_BATCH_FLUSH (+ SPLIT_HUGE_PMD),
    // then one try_to_unmap_flush() for the whole folio.
    CauseScope cause(ctx, FlushCause::kMigration);
    uint32_t flags = kTtuBatchFlush;
    if (folio.test_pmd_mappable()) flags |= kTtuSplitHugePmd;
    try_to_migrate(ctx, folio, flags, /*rmap_locked=*/true);
    try_to_unmap_flush(ctx);
  }
  if (folio.mapped() || folio.ref_count() != 1) {
    // A pinned exclusive page stayed mapped: remap_page() and give up.
    remove_migration_ptes(ctx, folio, folio, /*rmap_locked=*/true);
    return fail();
  }
  // folio_ref_freeze(1) succeeded: with interrupts off, take it off the deferred
  // list (§9.2), then the metadata (__split_folio_to_order) under the LRU lock.
  m_deferred.unqueue(ctx, folio);
  ScopedLock lru(ctx, m_lru.lru_lock);
  if (order >= kMinAnonThpOrder && order <= kPmdOrder) {
    ++m_vmstat.mthp[order]->split;
    --m_vmstat.mthp[order]->nr_anon;
  }
  if (folio.test_pmd_mappable()) ++m_vmstat.thp_split_page;
  const Pfn head = folio.pfn();
  const uint64_t nr = folio.nr_pages();
  m_pm.split_folio(head, 0);
  ctx.count(KOp::kAtomic, nr);  // page_ref_unfreeze per new folio
  for (uint64_t i = 1; i < nr; ++i) {
    m_pm.page(head + i).refcount = 1;
    m_pm.page(head + i).clear(kPgLocked);  // the new folios are unlocked at the end
  }
  // lru_add_split_folio(): the pieces follow the head on the LRU (PG_lru was copied
  // to every piece; an isolated head has none).
  if (m_pm.page(head).test(kPgLru))
    for (uint64_t i = nr - 1; i >= 1; --i) m_lru.add_after(head, head + i);
  lru.unlock();
  // remap_page(): each new folio's migration entries become PTEs again.
  for (uint64_t i = 0; i < nr; ++i) {
    Folio f(m_pm, head + i);
    remove_migration_ptes(ctx, f, f, /*rmap_locked=*/true);
  }
  // Unlock and drop the split's reference of every new folio but the caller's:
  // the pages nobody maps are freed now.
  for (uint64_t i = 1; i < nr; ++i) folio_put_refs(ctx, head + i, 1, "__folio_split");
  return 0;
}

uint64_t Kernel::deferred_split_scan(ExecContext& ctx, uint64_t nr_to_scan) {
  RmapUnmapScope in_flight(*this);
  // Mirrors mm/huge_memory.c:deferred_split_scan(): under split_queue_lock, move up
  // to nr_to_scan folios to a private list (each with a reference); then, unlocked,
  // split the partially mapped ones that folio_trylock() gets.
  std::vector<Pfn> list;
  {
    ScopedLock lock(ctx, m_deferred.split_queue_lock);
    for (uint32_t slot = m_deferred.first(); slot && list.size() < nr_to_scan;
         slot = m_pm.large_at(slot).deferred_next) {
      const Pfn head(m_pm.large_at(slot).head_pfn);
      m_pm.page(head).refcount += 1;  // folio_try_get
      ctx.count(KOp::kAtomic);
      list.push_back(head);
    }
  }
  uint64_t split = 0;
  for (const Pfn head : list) {
    Folio folio(m_pm, head);
    ++m_vmstat.deferred_split_scanned;
    const bool partially_mapped = folio.lf().partially_mapped;
    bool did_split = false;
    // Not partially mapped: only an underused THP would be split (thp_underused()
    // needs page contents; never true here, as with max_ptes_none = 511).
    if (partially_mapped && folio_trylock(ctx, folio)) {
      did_split = split_folio(ctx, folio) == 0;
      folio_unlock(ctx, folio);
    }
    if (did_split) {
      ++split;
    } else if (!partially_mapped) {
      m_deferred.unqueue(ctx, folio);  // neither split nor partially mapped: leave the queue
    }
    folio_put_refs(ctx, head, 1, "deferred_split_scan");
  }
  return split;
}

}  // namespace tlbsim::mm

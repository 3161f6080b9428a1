// Migration entries and the batched (deferred) unmap flush (mm/rmap.c, mm/migrate.c;
// reference §6).
//
// Ordering contract of a batch: a PTE is cleared (and replaced by a migration
// entry) under its PTL; its flush is only recorded (set_tlb_ubc_flush_pending);
// try_to_unmap_flush() completes every recorded flush of this CPU's batch before
// the caller frees, copies or writes back any page the batch unmapped. A racing
// PTE modifier of the same mm calls flush_tlb_batched_pending() under its PTL
// first, so it never relies on a TLB that still holds a cleared entry.
#include <algorithm>
#include <cerrno>
#include <vector>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"
#include "mm/rmap_walk.h"

namespace tlbsim::mm {

namespace {
/// TLB_FLUSH_BATCH_FLUSHED_SHIFT / PENDING_MASK / PENDING_LARGE (mm/rmap.c).
constexpr unsigned kBatchFlushedShift = 16;
constexpr uint32_t kBatchPendingMask = (1u << (kBatchFlushedShift - 1)) - 1;
constexpr uint32_t kBatchPendingLarge = kBatchPendingMask / 2;
}  // namespace

// --- the batch ------------------------------------------------------------------------------

bool Kernel::should_defer_flush(ExecContext& ctx, Mm& mm, uint32_t ttu_flags) {
  // Mirrors mm/rmap.c:should_defer_flush(); batched_reclaim_flush off models
  // kernels whose architecture did not batch (arm64 before 6.5).
  if (!(ttu_flags & kTtuBatchFlush) || !m_batched_reclaim_flush) return false;
  return m_arch.arch_tlbbatch_should_defer(ctx, mm);
}

void Kernel::set_tlb_ubc_flush_pending(ExecContext& ctx, Mm& mm, uint64_t pteval, VirtAddr start,
                                       VirtAddr end) {
  // Mirrors mm/rmap.c:set_tlb_ubc_flush_pending().
  if (m_pte_accessible_skip && !m_arch.pte_accessible(mm, pteval)) {
    m_flush_stats.tlbbatch_skipped += (end - start) >> kPageShift;
    return;
  }
  m_flush_stats.tlbbatch_pending += (end - start) >> kPageShift;
  m_arch.arch_tlbbatch_add_pending(ctx, mm, start, end);
  TlbUbc& ubc = m_tlb_ubc[ctx.cpu];
  ubc.flush_required = true;
  // Bump the pending generation; reset the word before it could reach "flushed".
  ctx.count(KOp::kAtomic);
  uint32_t batch = ++mm.tlb_flush_batched;
  if ((batch & kBatchPendingMask) > kBatchPendingLarge) mm.tlb_flush_batched = 1;
  (void)batch;
  if (m_codec.dirty(pteval)) ubc.writable = true;
}

void Kernel::try_to_unmap_flush(ExecContext& ctx) {
  // Mirrors mm/rmap.c:try_to_unmap_flush(): one flush for the whole batch,
  // attributed to the caller's cause as one full (mm = NULL) request.
  TlbUbc& ubc = m_tlb_ubc[ctx.cpu];
  if (!ubc.flush_required) return;
  ++m_flush_stats.requests;
  ++m_flush_stats.tlbbatch_flushes;
  const FlushCause cause = ctx.cause == FlushCause::kNone ? FlushCause::kOther : ctx.cause;
  auto& c = m_flush_stats.by_cause[static_cast<size_t>(cause)];
  ++c->requests;
  ++c->full_mm;
  m_arch.arch_tlbbatch_flush(ctx);
  ubc.flush_required = false;
  ubc.writable = false;
}

void Kernel::try_to_unmap_flush_dirty(ExecContext& ctx) {
  // Mirrors mm/rmap.c:try_to_unmap_flush_dirty().
  if (m_tlb_ubc[ctx.cpu].writable) try_to_unmap_flush(ctx);
}

void Kernel::flush_tlb_batched_pending(ExecContext& ctx, Mm& mm) {
  // Mirrors mm/rmap.c:flush_tlb_batched_pending(): try_to_unmap_flush() does not
  // know the mms it flushed, so the first PTE modifier after a batch pays
  // arch_flush_tlb_batched_pending(): flush_tlb_mm on x86, dsb(ish) on arm64 6.5-6.15.
  const uint32_t batch = mm.tlb_flush_batched;
  const uint32_t pending = batch & kBatchPendingMask;
  const uint32_t flushed = batch >> kBatchFlushedShift;
  if (pending == flushed) return;
  ++m_flush_stats.batched_pending_flushes;
  // arm64 from 6.16 (arm64_batched_pending_flush_mm) flushes the mm as x86 does.
  if (m_arm64_batched_pending_flush_mm || !m_arch.arch_flush_tlb_batched_pending(ctx, mm))
    flush_tlb_mm(ctx, mm);
  ctx.count(KOp::kAtomic);
  mm.tlb_flush_batched = pending | (pending << kBatchFlushedShift);
}

// --- try_to_migrate ------------------------------------------------------------------------

void Kernel::try_to_migrate(ExecContext& ctx, Folio folio, uint32_t ttu_flags, bool rmap_locked) {
  // Mirrors mm/rmap.c:try_to_migrate() (TTU_RMAP_LOCKED: the caller holds the
  // anon_vma lock, so the walk is rmap_walk_locked).
  RmapWalkControl rwc;
  rwc.locked = rmap_locked;
  rwc.rmap_one = [&](Folio f, Vma& vma, VirtAddr address) {
    return try_to_migrate_one(ctx, f, vma, address, ttu_flags);
  };
  rwc.done = [](Folio f) { return !f.mapped(); };  // folio_not_mapped
  rmap_walk(*this, ctx, folio, rwc);
}

bool Kernel::try_to_migrate_one(ExecContext& ctx, Folio folio, Vma& vma, VirtAddr address,
                                uint32_t ttu_flags) {
  // Mirrors mm/rmap.c:try_to_migrate_one(): one PTE at a time; each becomes a
  // migration entry (writable / readable-exclusive / readable, young and dirty
  // kept) after its flush was done or deferred. The folio reference of each
  // mapping is dropped now: the caller holds its own.
  Mm& mm = *vma.mm();
  if ((ttu_flags & kTtuSplitHugePmd) && folio.test_pmd_mappable())
    split_huge_pmd_address(ctx, vma, address, /*freeze=*/true);
  for (PageVmaMappedWalk w(*this, ctx, folio, vma, address); w.next();) {
    if (!w.pte()) continue;  // PMD mappings are only split with TTU_SPLIT_HUGE_PMD
    const Pfn subpage = w.page();
    const VirtAddr addr = w.address();
    const bool anon_exclusive = folio.test_anon() && folio.page_of(subpage).test(kPgAnonExclusive);
    uint64_t pteval;
    if (should_defer_flush(ctx, mm, ttu_flags)) {
      pteval = m_arch.ptep_get_and_clear(ctx, mm, addr, w.pte());
      ctx.count(KOp::kPteXchg);
      set_tlb_ubc_flush_pending(ctx, mm, pteval, addr, addr + kPageSize);
    } else {
      // ptep_clear_flush(): flush only what a TLB may hold.
      pteval = m_arch.ptep_get_and_clear(ctx, mm, addr, w.pte());
      ctx.count(KOp::kPteXchg);
      if (m_arch.pte_accessible(mm, pteval)) flush_tlb_page(ctx, mm, addr);
    }
    if (m_codec.dirty(pteval)) folio.head().set(kPgDirty);  // folio_mark_dirty
    if (anon_exclusive && m_rmap.folio_try_share_anon_rmap_pte(ctx, folio, subpage)) {
      // Maybe pinned: restore the PTE and stop (the caller sees it still mapped).
      m_arch.set_ptes(ctx, mm, addr, w.pte(), pteval, 1);
      ctx.count(KOp::kPteWrite);
      return false;
    }
    *w.pte() = m_codec.mk_migration_pte(subpage, m_codec.write(pteval), anon_exclusive,
                                        m_codec.young(pteval), m_codec.dirty(pteval));
    ctx.count(KOp::kPteWrite);
    ++m_vmstat.pgmigrate_entries;
    m_rmap.folio_remove_rmap_pte(ctx, folio, subpage, vma);
    folio_put_refs(ctx, folio.pfn(), 1, "try_to_migrate_one");
  }
  return true;
}

// --- remove_migration_ptes -------------------------------------------------------------------

void Kernel::remove_migration_ptes(ExecContext& ctx, Folio src, Folio dst, bool rmap_locked) {
  // Mirrors mm/migrate.c:remove_migration_ptes() → remove_migration_pte() (RMP_LOCKED
  // when the caller holds the anon_vma lock): each migration entry naming a page of
  // `src` maps the same page of `dst` again, exclusive if the entry was.
  RmapWalkControl rwc;
  rwc.locked = rmap_locked;
  rwc.unmapped = true;
  rwc.rmap_one = [&](Folio f, Vma& vma, VirtAddr address) {
    Mm& mm = *vma.mm();
    for (PageVmaMappedWalk w(*this, ctx, src, vma, address, /*migration=*/true); w.next();) {
      const uint64_t entry = *w.pte();
      const Pfn page = f.pfn() + (w.page() - src.pfn());
      f.ref_add(1);  // folio_get
      ctx.count(KOp::kAtomic);
      uint64_t pte = m_codec.mk_pte(page, vm_page_prot(vma));
      if (!m_codec.migration_young(entry)) pte = m_codec.mkold(pte);
      if (f.head().test(kPgDirty) && m_codec.migration_dirty(entry)) pte = m_codec.mkdirty(pte);
      if (m_codec.migration_write(entry)) pte = maybe_mkwrite(m_codec, pte, vma);
      const bool exclusive = m_codec.migration_write(entry) || m_codec.migration_exclusive(entry);
      if (f.test_anon()) {
        m_rmap.folio_add_anon_rmap_pte(ctx, f, page, vma, w.address(),
                                       exclusive ? kRmapExclusive : kRmapNone);
      } else {
        m_rmap.folio_add_file_rmap_pte(ctx, f, page, vma);
      }
      *w.pte() = 0;  // set_pte_at over the migration entry (arm64 may fold: set_ptes)
      m_arch.set_ptes(ctx, mm, w.address(), w.pte(), pte, 1);
      ctx.count(KOp::kPteWrite);
      ++m_vmstat.pgmigrate_remapped;
    }
    return true;
  };
  rmap_walk(*this, ctx, dst, rwc);
}

// --- move_pages ------------------------------------------------------------------------------

namespace {
/// NR_MAX_BATCHED_MIGRATION (mm/migrate.c): HPAGE_PMD_NR pages per batch, so a
/// PMD-sized folio is a batch of its own.
constexpr uint64_t kMaxBatchedMigration = 512;
}  // namespace

int64_t Kernel::move_pages(ExecContext& ctx, Mm& mm, VirtAddr start, uint64_t len) {
  RmapUnmapScope in_flight(*this);
  // Mirrors mm/migrate.c:do_pages_move() → add_folio_for_migration() (isolate each
  // folio once) → migrate_pages() → migrate_pages_batch() in batches of up to
  // NR_MAX_BATCHED_MIGRATION pages: every folio of a batch is unmapped with
  // TTU_BATCH_FLUSH, one try_to_unmap_flush() completes the batch, then each folio
  // is copied and its migration entries point at the copy. Without NUMA nodes
  // every folio moves to a new frame. PMD mappings are split (no PMD migration
  // entries): a migrated THP comes back PTE-mapped.
  ctx.count(KOp::kSyscallEntry);
  if (!start.is_aligned(kPageSize)) return -EINVAL;
  const VirtAddr end = start + ((len + kPageSize - 1) & kPageMask);
  CauseScope cause(ctx, FlushCause::kMigration);
  std::vector<Pfn> folios;
  bool any_vma = false;
  // add_folio_for_migration() under mmap_lock for read (the page walk, under the
  // PTL in Linux, only reads here); the migration itself holds no mmap_lock.
  MmapLockGuard mmap_lock(ctx, mm, LockMode::kShared);
  for (VirtAddr addr = start; addr < end; addr += kPageSize) {
    if (!mm.find_vma(addr)) continue;  // status −EFAULT for this page
    any_vma = true;
    uint64_t* pmd = m_pt.walk(ctx, mm, addr, 2, false);
    if (!pmd || PteCodec::none(*pmd)) continue;
    ctx.count(KOp::kPteRead);
    Pfn pfn;
    if (m_codec.huge(*pmd)) {
      pfn = m_codec.pfn(*pmd);
    } else {
      const uint64_t pte = m_arch.ptep_get(&m_pt.table_of(*pmd)[level_index(addr, 1)]);
      ctx.count(KOp::kPteRead);
      if (!m_codec.present(pte)) continue;
      pfn = m_codec.pfn(pte);
    }
    if (pfn == m_zero_pfn) continue;
    Folio folio = Folio::of(m_pm, pfn);
    // Already isolated (an earlier page of it), not anon, or in the swap cache:
    // not migrated here (file folios would need the page-cache replacement).
    if (!m_lru.contains(folio.pfn()) || folio.test_zero()) continue;
    if (!folio.test_anon() || folio.head().test(kPgSwapCache)) {
      m_vmstat.pgmigrate_fail += folio.nr_pages();
      continue;
    }
    ScopedLock lru(ctx, m_lru.lru_lock);  // folio_isolate_lru
    folio.ref_add(1);
    ctx.count(KOp::kAtomic);
    m_lru.del(folio.pfn());
    folios.push_back(folio.pfn());
  }
  mmap_lock.unlock();
  if (!any_vma) return -EFAULT;
  int64_t migrated = 0;
  for (size_t i = 0; i < folios.size();) {
    // One batch: folios up to kMaxBatchedMigration pages (at least one folio).
    size_t j = i;
    uint64_t pages = 0;
    while (j < folios.size()) {
      const uint64_t nr = Folio(m_pm, folios[j]).nr_pages();
      if (j > i && pages + nr > kMaxBatchedMigration) break;
      pages += nr;
      ++j;
    }
    // migrate_folio_unmap() for each (the source folio locked until it moved),
    // then one flush for the batch.
    for (size_t k = i; k < j; ++k) {
      Folio f(m_pm, folios[k]);
      folio_lock(ctx, f);
      uint32_t flags = kTtuBatchFlush;
      if (f.test_pmd_mappable()) flags |= kTtuSplitHugePmd;
      try_to_migrate(ctx, f, flags, /*rmap_locked=*/false);
    }
    try_to_unmap_flush(ctx);
    for (size_t k = i; k < j; ++k)
      if (migrate_folio_move(ctx, Folio(m_pm, folios[k]))) ++migrated;
    i = j;
  }
  return migrated;
}

bool Kernel::migrate_folio_move(ExecContext& ctx, Folio src) {
  // Mirrors mm/migrate.c:migrate_folio_move() with its allocation
  // (migrate_folio_unmap allocates first in Linux; the order does not change any
  // count): copy into a new folio, remove_migration_ptes(src, dst), free src. A
  // folio still mapped (pinned exclusive page) or with extra references is
  // restored instead (remove_migration_ptes(src, src)) and put back.
  const uint64_t nr = src.nr_pages();
  std::optional<Pfn> pfn;
  if (!src.mapped() && src.ref_count() == 1) {
    pfn = m_pm.alloc_folio(ctx, src.order());
  }
  if (!pfn) {
    remove_migration_ptes(ctx, src, src, /*rmap_locked=*/false);
    {
      ScopedLock lru(ctx, m_lru.lru_lock);  // putback_movable_folio
      m_lru.add(src.pfn());
    }
    folio_unlock(ctx, src);
    folio_put_refs(ctx, src.pfn(), 1, "migrate_pages(putback)");
    m_vmstat.pgmigrate_fail += nr;
    return false;
  }
  m_vmstat.pgalloc += nr;
  ctx.copy_pages(*pfn, src.pfn(), nr);  // folio_mc_copy
  Folio dst(m_pm, *pfn);
  // folio_migrate_mapping() / folio_migrate_flags(): anon_vma, index and the
  // folio-wide flags; PageAnonExclusive comes back from the migration entries.
  dst.head().mapping = src.head().mapping;
  dst.head().index = src.head().index;
  for (PageFlag f : {kPgAnon, kPgSwapBacked, kPgDirty})
    if (src.head().test(f)) dst.head().set(f);
  if (dst.test_large() && dst.order() >= kMinAnonThpOrder && dst.order() <= kPmdOrder)
    ++m_vmstat.mthp[dst.order()]->nr_anon;
  remove_migration_ptes(ctx, src, dst, /*rmap_locked=*/false);
  if (src.test_large() && src.lf().on_deferred_list)
    m_deferred.deferred_split_folio(ctx, dst, src.lf().partially_mapped);
  ctx.count(KOp::kLruAdd);
  m_lru.add(ctx, dst.pfn(), dst.test_large());  // folio_add_lru
  folio_unlock(ctx, src);
  // The allocation's reference goes; the mappings hold dst now.
  folio_put_refs(ctx, dst.pfn(), 1, "migrate_folio_move(dst)");
  folio_put_refs(ctx, src.pfn(), 1, "migrate_folio_move");  // frees src
  m_vmstat.pgmigrate_success += nr;
  return true;
}

}  // namespace tlbsim::mm

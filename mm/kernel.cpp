#include "mm/kernel.h"

#include <stdexcept>

#include "mm/folio.h"
#include "mm/mmap_lock.h"
#include "mm/mmu_gather.h"

namespace tlbsim::mm {

Kernel::Kernel(const KernelProfile& profile, PhysMem& pm, ArchMmu& arch, StatGroup* stats_parent)
    : m_profile(profile),
      m_pm(pm),
      m_arch(arch),
      m_codec(arch.codec()),
      m_stats(stats_parent, "kernel"),
      m_vmstat(&m_stats),
      m_flush_stats(&m_stats),
      m_pt(pm, arch.codec(), arch.pgtable_levels()),
      m_deferred(pm, m_vmstat),
      m_rmap(pm, RmapConfig::from(profile), m_vmstat, &m_deferred),
      m_zap_batching(profile.zap_batching()),
      m_rmap_batching(profile.rmap_batching()),
      m_debug_free_before_flush(profile.debug_free_before_flush()) {
  // The shared zero page: allocated once, never refcounted by mappings.
  auto zero = m_pm.alloc_folio(0);
  if (!zero) throw std::runtime_error("machine memory too small for the zero page");
  m_zero_pfn = *zero;
  m_pm.page(m_zero_pfn).set(kPgZero);
  m_tlb_ubc.resize(arch.nr_cpus());
  m_rmap.set_lru(&m_lru);
  m_lru.set_batch_size(profile.folio_batch_size());
  // Per-CPU lists sized once: a CPU waiting for the zone or LRU lock lets others
  // run, so those vectors must never reallocate under a reference.
  m_pm.set_nr_cpus(arch.nr_cpus());
  m_lru.set_nr_cpus(arch.nr_cpus());
}

Kernel::~Kernel() = default;

Mm& Kernel::mm_create(ExecContext& ctx) {
  ctx.count(KOp::kMmFixed);
  auto mm = std::make_unique<Mm>(m_next_mm_id++, m_next_ctx_id++, m_arch.nr_cpus());
  if (!m_pt.pgd_alloc(ctx, *mm)) throw std::runtime_error("out of memory allocating a pgd");
  // arch_pick_mmap_layout() → mmap_base(): PAGE_ALIGN(TASK_SIZE - gap - rnd) with the
  // stack gap clamped to MIN_GAP = 128 MiB (8 MiB stack rlimit + 1 MiB guard gap is
  // below it) and no randomisation (ASLR off, as the host measurements run).
  mm->mmap_base = VirtAddr(task_size() - (uint64_t{128} << 20));
  m_arch.init_new_context(*mm);
  m_mms.push_back(std::move(mm));
  return *m_mms.back();
}

void Kernel::exit_mmap(ExecContext& ctx, Mm& mm) {
  // Mirrors mm/mmap.c:exit_mmap(): full-mm gather; unmap everything with mmap_lock
  // held for read, then for write free the page tables (unlinking the anon_vmas),
  // finish the gather (the last flush) and remove the VMAs.
  CauseScope cause(ctx, FlushCause::kExit);
  mm.exiting = true;
  m_arch.arch_exit_mmap(ctx, mm);
  std::vector<Vma*> vmas;
  MmuGather tlb(*this, ctx, mm, /*fullmm=*/true);
  mmap_read_lock(ctx, mm);
  for (auto& [start, vma] : mm.vmas()) vmas.push_back(vma.get());
  unmap_vmas(tlb, vmas, VirtAddr(0), VirtAddr(~0ull));
  mmap_read_unlock(ctx, mm);
  mmap_write_lock(ctx, mm);
  for (Vma* v : vmas) {
    vma_start_write(ctx, *v);
    unlink_anon_vmas(ctx, *v);
  }
  if (!vmas.empty())
    free_pgtables(tlb, vmas.front()->start(), vmas.back()->end(), VirtAddr(0), VirtAddr(0));
  tlb.tlb_finish_mmu();
  while (!mm.vmas().empty()) vma_remove(ctx, mm, mm.vmas().begin()->second.get());
  mm.dead = true;
  mmap_write_unlock(ctx, mm);
}

void Kernel::do_exit(ExecContext& ctx, Mm& mm, bool last_thread) {
  ctx.count(KOp::kExitFixed);
  if (last_thread) exit_mmap(ctx, mm);
}

void Kernel::folio_lock(ExecContext& ctx, Folio folio) {
  // Mirrors mm/filemap.c:folio_lock() → __folio_lock(): sleep in the folio's wait
  // queue until PG_locked is ours.
  KernelLock& l = m_folio_locks.try_emplace(folio.pfn().value(), LockClass::kFolio).first->second;
  ctx.lock(l);
  folio.head().set(kPgLocked);
}

bool Kernel::folio_trylock(ExecContext& ctx, Folio folio) {
  KernelLock& l = m_folio_locks.try_emplace(folio.pfn().value(), LockClass::kFolio).first->second;
  if (!ctx.trylock(l)) return false;
  folio.head().set(kPgLocked);
  return true;
}

void Kernel::folio_unlock(ExecContext& ctx, Folio folio) {
  auto it = m_folio_locks.find(folio.pfn().value());
  if (it == m_folio_locks.end()) throw std::logic_error("folio_unlock of an unlocked folio");
  folio.head().clear(kPgLocked);
  ctx.unlock(it->second);
  // The entry stays: a folio_trylock() on another CPU may hold a reference to it
  // while it synchronises (LockModel::try_acquire waits for the line), and erasing
  // it then left that CPU locking freed memory (found by the coherence random mix).
}

void Kernel::mm_destroy(Mm& mm) {
  if (!mm.dead) throw std::logic_error("mm_destroy before exit_mmap");
  m_arch.destroy_context(mm);
  m_pt.pgd_free(mm);
  m_mms.remove_if([&](const std::unique_ptr<Mm>& p) { return p.get() == &mm; });
}

void Kernel::folio_put_refs(ExecContext& ctx, Pfn head, int32_t nr, const char* what) {
  Folio folio(m_pm, head);
  ctx.count(KOp::kAtomic);
  ctx.struct_pages(head);
  if (folio.ref_count() < nr) throw std::logic_error("folio refcount underflow");
  if (!folio.put_refs(nr)) {
    // Only the swap cache holds an unmapped folio whose slot no swap PTE names:
    // drop it now (Linux leaves it for reclaim to find; the end state is the same).
    if (folio.ref_count() == 1 && folio.head().test(kPgSwapCache) && !folio.mapped() &&
        m_swap.count(m_swap.slot_of(folio.pfn())) == 0)
      folio_free_swap(ctx, folio);
    return;
  }
  // __folio_put → free_unref_folios: unqueue from deferred split, drop mTHP stats.
  if (folio.test_large()) m_deferred.unqueue(ctx, folio);
  if (m_lru.contains(head)) ctx.count(KOp::kLruDel);
  m_lru.del_freed(ctx, head);
  if (folio.head().test(kPgSwapCache)) throw std::logic_error("freeing a swap-cache folio");
  if (folio.test_anon() && folio.order() >= kMinAnonThpOrder && folio.order() <= kPmdOrder)
    --m_vmstat.mthp[folio.order()]->nr_anon;
  m_vmstat.pgfree += folio.nr_pages();
  m_pm.free_folio(ctx, head, what);
}

// --- flush requests ---------------------------------------------------------------------

namespace {
void count_flush(KernelFlushStats& st, FlushCause cause, bool full, uint64_t pages) {
  ++st.requests;
  auto& c = st.by_cause[static_cast<size_t>(cause == FlushCause::kNone ? FlushCause::kOther
                                                                      : cause)];
  ++c->requests;
  if (full) {
    ++c->full_mm;
  } else {
    ++c->range;
    c->pages += pages;
  }
}
}  // namespace

void Kernel::tlb_flush(ExecContext& ctx, Mm& mm, const TlbFlushRequest& req) {
  count_flush(m_flush_stats, ctx.cause, req.fullmm,
              req.fullmm ? 0 : (req.end - req.start) >> kPageShift);
  m_arch.tlb_flush(ctx, mm, req);
}

void Kernel::flush_tlb_mm(ExecContext& ctx, Mm& mm) {
  count_flush(m_flush_stats, ctx.cause, true, 0);
  m_arch.flush_tlb_mm(ctx, mm);
}

void Kernel::flush_tlb_range(ExecContext& ctx, Mm& mm, VirtAddr start, VirtAddr end) {
  count_flush(m_flush_stats, ctx.cause, false, (end - start) >> kPageShift);
  m_arch.flush_tlb_range(ctx, mm, start, end);
}

void Kernel::flush_tlb_page(ExecContext& ctx, Mm& mm, VirtAddr addr) {
  count_flush(m_flush_stats, ctx.cause, false, 1);
  m_arch.flush_tlb_page(ctx, mm, addr);
}

}  // namespace tlbsim::mm

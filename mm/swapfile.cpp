// Swap entries in page tables (mm/memory.c do_swap_page, mm/swapfile.c
// free_swap_and_cache, mm/swap_state.c free_swap_cache): the swap-in fault and the
// release of slots and swap-cache folios when entries or mappings go.
//
// Reference rule: the swap cache holds one reference on its folio; a slot stays
// allocated while a swap PTE names it (count) or a folio caches it. A swap-cache
// folio leaves the cache only when nothing maps it through a swap PTE any more
// (folio_free_swap), so a second process faulting on a shared entry finds the same
// folio (after fork both map one copy, as in Linux).
#include <stdexcept>

#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"

namespace tlbsim::mm {

FaultResult Kernel::do_swap_page(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_swap_page() for order-0 folios on a swap device that is
  // not SWP_SYNCHRONOUS_IO (the folio read back stays in the swap cache).
  Mm& mm = vmf.mm;
  Vma& vma = vmf.vma;
  const uint64_t entry = vmf.orig_pte;
  const uint64_t slot = m_codec.swp_offset(entry);
  if (!anon_vma_prepare(vma)) return FaultResult::kOom;
  Folio folio;
  bool fresh = false;
  if (const Pfn cached = m_swap.cached(slot); cached.value()) {
    folio = Folio(m_pm, cached);  // swap_cache_get_folio
    folio.ref_add(1);
    ctx.count(KOp::kAtomic);
    ++m_swap.stats().swap_cache_hits;
  } else {
    // swapin_readahead() of one page: a new folio read from the device into the
    // swap cache (add_to_swap_cache: the cache's reference).
    auto pfn = alloc_folio_reclaim(ctx, 0);
    if (!pfn) {
      ++m_vmstat.oom;
      return FaultResult::kOom;
    }
    ++m_vmstat.pgalloc;
    folio = Folio(m_pm, *pfn);
    if (*vmf.pte != entry) {  // direct reclaim cannot touch swap entries, but be safe
      folio_put_refs(ctx, folio.pfn(), 1, "do_swap_page(retry)");
      return FaultResult::kRetry;
    }
    ctx.zero_pages(folio.pfn());  // the device read fills the page
    ++m_swap.stats().pswpin;
    ++m_vmstat.pgmajfault;
    folio.head().set(kPgSwapBacked);
    m_swap.add_cache(slot, folio.pfn());
    folio.head().set(kPgSwapCache);
    folio.ref_add(1);
    fresh = true;
  }
  ctx.count(KOp::kLock, 2);  // folio lock, PTL
  ctx.count(KOp::kPteRead);  // pte_same
  const bool write = vmf.write();
  bool exclusive = m_codec.swp_exclusive(entry);
  m_swap.put(slot);  // swap_free_nr: this PTE no longer names the slot
  mm.add_rss(kMmAnonPages, 1);
  mm.add_rss(kMmSwapEnts, -1);
  // should_try_to_free_swap(): a write fault that is likely the only user drops the
  // swap cache to learn from the refcount whether it may map writable.
  if (write && folio.ref_count() == 2) folio_free_swap(ctx, folio);
  uint64_t pte = m_codec.mk_pte(folio.pfn(), vm_page_prot(vma));
  uint32_t rmap_flags = kRmapNone;
  bool wrote = false;
  if (exclusive || folio.ref_count() == 1) {
    exclusive = true;
    if (vma.test(kVmWrite)) {
      pte = m_codec.mkwrite(pte);
      if (write) {
        pte = m_codec.mkdirty(pte);
        wrote = true;
      }
    }
    rmap_flags = kRmapExclusive;
  }
  if (fresh) {
    m_rmap.folio_add_new_anon_rmap(ctx, folio, vma, vmf.address, rmap_flags);
  } else {
    m_rmap.folio_add_anon_rmap_pte(ctx, folio, folio.pfn(), vma, vmf.address, rmap_flags);
    if (!m_lru.contains(folio.pfn())) ctx.count(KOp::kLruAdd);
    m_lru.add(folio.pfn());
  }
  *vmf.pte = 0;  // the swap entry is replaced (set_pte_at; arm64 may fold)
  m_arch.set_ptes(ctx, mm, vmf.address, vmf.pte, pte, 1);
  ctx.count(KOp::kPteWrite);
  if (write && !wrote) return do_wp_page(ctx, mm, vma, vmf.address, vmf.pte);
  return FaultResult::kOk;
}

bool Kernel::folio_free_swap(ExecContext& ctx, Folio folio) {
  // Mirrors mm/swapfile.c:folio_free_swap(): only when no swap PTE names the slot.
  if (!folio.head().test(kPgSwapCache)) return false;
  if (m_swap.count(m_swap.slot_of(folio.pfn())) != 0) return false;
  m_swap.delete_cache(folio.pfn());
  folio.head().clear(kPgSwapCache);
  folio_put_refs(ctx, folio.pfn(), 1, "folio_free_swap");
  return true;
}

void Kernel::free_swap_cache(ExecContext& ctx, Folio folio) {
  // Mirrors mm/swap_state.c:free_swap_cache(): an unmapped swap-cache folio.
  if (folio.head().test(kPgSwapCache) && !folio.mapped()) {
    ctx.count(KOp::kLock);  // folio_trylock
    folio_free_swap(ctx, folio);
  }
}

void Kernel::free_swap_and_cache(ExecContext& ctx, uint64_t slot) {
  // Mirrors mm/swapfile.c:free_swap_and_cache_nr() for one entry: drop the count;
  // the last one also reclaims an unmapped swap-cache folio (__try_to_reclaim_swap).
  ctx.count(KOp::kAtomic);
  if (m_swap.put(slot) != 0) return;
  if (const Pfn cached = m_swap.cached(slot); cached.value())
    free_swap_cache(ctx, Folio(m_pm, cached));
}

}  // namespace tlbsim::mm

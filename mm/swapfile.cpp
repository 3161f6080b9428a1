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
  if (const FaultResult r = vmf_anon_prepare(ctx, vmf); r != FaultResult::kOk) return r;
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
    // Direct reclaim may have slept: another fault may have swapped the page in, or
    // read it into the swap cache meanwhile (__read_swap_cache_async():
    // swapcache_prepare() fails with -EEXIST and the lookup is redone).
    if (*vmf.pte != entry || m_swap.cached(slot).value()) {
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
  // folio_lock_or_retry(), then the PTL and pte_same(): another CPU may have swapped
  // the page in (or unmapped it) meanwhile.
  folio_lock(ctx, folio);
  Pfn table;
  vmf.ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
  ctx.count(KOp::kPteRead);  // pte_same
  if (!vmf.ptl || m_pm.table(table)[level_index(vmf.address, 1)] != entry) {
    if (vmf.ptl) ctx.unlock(*vmf.ptl);
    folio_unlock(ctx, folio);
    folio_put_refs(ctx, folio.pfn(), 1, "do_swap_page(raced)");
    return FaultResult::kRetry;
  }
  vmf.pte = &m_pm.table(table)[level_index(vmf.address, 1)];
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
  if (fresh || !folio.test_anon()) {
    // !folio_test_anon(): a swap-cache folio never mapped yet — this fault's read,
    // or one a racing fault read and then gave up on (its pte_same failed) — gets
    // its anon_vma and index here, as Linux decides (not by who read it).
    m_rmap.folio_add_new_anon_rmap(ctx, folio, vma, vmf.address, rmap_flags);
  } else {
    m_rmap.folio_add_anon_rmap_pte(ctx, folio, folio.pfn(), vma, vmf.address, rmap_flags);
    if (!m_lru.contains(folio.pfn())) ctx.count(KOp::kLruAdd);
    m_lru.add(ctx, folio.pfn(), false);
  }
  *vmf.pte = 0;  // the swap entry is replaced (set_pte_at; arm64 may fold)
  m_arch.set_ptes(ctx, mm, vmf.address, vmf.pte, pte, 1);
  ctx.count(KOp::kPteWrite);
  folio_unlock(ctx, folio);
  if (write && !wrote) return do_wp_page(ctx, vmf);  // the PTL is still held
  ctx.unlock(*vmf.ptl);
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
  if (folio.head().test(kPgSwapCache) && !folio.mapped() && folio_trylock(ctx, folio)) {
    folio_free_swap(ctx, folio);
    folio_unlock(ctx, folio);
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

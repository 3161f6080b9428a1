// Page faults and the zap path (mm/memory.c). PMD-level THP faults live in
// huge_memory.cpp, file faults (do_fault) in filemap.cpp.
#include <algorithm>
#include <stdexcept>

#include "base/error.h"
#include "mm/fault.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmap_lock.h"
#include "mm/mmu_gather.h"
#include "mm/pagewalk.h"

namespace tlbsim::mm {

namespace {
[[noreturn]] void not_supported(const std::string& what) {
  throw InputError("", "not supported yet: " + what);
}
}  // namespace

// --- faults -------------------------------------------------------------------------

FaultResult Kernel::handle_mm_fault(ExecContext& ctx, Mm& mm, VirtAddr addr, uint32_t flags) {
  // Mirrors arch/x86/mm/fault.c:do_user_addr_fault() (arm64 do_page_fault()): the
  // per-VMA lock first (Linux 6.4+: lock_vma_under_rcu), mmap_lock for read when the
  // VMA is write-locked or the handler needs mmap_lock (VM_FAULT_RETRY).
  ctx.count(KOp::kFaultEntry);
  if (m_profile.per_vma_lock()) {
    if (Vma* vma = lock_vma_under_rcu(ctx, mm, addr)) {
      const FaultResult r = handle_mm_fault_locked(ctx, mm, *vma, addr, flags | kFaultVmaLock);
      vma_end_read(ctx, *vma);
      if (r != FaultResult::kVmaLockRetry) {
        ++m_vmstat.vma_lock_success;
        return r;
      }
      ++m_vmstat.vma_lock_retry;
    } else {
      ++(mm.find_vma(addr) ? m_vmstat.vma_lock_abort : m_vmstat.vma_lock_miss);
    }
  }
  MmapLockGuard lock(ctx, mm, LockMode::kShared);  // lock_mm_and_find_vma()
  Vma* vma = mm.find_vma(addr);
  if (!vma) return FaultResult::kSegv;
  return handle_mm_fault_locked(ctx, mm, *vma, addr, flags);
}

FaultResult Kernel::handle_mm_fault_locked(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                           uint32_t flags) {
  // Mirrors mm/memory.c:handle_mm_fault() with the VMA (or mmap_lock) held, and its
  // mm_account_fault(): PGFAULT counts completed faults — not VM_FAULT_ERROR
  // (SIGSEGV, OOM; access_error() is the arch handler's, before handle_mm_fault)
  // nor VM_FAULT_RETRY (kVmaLockRetry), which is counted once, when retried. kRetry
  // is Linux's 0 (a racing CPU already changed the entry, or a migration wait): counted.
  const FaultResult r = handle_mm_fault_body(ctx, mm, vma, addr, flags);
  if (r == FaultResult::kOk || r == FaultResult::kRetry) ++m_vmstat.pgfault;  // PGFAULT
  return r;
}

FaultResult Kernel::handle_mm_fault_body(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                         uint32_t flags) {
  // access_error() (arch: the fault handler refuses the access before
  // handle_mm_fault), then __handle_mm_fault(): a PMD-level fault (THP) when the PMD
  // is none and THP is allowed or the PMD maps a THP, else handle_pte_fault().
  const bool write = flags & kFaultWrite;
  if (write && !vma.test(kVmWrite)) return FaultResult::kSegv;
  if ((flags & kFaultExec) && !vma.test(kVmExec)) return FaultResult::kSegv;
  if (!write && !(flags & kFaultExec) && !vma.test(kVmRead)) return FaultResult::kSegv;

  VmFault vmf(mm, vma, addr, flags);
  bool oom = false;
  if (!pmd_alloc(ctx, vmf, &oom)) {
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  if (PteCodec::none(vmf.orig_pmd)) {
    // create_huge_pmd(): anonymous VMAs only (file THPs would come from the page
    // cache through ->huge_fault, which the simulated files do not have).
    if (vma.is_anonymous() && thp_vma_allowable_orders(vma, vma.flags(), 1u << kPmdOrder)) {
      if (auto r = do_huge_pmd_anonymous_page(ctx, vmf)) return *r;
      // VM_FAULT_FALLBACK: PTE level, mTHP orders below PMD_ORDER.
    }
  } else if (m_codec.huge(vmf.orig_pmd)) {
    // A PROT_NONE PMD in an accessible VMA is a NUMA-hinting entry
    // (do_huge_pmd_numa_page); access_error() above already refused PROT_NONE VMAs.
    if (m_codec.protnone(vmf.orig_pmd)) not_supported("NUMA-hinting faults (do_huge_pmd_numa_page)");
    if (write && !m_codec.write(vmf.orig_pmd)) {
      // wp_huge_pmd(): file PMDs would be split and COWed at PTE level.
      if (!vma.is_anonymous()) not_supported("write faults on PMD-mapped file folios");
      if (auto r = do_huge_pmd_wp_page(ctx, vmf)) return *r;
      vmf.orig_pmd = *vmf.pmd;  // now a PTE table: COW at PTE level
    } else {
      huge_pmd_set_accessed(ctx, vmf);
      return FaultResult::kOk;
    }
  }
  return handle_pte_fault(ctx, vmf);
}

FaultResult Kernel::vmf_anon_prepare(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:__vmf_anon_prepare(): under the per-VMA lock the anon_vma
  // needs mmap_lock too (mmap_read_trylock, else VM_FAULT_RETRY).
  if (vmf.vma.anon_vma()) return FaultResult::kOk;
  if (vmf.vma_locked()) {
    if (!mmap_read_trylock(ctx, vmf.mm)) return FaultResult::kVmaLockRetry;
    AnonVma* av = anon_vma_prepare(ctx, vmf.vma);
    mmap_read_unlock(ctx, vmf.mm);
    return av ? FaultResult::kOk : FaultResult::kOom;
  }
  return anon_vma_prepare(ctx, vmf.vma) ? FaultResult::kOk : FaultResult::kOom;
}

void Kernel::migration_entry_wait(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/migrate.c:migration_entry_wait(): the migration (or folio split)
  // holds the folio lock until its entries are gone; wait for it on the folio's
  // wait queue.
  const Pfn head = m_pm.folio_head(m_codec.migration_pfn(vmf.orig_pte));
  Folio folio(m_pm, head);
  folio_lock(ctx, folio);
  folio_unlock(ctx, folio);
}

bool Kernel::pmd_alloc(ExecContext& ctx, VmFault& vmf, bool* oom) {
  // p4d_alloc / pud_alloc / pmd_alloc of __handle_mm_fault(): the PMD entry for
  // the address and the PMD table holding it (PageTables::walk installs each level
  // under its lock).
  Pfn pmd_table;
  uint64_t* pmd = m_pt.walk(ctx, vmf.mm, vmf.address, 2, /*alloc=*/true, oom, &pmd_table);
  if (!pmd) {
    if (*oom) return false;
    not_supported("faults under a PUD-level huge mapping");
  }
  vmf.pmd_table = pmd_table;
  vmf.pmd = pmd;
  vmf.orig_pmd = *vmf.pmd;
  ctx.count(KOp::kPteRead);
  return true;
}

Kernel::PteAlloc Kernel::pte_alloc(ExecContext& ctx, VmFault& vmf) {
  // pte_alloc() + pmd_install(): a PTE table under a none PMD, installed under the
  // PMD lock unless another CPU installed one (or a THP) meanwhile.
  if (PteCodec::none(*vmf.pmd)) {
    auto table = m_pm.alloc_page_table(ctx);
    if (!table) {
      // Direct reclaim (it never installs or frees page tables), then retry once.
      ++m_vmstat.allocstall;
      if (reclaim(ctx, 32)) table = m_pm.alloc_page_table(ctx);
    }
    if (!table) return PteAlloc::kOom;
    bool installed = false;
    {
      ScopedLock pmd_lock(ctx, m_pm.ptl(vmf.pmd_table));
      if (PteCodec::none(*vmf.pmd)) {
        ctx.count(KOp::kPteWrite);
        vmf.mm.add_pgtables(1);
        *vmf.pmd = m_codec.mk_table(*table);
        installed = true;
      }
    }
    if (!installed) m_pm.free_page_table(ctx, *table, "pte_free(raced)");
  }
  vmf.orig_pmd = *vmf.pmd;
  if (m_codec.huge(vmf.orig_pmd)) return PteAlloc::kChanged;  // a THP fault won the race
  vmf.pte = &m_pt.table_of(vmf.orig_pmd)[level_index(vmf.address, 1)];
  return PteAlloc::kOk;
}

FaultResult Kernel::handle_pte_fault(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:handle_pte_fault(). The PTE table is installed up front
  // (Linux does it in do_anonymous_page / do_fault: the same single allocation).
  switch (pte_alloc(ctx, vmf)) {
    case PteAlloc::kOk:
      break;
    case PteAlloc::kOom:
      ++m_vmstat.oom;
      return FaultResult::kOom;
    case PteAlloc::kChanged:
      return FaultResult::kRetry;
  }
  ctx.count(KOp::kPteRead);  // ptep_get_lockless
  const uint64_t entry = m_arch.ptep_get(vmf.pte);
  vmf.orig_pte = entry;
  if (PteCodec::none(entry)) {
    // do_pte_missing(): each handler takes the PTL itself.
    if (vmf.vma.is_anonymous()) return do_anonymous_page(ctx, vmf);
    return do_fault(ctx, vmf);
  }
  if (!m_codec.present(entry)) {
    if (m_codec.is_swap_entry(entry)) return do_swap_page(ctx, vmf);
    // migration_entry_wait(): the migration holds the folio lock until it has
    // restored the mapping; retry the access after it.
    if (m_codec.is_migration_pte(entry)) {
      migration_entry_wait(ctx, vmf);
      return FaultResult::kRetry;
    }
    not_supported("faults on PTE markers");
  }
  // pte_protnone() in an accessible VMA: a NUMA-hinting entry (do_numa_page).
  if (m_codec.protnone(entry)) not_supported("NUMA-hinting faults (do_numa_page)");
  Pfn table;
  vmf.ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
  if (!vmf.ptl) return FaultResult::kRetry;
  vmf.pte = &m_pm.table(table)[level_index(vmf.address, 1)];
  ctx.count(KOp::kPteRead);
  if (m_arch.ptep_get(vmf.pte) != entry) {
    // !pte_same: another CPU changed the entry; the access retries.
    ctx.unlock(*vmf.ptl);
    return FaultResult::kRetry;
  }
  const bool write = vmf.write();
  if (write && !m_codec.write(entry)) return do_wp_page(ctx, vmf);
  // Spurious fault (another CPU populated the PTE first) or an A/D update:
  // ptep_set_access_flags() with the young/dirty bits.
  uint64_t updated = m_codec.mkyoung(entry);
  if (write) updated = m_codec.mkdirty(updated);
  if (m_arch.ptep_set_access_flags(ctx, vmf.mm, vmf.address, vmf.pte, updated, write))
    ctx.count(KOp::kPteWrite);
  ctx.unlock(*vmf.ptl);
  return FaultResult::kOk;
}

FaultResult Kernel::do_anonymous_page(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_anonymous_page(): vmf.pte is the none entry for the
  // page-aligned address in an installed PTE table; the folio is allocated and
  // zeroed without the PTL, which is then taken to re-check the range.
  Mm& mm = vmf.mm;
  Vma& vma = vmf.vma;
  const VirtAddr addr = vmf.address;
  ++m_vmstat.pgfault_anon;
  if (vma.test(kVmShared)) return FaultResult::kSegv;  // VM_FAULT_SIGBUS (no ->fault)
  Pfn table;
  if (!vmf.write()) {
    // Read fault: the shared zero page, read-only and special (no folio, rmap,
    // refcount or rss). mTHP is never used for reads.
    KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
    if (!ptl) return FaultResult::kRetry;
    uint64_t* pte = &m_pm.table(table)[level_index(addr, 1)];
    ctx.count(KOp::kPteRead);
    if (PteCodec::none(m_arch.ptep_get(pte))) {
      m_arch.set_ptes(ctx, mm, addr, pte, m_codec.mk_pte(m_zero_pfn, vm_page_prot(vma)), 1);
      ctx.count(KOp::kPteWrite);
      ++m_vmstat.pgfault_zero_page;
    }
    ctx.unlock(*ptl);
    return FaultResult::kOk;
  }
  if (const FaultResult r = vmf_anon_prepare(ctx, vmf); r != FaultResult::kOk) return r;
  Folio folio = alloc_anon_folio(ctx, vma, addr, vmf.pte - level_index(addr, 1));
  if (!folio) {
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  const unsigned nr = static_cast<unsigned>(folio.nr_pages());
  const VirtAddr start = addr.align_down(nr * kPageSize);
  uint64_t entry = m_codec.mk_pte(folio.pfn(), vm_page_prot(vma));  // young (pte_sw_mkyoung)
  entry = maybe_mkwrite(m_codec, m_codec.mkdirty(entry), vma);
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
  uint64_t* first = ptl ? &m_pm.table(table)[level_index(start, 1)] : nullptr;
  // vmf_pte_changed() / pte_range_none(): another CPU may have faulted the range.
  bool none = ptl != nullptr;
  for (unsigned i = 0; none && i < nr; ++i) {
    ctx.count(KOp::kPteRead);
    none = PteCodec::none(m_arch.ptep_get(first + i));
  }
  if (!none) {
    if (ptl) ctx.unlock(*ptl);
    folio_put_refs(ctx, folio.pfn(), 1, "do_anonymous_page(raced)");
    return FaultResult::kRetry;
  }
  if (nr > 1) {
    folio.ref_add(static_cast<int32_t>(nr - 1));  // now one reference per PTE
    ctx.count(KOp::kAtomic);
  }
  mm.add_rss(kMmAnonPages, nr);
  if (folio.order() >= kMinAnonThpOrder) ++m_vmstat.mthp[folio.order()]->anon_fault_alloc;
  m_rmap.folio_add_new_anon_rmap(ctx, folio, vma, start, kRmapExclusive);
  // set_ptes(): no flush, the entries were none.
  m_arch.set_ptes(ctx, mm, start, first, entry, nr);
  ctx.count(KOp::kPteWrite, nr);
  ctx.unlock(*ptl);
  return FaultResult::kOk;
}

Folio Kernel::alloc_anon_folio(ExecContext& ctx, Vma& vma, VirtAddr addr,
                               const uint64_t* pte_table) {
  // Mirrors mm/memory.c:alloc_anon_folio(). Userfaultfd (order 0) and memcg
  // charging (anon_fault_fallback_charge) are not modelled.
  uint32_t orders = thp_vma_allowable_orders(vma, vma.flags(), (1u << kPmdOrder) - 1);
  orders = thp_vma_suitable_orders(vma, addr, orders);
  if (orders) {
    // Drop, highest first, the orders whose aligned window holds a non-none PTE;
    // the first all-none window means every lower one is all-none too. Orders
    // dropped here count no statistic.
    unsigned order = highest_order(orders);
    while (orders) {
      const VirtAddr start = addr.align_down(kPageSize << order);
      const uint64_t* p = pte_table + level_index(start, 1);
      bool none = true;
      for (unsigned i = 0; i < (1u << order) && none; ++i) {
        ctx.count(KOp::kPteRead);
        none = PteCodec::none(m_arch.ptep_get(p + i));
      }
      if (none) break;
      order = next_order(orders, order);
    }
    // Allocate the highest remaining order; fall back one enabled order at a time.
    while (orders) {
      auto pfn = m_pm.alloc_folio(ctx, order);
      if (pfn) {
        ctx.zero_pages(*pfn, uint64_t{1} << order);  // folio_zero_user
        m_vmstat.pgalloc += uint64_t{1} << order;
        return Folio(m_pm, *pfn);
      }
      ++m_vmstat.mthp[order]->anon_fault_fallback;
      order = next_order(orders, order);
    }
  }
  // folio_prealloc(need_zero = true): order 0, with direct reclaim.
  auto pfn = alloc_folio_reclaim(ctx, 0);
  if (!pfn) return Folio();
  ctx.zero_pages(*pfn);
  ++m_vmstat.pgalloc;
  return Folio(m_pm, *pfn);
}

FaultResult Kernel::do_wp_page(ExecContext& ctx, VmFault& vmf) {
  // Mirrors mm/memory.c:do_wp_page(), entered with the PTL held (vmf.ptl): a write
  // to a present, write-protected PTE of a VMA that allows writes. Shared mappings
  // make the page writable; private ones reuse an exclusive anon page under the
  // PTL, or drop it and copy (wp_page_copy).
  ++m_vmstat.pgfault_wp;
  Vma& vma = vmf.vma;
  const uint64_t orig = m_arch.ptep_get(vmf.pte);
  const Pfn pfn = m_codec.pfn(orig);
  Folio folio;  // vm_normal_page(): none behind the shared zero page
  if (pfn != m_zero_pfn) folio = Folio::of(m_pm, pfn);
  if (vma.test(kVmShared)) {
    if (!folio) throw std::logic_error("do_wp_page: zero page in a shared mapping");
    return wp_page_shared(ctx, vmf, folio);
  }
  if (folio && folio.test_anon()) {
    Page& page = folio.page_of(pfn);
    // A PageAnonExclusive page is reused without further checks.
    if (page.test(kPgAnonExclusive) || wp_can_reuse_anon_folio(ctx, folio, vma)) {
      if (!page.test(kPgAnonExclusive)) {
        page.set(kPgAnonExclusive);
        ctx.count(KOp::kAtomic);
      }
      wp_page_reuse(ctx, vmf.mm, vma, vmf.address, vmf.pte);
      ctx.unlock(*vmf.ptl);
      return FaultResult::kOk;
    }
  }
  if (folio) {
    folio.ref_add(1);  // folio_get: held across the copy
    ctx.count(KOp::kAtomic);
  }
  vmf.orig_pte = orig;
  ctx.unlock(*vmf.ptl);  // pte_unmap_unlock: the copy is made unlocked
  vmf.ptl = nullptr;
  return wp_page_copy(ctx, vmf, folio, pfn);
}

bool Kernel::wp_can_reuse_anon_folio(ExecContext& ctx, Folio folio, Vma& vma) {
  // Mirrors mm/memory.c:wp_can_reuse_anon_folio(), under the PTL. KSM is not
  // modelled; per-CPU LRU batches hold no references here (always drained).
  if (folio.test_large())
    return m_cow_reuse_large && wp_can_reuse_large_anon_folio(ctx, folio, vma);
  // Before Linux 6.15 large folios were never reused (copy a subpage and let the
  // folio go sooner).
  if (folio.ref_count() > 3) return false;  // cheap early bail
  const bool swapcache = folio.head().test(kPgSwapCache);
  if (folio.ref_count() > 1 + (swapcache ? 1 : 0)) return false;
  if (!folio_trylock(ctx, folio)) return false;  // never sleeps under the PTL
  if (swapcache) folio_free_swap(ctx, folio);
  const bool reuse = folio.ref_count() == 1;
  if (reuse) m_rmap.folio_move_anon_rmap(ctx, folio, vma);
  folio_unlock(ctx, folio);
  return reuse;
}

bool Kernel::wp_can_reuse_large_anon_folio(ExecContext& ctx, Folio folio, Vma& vma) {
  // Mirrors mm/memory.c:__wp_can_reuse_large_anon_folio() (CONFIG_MM_ID): reuse
  // when every mapping is in this mm (shared bit clear) and every reference is a
  // mapping (large mapcount == refcount). Only the faulting page becomes exclusive;
  // no folio_move_anon_rmap for large folios.
  if (folio.large_mapcount() <= 1) return false;  // free a folio with one page mapped
  if (folio.lf().maybe_mapped_shared) return false;
  if (folio.large_mapcount() != folio.ref_count()) return false;
  ctx.count(KOp::kLock);  // folio_lock_large_mapcount (a bit spinlock): stabilise and recheck
  if (folio.lf().maybe_mapped_shared || folio.large_mapcount() != folio.ref_count()) return false;
  const LargeFolio& lf = folio.lf();
  const uint32_t id = vma.mm()->mm_id();
  if (folio.large_mapcount() > static_cast<int32_t>(folio.nr_pages()) ||
      folio.entire_mapcount() != 0 || (lf.mm_id[0] != id && lf.mm_id[1] != id))
    throw std::logic_error("__wp_can_reuse_large_anon_folio: exclusive folio with "
                           "inconsistent mapcount or MM-ID slots");
  return true;
}

void Kernel::wp_page_reuse(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr, uint64_t* pte) {
  // Mirrors mm/memory.c:wp_page_reuse(): upgrade the PTE in place with
  // ptep_set_access_flags(dirty = 1). x86 needs no flush (a CPU still holding the
  // read-only translation faults again and re-walks); arm64 unfolds a contpte
  // block whose write bit changes and invalidates the stale read-only entry.
  const uint64_t orig = m_arch.ptep_get(pte);
  const uint64_t entry = maybe_mkwrite(m_codec, m_codec.mkdirty(m_codec.mkyoung(orig)), vma);
  CauseScope cause(ctx, FlushCause::kCow);
  if (m_arch.ptep_set_access_flags(ctx, mm, addr, pte, entry, true)) ctx.count(KOp::kPteWrite);
  ++m_vmstat.cow_reuse;  // PGREUSE
}

FaultResult Kernel::wp_page_copy(ExecContext& ctx, VmFault& vmf, Folio old_folio, Pfn old_page) {
  // Mirrors mm/memory.c:wp_page_copy(): a new order-0 anon folio (COW never
  // allocates mTHP), allocated and filled without the PTL; under the PTL again, if
  // the PTE is unchanged, break-before-make of the PTE with the flush
  // (ptep_clear_flush, the PTL held across the IPIs), then the old mapping's rmap
  // and references go. `old_folio` (none for the zero page) carries do_wp_page's
  // extra reference.
  Mm& mm = vmf.mm;
  Vma& vma = vmf.vma;
  const VirtAddr addr = vmf.address;
  auto put_old = [&] {
    if (old_folio) folio_put_refs(ctx, old_folio.pfn(), 1, "wp_page_copy");
  };
  if (const FaultResult r = vmf_anon_prepare(ctx, vmf); r != FaultResult::kOk) {
    put_old();
    return r;
  }
  auto new_pfn = alloc_folio_reclaim(ctx, 0);  // folio_prealloc
  if (!new_pfn) {
    put_old();
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  if (old_folio) {
    ctx.copy_pages(*new_pfn, old_page);  // __wp_page_copy_user
  } else {
    ctx.zero_pages(*new_pfn);  // the zero page: a zeroed folio
  }
  Pfn table;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, vmf.pmd, &table);
  uint64_t* pte = ptl ? &m_pm.table(table)[level_index(addr, 1)] : nullptr;
  ctx.count(KOp::kPteRead);
  if (!ptl || m_arch.ptep_get(pte) != vmf.orig_pte) {
    // !pte_same: another CPU (a racing COW, reclaim, an unmap) changed it.
    if (ptl) ctx.unlock(*ptl);
    folio_put_refs(ctx, *new_pfn, 1, "wp_page_copy(raced)");
    put_old();
    return FaultResult::kRetry;
  }
  ++m_vmstat.pgalloc;
  ++m_vmstat.cow_copy;
  Folio new_folio(m_pm, *new_pfn);
  if (!old_folio) {
    mm.add_rss(kMmAnonPages, 1);
  } else if (!old_folio.test_anon()) {
    mm.add_rss(kMmFilePages, -1);
    mm.add_rss(kMmAnonPages, 1);
  }
  uint64_t entry = m_codec.mk_pte(*new_pfn, vm_page_prot(vma));
  entry = maybe_mkwrite(m_codec, m_codec.mkdirty(entry), vma);
  {
    // ptep_clear_flush(): clear, and flush if the old entry may be cached
    // (pte_accessible), so no CPU ever holds the old and the new translation.
    CauseScope cause(ctx, FlushCause::kCow);
    const uint64_t old = m_arch.ptep_get_and_clear(ctx, mm, addr, pte);
    ctx.count(KOp::kPteXchg);
    // BROKEN ON PURPOSE when debug_cow_skip_flush: the old translation stays cached.
    if (m_codec.present(old) && !m_debug_cow_skip_flush) flush_tlb_page(ctx, mm, addr);
  }
  m_rmap.folio_add_new_anon_rmap(ctx, new_folio, vma, addr, kRmapExclusive);
  m_arch.set_ptes(ctx, mm, addr, pte, entry, 1);  // set_pte_at
  ctx.count(KOp::kPteWrite);
  if (old_folio) {
    // Only after the PTE switch: the lower mapcount is seen after the flush.
    m_rmap.folio_remove_rmap_pte(ctx, old_folio, old_page, vma);
  }
  ctx.unlock(*ptl);
  if (old_folio) {
    folio_put_refs(ctx, old_folio.pfn(), 1, "wp_page_copy");  // the old mapping's reference
    // An unmapped swap-cache folio nobody names any more leaves the cache now
    // (Linux leaves it to reclaim; the result is the same, sooner).
    if (old_folio.test_anon()) free_swap_cache(ctx, old_folio);
    put_old();
  }
  return FaultResult::kOk;
}

FaultResult Kernel::wp_page_shared(ExecContext& ctx, VmFault& vmf, Folio folio) {
  // Mirrors mm/memory.c:wp_page_shared() for a file without ->page_mkwrite, entered
  // with the PTL held: reuse the page, drop the PTL, then dirty the folio under its
  // lock (fault_dirty_shared_page → folio_mark_dirty).
  folio.ref_add(1);  // folio_get
  ctx.count(KOp::kAtomic);
  wp_page_reuse(ctx, vmf.mm, vmf.vma, vmf.address, vmf.pte);
  ctx.unlock(*vmf.ptl);
  vmf.ptl = nullptr;
  folio_lock(ctx, folio);
  folio.head().set(kPgDirty);
  folio_unlock(ctx, folio);
  folio_put_refs(ctx, folio.pfn(), 1, "wp_page_shared");
  return FaultResult::kOk;
}

FaultResult Kernel::populate_page(ExecContext& ctx, Mm& mm, VirtAddr addr, bool write) {
  // Mirrors mm/gup.c:__get_user_pages() for one page of populate_vma_page_range(),
  // with mmap_lock held for read: follow_page_mask() finds a present mapping
  // (writable when FOLL_WRITE) and there is nothing to do; otherwise faultin_page()
  // → handle_mm_fault(), again while the access would still fault.
  for (;;) {
    if (uint64_t* pmd = m_pt.walk(ctx, mm, addr, 2, false)) {
      ctx.count(KOp::kPteRead);
      const uint64_t e = *pmd;
      if (m_codec.huge(e)) {
        if (m_codec.valid(e) && (!write || m_codec.write(e))) return FaultResult::kOk;
      } else if (!PteCodec::none(e)) {
        const uint64_t pte = m_arch.ptep_get(&m_pt.table_of(e)[level_index(addr, 1)]);
        ctx.count(KOp::kPteRead);
        if (m_codec.valid(pte) && (!write || m_codec.write(pte))) return FaultResult::kOk;
      }
    }
    Vma* vma = mm.find_vma(addr);
    if (!vma) return FaultResult::kSegv;
    const FaultResult r =
        handle_mm_fault_locked(ctx, mm, *vma, addr, write ? static_cast<uint32_t>(kFaultWrite) : 0u);
    if (r != FaultResult::kRetry) return r;
  }
}

// --- zap ----------------------------------------------------------------------------

void Kernel::unmap_vmas(MmuGather& tlb, std::vector<Vma*>& vmas, VirtAddr start, VirtAddr end) {
  // Mirrors mm/memory.c:unmap_vmas().
  for (Vma* vma : vmas) {
    const VirtAddr s = std::max(start, vma->start());
    const VirtAddr e = std::min(end, vma->end());
    if (s >= e) continue;
    unmap_page_range(tlb, *vma, s, e);
    tlb.tlb_end_vma(*vma);
  }
}

void Kernel::unmap_page_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end,
                              bool reclaim_pt) {
  // Mirrors mm/memory.c:unmap_page_range() → zap_p4d_range → zap_pud_range →
  // zap_pmd_range(): a PMD-mapped THP wholly inside the range goes with
  // zap_huge_pmd(); a partly covered one is split (__split_huge_pmd) and its PTEs
  // zapped by zap_pte_range().
  struct Zap {
    Kernel& k;
    MmuGather& tlb;
    Vma& vma;
    bool reclaim_pt;
    Pfn pmd_table;  // the PMD table of the entry being zapped
    bool pmd_entry(Pfn table, uint64_t* pmdp, VirtAddr addr, VirtAddr next) {
      pmd_table = table;
      if (!k.m_codec.huge(*pmdp)) return false;
      if (next - addr != kPmdSize) {
        // __split_huge_pmd(): under the PMD lock, if still huge.
        ScopedLock pmd_lock(tlb.ctx(), k.m_pm.ptl(table));
        if (k.m_codec.huge(*pmdp))
          k.split_huge_pmd_locked(tlb.ctx(), vma, table, pmdp, addr.align_down(kPmdSize), false);
        return false;
      }
      k.zap_huge_pmd(tlb, vma, table, pmdp, addr);
      return true;
    }
    void pte_range(uint64_t* pmd, VirtAddr addr, VirtAddr next) {
      const VirtAddr start = addr;
      while (addr < next) addr = k.zap_pte_range(tlb, vma, pmd, addr, next);
      // mm/pt_reclaim.c (Linux 6.14): reclaim_pt_is_enabled() needs the whole PMD
      // range; try_get_and_clear_pmd() under the PMD lock and the PTL, then
      // free_pte(), once every entry is none.
      if (!reclaim_pt || next - start < kPmdSize) return;
      ExecContext& ctx = tlb.ctx();
      ScopedLock pmd_lock(ctx, k.m_pm.ptl(pmd_table));
      if (PteCodec::none(*pmd) || k.m_codec.huge(*pmd)) return;
      const Pfn pte_table = k.m_codec.pfn(*pmd);
      ScopedLock ptl(ctx, k.m_pm.ptl(pte_table));
      for (uint64_t e : k.m_pm.table(pte_table))
        if (!PteCodec::none(e)) return;
      ctx.count(KOp::kPteWrite);
      *pmd = 0;  // pmdp_get_lockless + pmd_clear under the PMD lock
      tlb.mm().add_pgtables(-1);
      ptl.unlock();
      pmd_lock.unlock();
      tlb.free_table_tlb(pte_table, 1, start);  // pte_free_tlb: freed_tables
      ++k.m_vmstat.pt_reclaimed;
    }
  } zap{*this, tlb, vma, reclaim_pt, Pfn()};
  walk_page_range(m_pm, m_codec, tlb.mm().pgd(), m_pt.levels(), start, end, zap);
}

unsigned Kernel::folio_pte_batch(Pfn pfn, const uint64_t* ptep, uint64_t pte,
                                 unsigned max_nr) const {
  // Mirrors mm/internal.h:folio_pte_batch_flags() with flags 0: consecutive PFNs of
  // one folio whose bits differ only in accessed/dirty/soft-dirty/write.
  const Pfn head = m_pm.folio_head(pfn);
  const uint64_t folio_end = head.value() + (uint64_t{1} << m_pm.page(head).order());
  max_nr = static_cast<unsigned>(std::min<uint64_t>(max_nr, folio_end - pfn.value()));
  uint64_t expected = m_codec.batch_normalise(m_codec.advance_pfn(pte, 1));
  unsigned n = 1;
  while (n < max_nr) {
    if (m_codec.batch_normalise(ptep[n]) != expected) break;
    expected = m_codec.advance_pfn(expected, 1);
    ++n;
  }
  return n;
}

VirtAddr Kernel::zap_pte_range(MmuGather& tlb, Vma& vma, uint64_t* pmd, VirtAddr start,
                               VirtAddr end) {
  // Mirrors mm/memory.c:zap_pte_range() → do_zap_pte_range() → zap_present_ptes() →
  // zap_present_folio_ptes(), under the table's PTL. Returns where it stopped: `end`,
  // or earlier after a forced flush (the caller retries from there, as the "retry"
  // label does).
  ExecContext& ctx = tlb.ctx();
  Mm& mm = tlb.mm();
  bool force_flush = false;
  int64_t rss_anon = 0, rss_file = 0, rss_swap = 0;
  Pfn table_pfn;
  KernelLock* ptl = pte_offset_map_lock(ctx, m_pm, m_codec, pmd, &table_pfn);
  if (!ptl) return end;  // no PTE table any more (a THP replaced it, or reclaimed)
  flush_tlb_batched_pending(ctx, mm);
  PageTablePage& table = m_pm.table(table_pfn);
  VirtAddr addr = start;
  while (addr < end) {
    const unsigned idx = level_index(addr, 1);
    uint64_t* ptep = &table[idx];
    const uint64_t pte = m_arch.ptep_get(ptep);
    ctx.count(KOp::kPteRead);
    if (PteCodec::none(pte)) {
      addr += kPageSize;
      continue;
    }
    if (!m_codec.present(pte)) {
      // zap_nonpresent_ptes(): cleared without a TLB range (never cached). A swap
      // entry releases its slot; a migration entry only its rss (the migration
      // owns the folio's reference).
      if (m_codec.is_swap_entry(pte)) {
        rss_swap -= 1;
        free_swap_and_cache(ctx, m_codec.swp_offset(pte));
      } else if (m_codec.is_migration_pte(pte)) {
        if (Folio::of(m_pm, m_codec.migration_pfn(pte)).test_anon()) {
          rss_anon -= 1;
        } else {
          rss_file -= 1;
        }
      } else {
        not_supported("zapping PTE markers");
      }
      *ptep = 0;  // clear_not_present_full_ptes
      ctx.count(KOp::kPteWrite);
      addr += kPageSize;
      continue;
    }
    const Pfn pfn = m_codec.pfn(pte);
    if (pfn == m_zero_pfn) {
      // vm_normal_page() == NULL: clear, record the range, nothing else.
      m_arch.ptep_get_and_clear(ctx, mm, addr, ptep);
      ctx.count(tlb.fullmm() ? KOp::kPteWrite : KOp::kPteXchg);
      tlb.tlb_remove_tlb_entries(addr, 1);
      addr += kPageSize;
      continue;
    }
    Folio folio = Folio::of(m_pm, pfn);
    ctx.struct_pages(pfn, 1, false);  // vm_normal_page → page_folio(): page->compound_head
    const unsigned max_nr = static_cast<unsigned>((end - addr) >> kPageShift);
    unsigned nr = 1;
    if (m_zap_batching && folio.test_large() && max_nr != 1)
      nr = folio_pte_batch(pfn, ptep, pte, max_nr);
    // zap_present_folio_ptes(): once per batch.
    // get_and_clear_full_ptes(): arm64 unfolds contpte blocks the batch covers only
    // partly; the returned entry carries the dirty/young bits of all nr entries.
    const uint64_t cleared = m_arch.get_and_clear_full_ptes(ctx, mm, addr, ptep, nr, tlb.fullmm());
    const bool any_dirty = m_codec.dirty(cleared);
    ctx.count(KOp::kPteRead, nr - 1);
    // x86 ptep_get_and_clear_full(): a plain store for a full-mm teardown, else xchg.
    ctx.count(tlb.fullmm() ? KOp::kPteWrite : KOp::kPteXchg, nr);
    bool delay_rmap = false;
    if (folio.test_anon()) {
      rss_anon -= nr;
    } else {
      rss_file -= nr;
      if (any_dirty) {
        folio.head().set(kPgDirty);  // folio_mark_dirty
        delay_rmap = true;           // tlb_delay_rmap(): SMP kernels
        force_flush = true;
      }
    }
    tlb.tlb_remove_tlb_entries(addr, nr);
    bool full = false;
    if (m_zap_batching) {
      if (!delay_rmap) m_rmap.folio_remove_rmap_ptes(ctx, folio, pfn, nr, vma);
      full = tlb.tlb_remove_folio_pages(pfn, nr, delay_rmap);
    } else {
      // Pre-6.9 zap: one rmap call and one gather entry per PTE (nr is 1 here).
      if (!delay_rmap) m_rmap.folio_remove_rmap_pte(ctx, folio, pfn, vma);
      full = tlb.tlb_remove_folio_pages(pfn, 1, delay_rmap);
    }
    addr += nr * kPageSize;
    if (full) {
      force_flush = true;
      break;  // force_break: stop after this batch
    }
  }
  mm.add_rss(kMmAnonPages, rss_anon);
  mm.add_rss(kMmFilePages, rss_file);
  mm.add_rss(kMmSwapEnts, rss_swap);
  ctx.pte_lines(table_pfn, level_index(start, 1),
                static_cast<unsigned>((addr - start) >> kPageShift), true);
  if (force_flush) {
    ++m_flush_stats.gather_forced;
    // Under the PTL: invalidate, then the delayed rmap removals; pages are freed
    // after the PTL is dropped.
    tlb.tlb_flush_mmu_tlbonly();
    tlb.tlb_flush_rmaps(vma);
  }
  ctx.unlock(*ptl);  // pte_unmap_unlock: the table's changes are visible
  if (force_flush) tlb.tlb_flush_mmu();
  ctx.progress();  // cond_resched()
  return addr;
}

// --- page-table freeing --------------------------------------------------------------

void Kernel::free_pgtables(MmuGather& tlb, VirtAddr start, VirtAddr end, VirtAddr floor,
                           VirtAddr ceiling) {
  // Mirrors mm/memory.c:free_pgtables() → free_pgd_range(): a table is freed when the
  // whole VA range it maps lies in the gap [floor, ceiling) between the surviving
  // neighbour VMAs (ceiling 0 = top of the address space).
  struct FreeTables {
    Kernel& k;
    MmuGather& tlb;
    VirtAddr floor;
    uint64_t top;  // last byte + 1 of the gap, ~0 = top of the address space
    bool pmd_entry(Pfn, uint64_t* pmd, VirtAddr, VirtAddr) { return k.m_codec.huge(*pmd); }
    void pte_range(uint64_t*, VirtAddr, VirtAddr) {}
    void table_done(Pfn, unsigned level, uint64_t* entry, VirtAddr addr, VirtAddr) {
      const uint64_t size = level_entry_size(level);
      const VirtAddr cbase = addr.align_down(size);
      const uint64_t cend = cbase.value() + size;  // may wrap to 0 at the very top
      if (cbase < floor || !(cend == 0 || cend - 1 <= top - 1)) return;
      const Pfn child = k.m_codec.pfn(*entry);
      for (uint64_t x : k.m_pm.table(child))
        if (x) throw std::logic_error("free_pgtables: freeing a non-empty page table");
      *entry = 0;
      tlb.ctx().count(KOp::kPteWrite);
      tlb.free_table_tlb(child, level - 1, cbase);
    }
  } ft{*this, tlb, floor, ceiling.value() == 0 ? ~0ull : ceiling.value()};
  walk_page_range(m_pm, m_codec, tlb.mm().pgd(), m_pt.levels(), start, end, ft);
}

}  // namespace tlbsim::mm

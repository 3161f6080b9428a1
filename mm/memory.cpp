// Page faults and the zap path (mm/memory.c).
#include <algorithm>
#include <stdexcept>

#include "base/error.h"
#include "mm/folio.h"
#include "mm/kernel.h"
#include "mm/mmu_gather.h"

namespace tlbsim::mm {

namespace {
[[noreturn]] void not_supported(const std::string& what) {
  throw InputError("", "not supported yet: " + what);
}
}  // namespace

// --- faults -------------------------------------------------------------------------

FaultResult Kernel::handle_mm_fault(ExecContext& ctx, Mm& mm, VirtAddr addr, uint32_t flags) {
  // Mirrors mm/memory.c:handle_mm_fault() → __handle_mm_fault() → handle_pte_fault().
  ctx.count(KOp::kFaultEntry);
  ctx.count(KOp::kLock);  // mmap_lock (read) / per-VMA lock
  ++m_vmstat.pgfault;
  Vma* vma = mm.find_vma(addr);
  if (!vma) return FaultResult::kSegv;
  const bool write = flags & kFaultWrite;
  if (write && !vma->test(kVmWrite)) return FaultResult::kSegv;
  if ((flags & kFaultExec) && !vma->test(kVmExec)) return FaultResult::kSegv;
  if (!write && !(flags & kFaultExec) && !vma->test(kVmRead)) return FaultResult::kSegv;
  if (!vma->is_anonymous()) not_supported("faults on file-backed mappings");
  if (m_profile.thp.enabled() != "never" &&
      (m_profile.thp.enabled() == "always" || vma->test(kVmHugePage)))
    not_supported("anonymous THP/mTHP faults (set kernel.thp.enabled to \"never\")");

  bool oom = false;
  uint64_t* pte = m_pt.walk(ctx, mm, addr, 1, /*alloc=*/true, &oom);
  if (!pte) {
    if (oom) {
      ++m_vmstat.oom;
      return FaultResult::kOom;
    }
    not_supported("faults under a huge PMD/PUD mapping");
  }
  ctx.count(KOp::kLock);  // PTL
  ctx.count(KOp::kPteRead);
  const uint64_t entry = *pte;
  if (PteCodec::none(entry)) return do_anonymous_page(ctx, mm, *vma, addr, pte, flags);
  if (!m_codec.present(entry)) not_supported("swap and migration entries");
  if (write && !m_codec.write(entry)) return do_wp_page(ctx, mm, *vma, addr, pte);
  // Spurious fault (another CPU populated the PTE first) or an A/D update:
  // ptep_set_access_flags() with the young/dirty bits; no flush on x86.
  uint64_t updated = m_codec.mkyoung(entry);
  if (write) updated = m_codec.mkdirty(updated);
  if (updated != entry) {
    *pte = updated;
    ctx.count(KOp::kPteWrite);
  }
  return FaultResult::kOk;
}

FaultResult Kernel::do_anonymous_page(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                                      uint64_t* pte, uint32_t flags) {
  // Mirrors mm/memory.c:do_anonymous_page().
  ++m_vmstat.pgfault_anon;
  const bool write = flags & kFaultWrite;
  if (!write) {
    // Read fault: map the shared zero page read-only (pte_mkspecial); no rmap,
    // no refcount, no rss.
    PgProt prot = vma.page_prot();
    prot.write = false;
    *pte = m_codec.mk_pte(m_zero_pfn, prot);
    ctx.count(KOp::kPteWrite);
    ++m_vmstat.pgfault_zero_page;
    return FaultResult::kOk;
  }
  if (!anon_vma_prepare(vma)) return FaultResult::kOom;
  // alloc_anon_folio(): order 0 (mTHP order selection is not wired yet; THP-enabled
  // profiles are rejected in handle_mm_fault rather than silently using 4 KiB).
  auto pfn = m_pm.alloc_folio(0);
  if (!pfn) {
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  ctx.count(KOp::kPageAlloc);
  ctx.count(KOp::kPageZero);
  ++m_vmstat.pgalloc;
  Folio folio(m_pm, *pfn);
  uint64_t entry = m_codec.mk_pte(*pfn, vma.page_prot());
  if (vma.test(kVmWrite)) entry = m_codec.mkwrite(m_codec.mkdirty(entry));
  m_rmap.folio_add_new_anon_rmap(ctx, folio, vma, addr, kRmapExclusive);
  mm.add_rss(kMmAnonPages, 1);
  *pte = entry;  // set_ptes(nr = 1)
  ctx.count(KOp::kPteWrite);
  return FaultResult::kOk;
}

FaultResult Kernel::do_wp_page(ExecContext& ctx, Mm& mm, Vma& vma, VirtAddr addr,
                               uint64_t* pte) {
  // Mirrors mm/memory.c:do_wp_page(): reuse an exclusive anon page, else copy.
  ++m_vmstat.pgfault_wp;
  const uint64_t entry = *pte;
  const Pfn old_pfn = m_codec.pfn(entry);
  const bool is_zero = old_pfn == m_zero_pfn;
  if (!is_zero) {
    Folio folio = Folio::of(m_pm, old_pfn);
    if (!folio.test_anon()) not_supported("write faults on file pages");
    Page& page = folio.page_of(old_pfn);
    bool reuse = page.test(kPgAnonExclusive);
    if (!reuse && !folio.test_large() && folio.ref_count() == 1) {
      // wp_can_reuse_anon_folio(): the only reference is ours → exclusive again.
      reuse = true;
      page.set(kPgAnonExclusive);
      folio.head().mapping = reinterpret_cast<uint64_t>(vma.anon_vma());  // folio_move_anon_rmap
    }
    if (reuse) {
      // wp_page_reuse(): upgrade in place; x86 needs no flush (the stale read-only
      // entry faults again and is re-walked).
      *pte = m_codec.mkwrite(m_codec.mkdirty(m_codec.mkyoung(entry)));
      ctx.count(KOp::kPteWrite);
      ++m_vmstat.cow_reuse;
      return FaultResult::kOk;
    }
  }
  // wp_page_copy().
  if (!anon_vma_prepare(vma)) return FaultResult::kOom;
  auto new_pfn = m_pm.alloc_folio(0);
  if (!new_pfn) {
    ++m_vmstat.oom;
    return FaultResult::kOom;
  }
  ctx.count(KOp::kPageAlloc);
  ctx.count(is_zero ? KOp::kPageZero : KOp::kPageCopy);
  ++m_vmstat.pgalloc;
  ++m_vmstat.cow_copy;
  Folio new_folio(m_pm, *new_pfn);
  {
    CauseScope cause(ctx, FlushCause::kCow);
    *pte = 0;  // ptep_clear_flush()
    ctx.count(KOp::kPteWrite);
    flush_tlb_page(ctx, mm, addr);
  }
  m_rmap.folio_add_new_anon_rmap(ctx, new_folio, vma, addr, kRmapExclusive);
  *pte = m_codec.mkwrite(m_codec.mkdirty(m_codec.mk_pte(*new_pfn, vma.page_prot())));
  ctx.count(KOp::kPteWrite);
  if (is_zero) {
    mm.add_rss(kMmAnonPages, 1);
  } else {
    Folio old = Folio::of(m_pm, old_pfn);
    m_rmap.folio_remove_rmap_pte(ctx, old, old_pfn, vma);
    folio_put_refs(ctx, old.pfn(), 1, "wp_page_copy");
  }
  return FaultResult::kOk;
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

void Kernel::unmap_page_range(MmuGather& tlb, Vma& vma, VirtAddr start, VirtAddr end) {
  zap_range_level(tlb, vma, m_pm.table(tlb.mm().pgd()), m_pt.levels(), start, end);
}

void Kernel::zap_range_level(MmuGather& tlb, Vma& vma, PageTablePage& table, unsigned level,
                             VirtAddr start, VirtAddr end) {
  // zap_p4d_range / zap_pud_range / zap_pmd_range: descend to the PTE tables.
  const uint64_t size = level_entry_size(level);
  VirtAddr addr = start;
  while (addr < end) {
    const VirtAddr next = std::min(end, addr.align_down(size) + size);
    uint64_t e = table[level_index(addr, level)];
    if (!PteCodec::none(e)) {
      if (level <= 3 && m_codec.huge(e))
        not_supported("zapping PMD/PUD-mapped THPs (zap_huge_pmd)");
      PageTablePage& child = m_pt.table_of(e);
      if (level == 2) {
        VirtAddr a = addr;
        while (a < next) a = zap_pte_range(tlb, vma, child, a, next);
      } else {
        zap_range_level(tlb, vma, child, level - 1, addr, next);
      }
    }
    addr = next;
  }
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

VirtAddr Kernel::zap_pte_range(MmuGather& tlb, Vma& vma, PageTablePage& table, VirtAddr start,
                               VirtAddr end) {
  // Mirrors mm/memory.c:zap_pte_range() → do_zap_pte_range() → zap_present_ptes() →
  // zap_present_folio_ptes(). Returns where it stopped: `end`, or earlier after a
  // forced flush (the caller retries from there, as the "retry" label does).
  ExecContext& ctx = tlb.ctx();
  Mm& mm = tlb.mm();
  bool force_flush = false;
  int64_t rss_anon = 0, rss_file = 0;
  ctx.count(KOp::kLock);  // pte_offset_map_lock
  VirtAddr addr = start;
  while (addr < end) {
    const unsigned idx = level_index(addr, 1);
    uint64_t* ptep = &table[idx];
    const uint64_t pte = *ptep;
    ctx.count(KOp::kPteRead);
    if (PteCodec::none(pte)) {
      addr += kPageSize;
      continue;
    }
    if (!m_codec.present(pte)) not_supported("zapping swap/migration entries");
    const Pfn pfn = m_codec.pfn(pte);
    if (pfn == m_zero_pfn) {
      // vm_normal_page() == NULL: clear, record the range, nothing else.
      *ptep = 0;
      ctx.count(KOp::kPteWrite);
      tlb.tlb_remove_tlb_entries(addr, 1);
      addr += kPageSize;
      continue;
    }
    Folio folio = Folio::of(m_pm, pfn);
    const unsigned max_nr = static_cast<unsigned>((end - addr) >> kPageShift);
    unsigned nr = 1;
    if (m_zap_batching && folio.test_large() && max_nr != 1)
      nr = folio_pte_batch(pfn, ptep, pte, max_nr);
    // zap_present_folio_ptes(): once per batch.
    bool any_dirty = false;
    for (unsigned i = 0; i < nr; ++i) {
      any_dirty |= m_codec.dirty(ptep[i]);
      ptep[i] = 0;  // clear_full_ptes / get_and_clear_full_ptes
    }
    ctx.count(KOp::kPteRead, nr - 1);
    ctx.count(KOp::kPteWrite, nr);
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
  if (force_flush) {
    ++m_flush_stats.gather_forced;
    // Under the PTL: invalidate, then the delayed rmap removals; pages are freed
    // after the PTL is dropped.
    tlb.tlb_flush_mmu_tlbonly();
    tlb.tlb_flush_rmaps(vma);
    tlb.tlb_flush_mmu();
  }
  return addr;
}

// --- page-table freeing --------------------------------------------------------------

void Kernel::free_pgtables(MmuGather& tlb, VirtAddr start, VirtAddr end, VirtAddr floor,
                           VirtAddr ceiling) {
  // Mirrors mm/memory.c:free_pgtables() → free_pgd_range(): a table is freed when the
  // whole VA range it maps lies in the gap [floor, ceiling) between the surviving
  // neighbour VMAs (ceiling 0 = top of the address space).
  free_tables_level(tlb, m_pm.table(tlb.mm().pgd()), m_pt.levels(), VirtAddr(0), start, end,
                    floor, ceiling);
}

bool Kernel::free_tables_level(MmuGather& tlb, PageTablePage& table, unsigned level,
                               VirtAddr base, VirtAddr start, VirtAddr end, VirtAddr floor,
                               VirtAddr ceiling) {
  (void)base;
  const uint64_t size = level_entry_size(level);
  const uint64_t top = ceiling.value() == 0 ? ~0ull : ceiling.value();
  VirtAddr addr = start;
  bool any_left = false;
  while (addr < end) {
    const VirtAddr cbase = addr.align_down(size);
    const VirtAddr next = std::min(end, cbase + size);
    uint64_t& e = table[level_index(addr, level)];
    if (!PteCodec::none(e) && level >= 2 && !m_codec.huge(e)) {
      PageTablePage& child = m_pt.table_of(e);
      free_tables_level(tlb, child, level - 1, cbase, addr, next, floor, ceiling);
      const uint64_t cend = cbase.value() + size;  // may wrap to 0 at the very top
      if (cbase >= floor && (cend == 0 || cend - 1 <= top - 1)) {
        for (uint64_t x : child)
          if (x) throw std::logic_error("free_pgtables: freeing a non-empty page table");
        const Pfn child_pfn = m_codec.pfn(e);
        e = 0;
        tlb.ctx().count(KOp::kPteWrite);
        tlb.free_table_tlb(child_pfn, level - 1, cbase);
      } else {
        any_left = true;
      }
    }
    addr = next;
  }
  return any_left;
}

}  // namespace tlbsim::mm
